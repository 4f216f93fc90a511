/*
 * The start handshake of the harness's PAM programs (pam_client, pam_driver), the C side
 * of tests/harness/pwrap_process.rs.
 *
 * pam_wrapper picks its /tmp/pam.X copy of the service dir racily, so the harness starts
 * these programs one at a time, under a machine-wide lock, until each prints READY. With
 * PAM_HARNESS_WAIT=1 the program then waits for a line on stdin, so that many can be
 * started one by one and released at the same moment. EOF releases it too: a dead
 * harness must not leave it waiting.
 */
#ifndef PAM_TOTP_HARNESS_HANDSHAKE_H
#define PAM_TOTP_HARNESS_HANDSHAKE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void harness_ready(void)
{
	const char *wait = getenv("PAM_HARNESS_WAIT");
	int c;

	fputs("READY\n", stdout);
	fflush(stdout);
	if (wait == NULL || strcmp(wait, "1") != 0)
		return;
	do {
		c = getchar();
	} while (c != EOF && c != '\n');
}

#endif
