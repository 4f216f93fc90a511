/*
 * pam_driver: the benchmark's PAM application. One process, many logins:
 * for each line of a plan, pam_start -> pam_authenticate -> pam_end, with a
 * conversation that answers the code prompt, each login timed on its own.
 * benches/pam_bench runs it, through tests/harness, under pam_wrapper +
 * nss_wrapper (and valgrind).
 *
 * Usage: pam_driver PLAN_FILE
 *
 * Plan: one login per line, tab-separated:
 *   LABEL SERVICE USER SECRET_HEX ANSWER EXPECT
 * ANSWER is one of
 *   totp:OFFSET  the code of time step now/30 + OFFSET, computed just before
 *                pam_start (outside the timed region), so a long run never
 *                answers with a code that has left the window;
 *   step:STEP    the code of an absolute time step (for races, where every
 *                process must send the same code);
 *   wrong        a code that is valid for no step within +-2 of now;
 *   text:STRING  STRING as typed (recovery and scratch codes).
 * EXPECT is the pam_authenticate result the login must have, or "-".
 *
 * Output on stdout:
 *   READY                   before the first login (see handshake.h); with
 *                           PAM_HARNESS_WAIT=1 it then waits for a line on
 *                           stdin, so several drivers start together
 *   LOGIN LABEL USER NS RC  one per login, NS from pam_start to pam_end
 *   SPAN START_NS END_NS    CLOCK_MONOTONIC bounds of the whole loop
 *
 * PAM_DRIVER_SKIP=N: the first N logins are warm-up; under
 * valgrind --tool=callgrind --collect-atstart=no only the later ones are
 * counted (the toggles are no-ops outside valgrind).
 *
 * Exit status: 0 when every login ran (whatever it returned; the caller
 * checks EXPECT), 1 for usage and setup errors, 3 when a login's result was
 * not the expected one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <liboath/oath.h>
#include <security/pam_appl.h>
#include <valgrind/callgrind.h>

#include "handshake.h"

#define TOTP_PERIOD 30
#define TOTP_DIGITS 6
#define MAX_SECRET 64

struct login {
	char *label;
	char *service;
	char *user;
	char secret[MAX_SECRET];
	size_t secret_len;
	char *answer;
	int expect; /* -1: any result */
};

static void die(const char *what)
{
	fprintf(stderr, "pam_driver: %s\n", what);
	exit(1);
}

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The code of time step `step`, as every TOTP app computes it (RFC 6238). */
static void code_at_step(const struct login *l, long long step, char out[TOTP_DIGITS + 1])
{
	int rc = oath_totp_generate(l->secret, l->secret_len, (time_t)(step * TOTP_PERIOD),
				    TOTP_PERIOD, 0, TOTP_DIGITS, out);
	if (rc != OATH_OK)
		die("oath_totp_generate failed");
}

/*
 * A six-digit code that none of the steps now-2 .. now+2 produce: the window
 * is +-1, and +-2 keeps it wrong even if the step turns during the login.
 */
static void wrong_code(const struct login *l, char out[TOTP_DIGITS + 1])
{
	char valid[5][TOTP_DIGITS + 1];
	long long step = time(NULL) / TOTP_PERIOD;
	unsigned long candidate;
	int i, clash;

	for (i = 0; i < 5; i++)
		code_at_step(l, step - 2 + i, valid[i]);
	candidate = (strtoul(valid[2], NULL, 10) + 500009) % 1000000;
	do {
		snprintf(out, TOTP_DIGITS + 1, "%06lu", candidate % 1000000);
		clash = 0;
		for (i = 0; i < 5; i++)
			clash |= strcmp(out, valid[i]) == 0;
		candidate = (candidate + 1) % 1000000;
	} while (clash);
}

/* What the person types for this login. Written to `buf` (or points into the plan). */
static const char *answer_for(const struct login *l, char buf[TOTP_DIGITS + 1])
{
	if (strncmp(l->answer, "totp:", 5) == 0) {
		code_at_step(l, time(NULL) / TOTP_PERIOD + strtol(l->answer + 5, NULL, 10), buf);
		return buf;
	}
	if (strncmp(l->answer, "step:", 5) == 0) {
		code_at_step(l, strtoll(l->answer + 5, NULL, 10), buf);
		return buf;
	}
	if (strcmp(l->answer, "wrong") == 0) {
		wrong_code(l, buf);
		return buf;
	}
	if (strncmp(l->answer, "text:", 5) == 0)
		return l->answer + 5;
	die("bad ANSWER in plan");
	return NULL;
}

