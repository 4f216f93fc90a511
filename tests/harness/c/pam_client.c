/*
 * pam_client: a minimal PAM application for the integration tests.
 *
 * Usage: pam_client [--setcred] [--authtok VALUE] [--rhost VALUE] [--chauthtok]
 *                   SERVICE USER [ANSWER...]
 *
 * --rhost sets PAM_RHOST before authenticating (as sshd does); --chauthtok calls
 * pam_chauthtok instead of pam_authenticate (as passwd does), its code in RESULT;
 * --ruid UID (as root) makes UID the real user id, the effective one staying root (as in
 * setuid passwd run by that user); --expired calls, after a successful
 * pam_authenticate, pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK) on the same handle (as
 * sshd and login do for an expired password), its code in "CHAUTHTOK <code>"; given
 * twice, it is called twice on the handle, the second call's code printed.
 *
 * Drives the real libpam (normally under LD_PRELOAD=libpam_wrapper.so) through
 * pam_start -> pam_authenticate -> [pam_setcred] -> pam_end and prints a
 * line-oriented transcript on stdout that tests/common/mod.rs parses:
 *
 *   READY                                after pam_start (see handshake.h)
 *   MSG <PROMPT_ECHO_OFF|PROMPT_ECHO_ON|ERROR_MSG|TEXT_INFO> <text>
 *   AUTHTOK <value>|(null)
 *   RESULT <code> <pam_strerror text>
 *   SETCRED <code>                       (only with --setcred, and only
 *                                         when authentication succeeded)
 *
 * Text is escaped ("\\" -> "\\\\", newline -> "\\n", CR -> "\\r") so that every
 * record stays on one line whatever a module sends.
 *
 * Exit status is 0 whenever PAM itself ran; non-zero only for usage or setup
 * errors (bad arguments, pam_start failure, out of memory), so a test can tell
 * "the module said no" from "the harness is broken".
 *
 * Harness extension: with PAM_HARNESS_WAIT=1 it waits, after READY, for a line
 * (or EOF) on stdin before authenticating (handshake.h). The harness uses READY
 * to serialise pam_wrapper's start-up and the wait to release many clients at
 * once. With PAM_HARNESS_PAUSE_AT_PROMPT=1 it also prints "PAUSED" after each
 * prompt's MSG record and waits for another line (or EOF) before answering: a
 * person typing, while a test changes what the module will read.
 *
 * About PAM_AUTHTOK: Linux-PAM only lets *modules* get or set PAM_AUTHTOK;
 * from an application pam_set_item/pam_get_item return PAM_BAD_ITEM. So
 * --authtok is attempted with pam_set_item (works on other PAM
 * implementations) and also exported as the environment variable PAM_AUTHTOK,
 * which pam_wrapper's pam_set_items.so copies into the item when it is
 * stacked first. After authentication the item is read with pam_get_item or,
 * failing that, from the PAM environment variable PAM_AUTHTOK that
 * pam_wrapper's pam_get_items.so exports when stacked last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "handshake.h"

struct answers {
	char **items;
	int count;
	int next;
};

static const char *style_name(int style)
{
	switch (style) {
	case PAM_PROMPT_ECHO_OFF:
		return "PROMPT_ECHO_OFF";
	case PAM_PROMPT_ECHO_ON:
		return "PROMPT_ECHO_ON";
	case PAM_ERROR_MSG:
		return "ERROR_MSG";
	case PAM_TEXT_INFO:
		return "TEXT_INFO";
	default:
		return NULL;
	}
}

/* Print one record: "<tag> <escaped text>\n". */
static void print_escaped(const char *tag, const char *text)
{
	const char *p;

	fputs(tag, stdout);
	fputc(' ', stdout);
	if (text == NULL) {
		fputs("(null)", stdout);
	} else {
		for (p = text; *p != '\0'; p++) {
			switch (*p) {
			case '\\':
				fputs("\\\\", stdout);
				break;
			case '\n':
				fputs("\\n", stdout);
				break;
			case '\r':
				fputs("\\r", stdout);
				break;
			default:
				fputc(*p, stdout);
			}
		}
	}
	fputc('\n', stdout);
	/* Flush per record: if the module crashes the process, the transcript
	 * up to the crash is still there for the test to read. */
	fflush(stdout);
}

