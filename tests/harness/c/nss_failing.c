/*
 * libnss_failing.so.2: an NSS module whose passwd lookups fail on demand, so
 * that the tests reach the error branches of pam_totp's user lookup (a
 * passwd database that is down, e.g. an unreachable LDAP server, must deny a
 * login, never read as "no such user").
 *
 * nss_wrapper (1.1.12) loads it with NSS_WRAPPER_MODULE_SO_PATH=<this file>
 * and NSS_WRAPPER_MODULE_FN_PREFIX=failing, and asks it only for what its
 * passwd file (NSS_WRAPPER_PASSWD) does not hold: a user made to fail here
 * must not be in that file. Which lookup fails, and how, comes from the
 * environment:
 *
 *   NSS_FAILING_NAME=<name>   getpwnam_r of this name fails
 *   NSS_FAILING_UID=<uid>     getpwuid_r of this uid fails
 *   NSS_FAILING_ERRNO=<e>     EIO (default): NSS_STATUS_UNAVAIL with errno EIO,
 *                             a backend that cannot answer;
 *                             ENOENT: NSS_STATUS_NOTFOUND with errno ENOENT,
 *                             a backend saying "no such user" through errno
 *
 * nss_wrapper hands a failing module's errno back as getpwnam_r's result
 * (glibc's own NSS would turn NOTFOUND into 0 and a NULL entry). Every other
 * lookup answers NSS_STATUS_NOTFOUND with errno ENOENT: not found here either,
 * as for any user nss_wrapper's passwd file lacks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

/* The status and errno of a lookup the environment makes fail. */
static enum nss_status failure(int *errnop)
{
	const char *how = getenv("NSS_FAILING_ERRNO");

	if (how != NULL && strcmp(how, "ENOENT") == 0) {
		*errnop = ENOENT;
		return NSS_STATUS_NOTFOUND;
	}
	*errnop = EIO;
	return NSS_STATUS_UNAVAIL;
}

static enum nss_status pass_on(int *errnop)
{
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

EXPORT enum nss_status _nss_failing_getpwnam_r(const char *name, struct passwd *pwd, char *buf,
					       size_t buflen, int *errnop)
{
	const char *failing = getenv("NSS_FAILING_NAME");

	(void)pwd;
	(void)buf;
	(void)buflen;
	if (failing != NULL && name != NULL && strcmp(name, failing) == 0)
		return failure(errnop);
	return pass_on(errnop);
}

EXPORT enum nss_status _nss_failing_getpwuid_r(uid_t uid, struct passwd *pwd, char *buf,
					       size_t buflen, int *errnop)
{
	const char *failing = getenv("NSS_FAILING_UID");
	char *end;
	unsigned long want;

	(void)pwd;
	(void)buf;
	(void)buflen;
	if (failing != NULL && *failing != '\0') {
		errno = 0;
		want = strtoul(failing, &end, 10);
		if (errno == 0 && *end == '\0' && want == (unsigned long)uid)
			return failure(errnop);
	}
	return pass_on(errnop);
}