/* Answers every prompt with the code; informational messages need no reply. */
static int converse(int n, const struct pam_message **msg, struct pam_response **resp,
		    void *appdata)
{
	const char *answer = appdata;
	struct pam_response *r;
	int i;

	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
		    msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		r[i].resp = strdup(answer);
		if (r[i].resp == NULL) {
			while (i-- > 0)
				free(r[i].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int parse_line(char *line, struct login *l)
{
	char *fields[6], *save = NULL, *hex;
	int i;

	line[strcspn(line, "\n")] = '\0';
	if (line[0] == '\0')
		return 0;
	for (i = 0; i < 6; i++) {
		fields[i] = strtok_r(i == 0 ? line : NULL, "\t", &save);
		if (fields[i] == NULL)
			die("plan line with fewer than 6 fields");
	}
	l->label = strdup(fields[0]);
	l->service = strdup(fields[1]);
	l->user = strdup(fields[2]);
	l->answer = strdup(fields[4]);
	if (!l->label || !l->service || !l->user || !l->answer)
		die("out of memory");
	hex = fields[3];
	l->secret_len = sizeof(l->secret);
	if (oath_hex2bin(hex, l->secret, &l->secret_len) != OATH_OK)
		die("SECRET_HEX is not hex");
	l->expect = strcmp(fields[5], "-") == 0 ? -1 : atoi(fields[5]);
	return 1;
}

static struct login *read_plan(const char *path, size_t *count)
{
	struct login *plan = NULL;
	size_t n = 0, cap = 0, len = 0;
	char *line = NULL;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL)
		die("cannot open the plan file");
	while (getline(&line, &len, f) != -1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			plan = realloc(plan, cap * sizeof(*plan));
			if (plan == NULL)
				die("out of memory");
		}
		n += (size_t)parse_line(line, &plan[n]);
	}
	free(line);
	fclose(f);
	*count = n;
	return plan;
}

int main(int argc, char **argv)
{
	struct login *plan;
	size_t count, i, skip = 0;
	const char *env;
	unsigned long long start, end;
	int unexpected = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PLAN_FILE\n", argv[0]);
		return 1;
	}
	if (oath_init() != OATH_OK)
		die("oath_init failed");
	plan = read_plan(argv[1], &count);
	env = getenv("PAM_DRIVER_SKIP");
	if (env != NULL)
		skip = strtoul(env, NULL, 10);

	harness_ready();

	start = now_ns();
	for (i = 0; i < count; i++) {
		struct login *l = &plan[i];
		char buf[TOTP_DIGITS + 1];
		struct pam_conv conv = { converse, NULL };
		pam_handle_t *pamh = NULL;
		unsigned long long t0, t1;
		int rc, end_rc;

		conv.appdata_ptr = (void *)answer_for(l, buf);
		if (i >= skip)
			CALLGRIND_TOGGLE_COLLECT;
		t0 = now_ns();
		rc = pam_start(l->service, l->user, &conv, &pamh);
		if (rc != PAM_SUCCESS) {
			fprintf(stderr, "pam_driver: pam_start(%s, %s): %d\n", l->service,
				l->user, rc);
			return 1;
		}
		rc = pam_authenticate(pamh, 0);
		end_rc = pam_end(pamh, rc);
		t1 = now_ns();
		if (i >= skip)
			CALLGRIND_TOGGLE_COLLECT;
		if (end_rc != PAM_SUCCESS)
			die("pam_end failed");
		if (l->expect >= 0 && rc != l->expect)
			unexpected++;
		printf("LOGIN %s %s %llu %d\n", l->label, l->user, t1 - t0, rc);
	}
	end = now_ns();
	printf("SPAN %llu %llu\n", start, end);
	fflush(stdout);
	oath_done();
	return unexpected ? 3 : 0;
}