static void free_responses(struct pam_response *resp, int n)
{
	int i;

	if (resp == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		if (resp[i].resp != NULL) {
			/* Answers are secrets in real life; wipe before free. */
			memset(resp[i].resp, 0, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
}

/* PAM_HARNESS_PAUSE_AT_PROMPT=1: say so, and wait for a line (or EOF) on stdin. */
static void pause_at_prompt(void)
{
	const char *pause = getenv("PAM_HARNESS_PAUSE_AT_PROMPT");
	int c;

	if (pause == NULL || strcmp(pause, "1") != 0)
		return;
	fputs("PAUSED\n", stdout);
	fflush(stdout);
	do {
		c = getchar();
	} while (c != EOF && c != '\n');
}

static int conv(int num_msg, const struct pam_message **msg,
		struct pam_response **resp_out, void *appdata)
{
	struct answers *answers = appdata;
	struct pam_response *resp;
	int i;

	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG) {
		return PAM_CONV_ERR;
	}
	/* Some modules (pam_matrix's "verbose") pass resp_out == NULL for
	 * info/error-only calls: still show the messages, and fail only if a
	 * prompt would need an answer stored there. */
	if (resp_out != NULL) {
		*resp_out = NULL;
	}

	/* libpam frees the array and each resp with free(). */
	resp = calloc((size_t)num_msg, sizeof(*resp));
	if (resp == NULL) {
		return PAM_BUF_ERR;
	}

	for (i = 0; i < num_msg; i++) {
		/* Linux-PAM passes an array of pointers (msg[i]), not a pointer
		 * to an array; the two only differ on Solaris. */
		const struct pam_message *m = msg[i];
		const char *name = style_name(m->msg_style);

		if (name == NULL) {
			char tag[32];

			snprintf(tag, sizeof(tag), "MSG STYLE_%d", m->msg_style);
			print_escaped(tag, m->msg);
			free_responses(resp, num_msg);
			return PAM_CONV_ERR;
		}

		{
			char tag[32];

			snprintf(tag, sizeof(tag), "MSG %s", name);
			print_escaped(tag, m->msg);
		}

		if (m->msg_style == PAM_PROMPT_ECHO_OFF ||
		    m->msg_style == PAM_PROMPT_ECHO_ON) {
			pause_at_prompt();
			if (resp_out == NULL ||
			    answers->next >= answers->count) {
				/* Out of scripted answers (a test expected
				 * fewer prompts than the module asked), or
				 * nowhere to put one. */
				free_responses(resp, num_msg);
				return PAM_CONV_ERR;
			}
			resp[i].resp = strdup(answers->items[answers->next++]);
			if (resp[i].resp == NULL) {
				free_responses(resp, num_msg);
				return PAM_BUF_ERR;
			}
		}
	}

	if (resp_out != NULL) {
		*resp_out = resp;
	} else {
		free_responses(resp, num_msg);
	}
	return PAM_SUCCESS;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: pam_client [--setcred] [--authtok VALUE] [--rhost VALUE] "
		"[--chauthtok] SERVICE USER [ANSWER...]\n");
}

int main(int argc, char **argv)
{
	struct answers answers = { NULL, 0, 0 };
	struct pam_conv pam_conversation = { conv, &answers };
	pam_handle_t *pamh = NULL;
	const char *service;
	const char *user;
	const char *authtok = NULL;
	const char *rhost = NULL;
	int chauthtok = 0;
	int expired = 0;
	int expired_rc = 0;
	long ruid = -1;
	const void *item = NULL;
	int setcred = 0;
	int i = 1;
	int rc;
	int auth_rc;
	int cred_rc = 0;

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--setcred") == 0) {
			setcred = 1;
		} else if (strcmp(argv[i], "--authtok") == 0) {
			if (i + 1 >= argc) {
				usage();
				return 2;
			}
			authtok = argv[++i];
		} else if (strcmp(argv[i], "--rhost") == 0) {
			if (i + 1 >= argc) {
				usage();
				return 2;
			}
			rhost = argv[++i];
		} else if (strcmp(argv[i], "--chauthtok") == 0) {
			chauthtok = 1;
		} else if (strcmp(argv[i], "--expired") == 0) {
			expired++;
		} else if (strcmp(argv[i], "--ruid") == 0) {
			if (i + 1 >= argc) {
				usage();
				return 2;
			}
			ruid = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			usage();
			return 2;
		} else {
			break;
		}
	}
	if (argc - i < 2) {
		usage();
		return 2;
	}
	service = argv[i];
	user = argv[i + 1];
	answers.items = &argv[i + 2];
	answers.count = argc - i - 2;

	if (authtok != NULL) {
		/* For pam_set_items.so; must be in place before pam_start so the
		 * whole stack sees the same environment. */
		if (setenv("PAM_AUTHTOK", authtok, 1) != 0) {
			fprintf(stderr, "pam_client: setenv: %s\n", strerror(errno));
			return 3;
		}
	}

	rc = pam_start(service, user, &pam_conversation, &pamh);
	if (rc != PAM_SUCCESS || pamh == NULL) {
		fprintf(stderr, "pam_client: pam_start(%s, %s) failed: %d %s\n",
			service, user, rc, pam_strerror(pamh, rc));
		return 4;
	}

	if (authtok != NULL) {
		/* Linux-PAM answers PAM_BAD_ITEM here (modules only); kept for
		 * PAM implementations that allow it. */
		(void)pam_set_item(pamh, PAM_AUTHTOK, authtok);
	}

	if (rhost != NULL) {
		rc = pam_set_item(pamh, PAM_RHOST, rhost);
		if (rc != PAM_SUCCESS) {
			fprintf(stderr, "pam_client: pam_set_item(PAM_RHOST): %d\n", rc);
			return 4;
		}
	}

	if (ruid >= 0 && setresuid((uid_t)ruid, (uid_t)-1, (uid_t)-1) != 0) {
		fprintf(stderr, "pam_client: setresuid: %s\n", strerror(errno));
		return 4;
	}

	harness_ready();

	auth_rc = chauthtok ? pam_chauthtok(pamh, 0) : pam_authenticate(pamh, 0);
	if (expired && !chauthtok && auth_rc == PAM_SUCCESS) {
		for (int n = 0; n < expired; n++) {
			expired_rc = pam_chauthtok(pamh, PAM_CHANGE_EXPIRED_AUTHTOK);
		}
	}

	if (setcred && auth_rc == PAM_SUCCESS) {
		cred_rc = pam_setcred(pamh, PAM_ESTABLISH_CRED);
	}

	item = NULL;
	if (pam_get_item(pamh, PAM_AUTHTOK, &item) != PAM_SUCCESS) {
		item = NULL;
	}
	if (item == NULL) {
		item = pam_getenv(pamh, "PAM_AUTHTOK");
	}
	print_escaped("AUTHTOK", item);

	{
		char tag[32];

		snprintf(tag, sizeof(tag), "RESULT %d", auth_rc);
		print_escaped(tag, pam_strerror(pamh, auth_rc));
	}
	if (expired && !chauthtok && auth_rc == PAM_SUCCESS) {
		printf("CHAUTHTOK %d\n", expired_rc);
		fflush(stdout);
	}
	/* Only when it ran: a failed login is never given credentials. */
	if (setcred && auth_rc == PAM_SUCCESS) {
		printf("SETCRED %d\n", cred_rc);
		fflush(stdout);
	}

	rc = pam_end(pamh, setcred && auth_rc == PAM_SUCCESS ? cred_rc : auth_rc);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_client: pam_end failed: %d\n", rc);
	}
	return 0;
}
