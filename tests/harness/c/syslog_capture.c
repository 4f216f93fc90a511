/*
 * syslog_capture.so: LD_PRELOAD shim that records syslog traffic in a file.
 *
 * Interposes openlog, closelog, syslog, vsyslog, __syslog_chk and
 * __vsyslog_chk (glibc's _FORTIFY_SOURCE variants, which libpam's
 * pam_vsyslog actually calls). Nothing reaches the real syslog: tests must
 * not depend on, or write to, the machine's log daemon.
 *
 * Each call appends one line to the file named by SYSLOG_CAPTURE_FILE
 * (ignored if unset):
 *
 *   <PRI> IDENT: MESSAGE            PRI = facility|priority, as on the wire
 *   <PRI> IDENT[PID]: MESSAGE       when openlog was given LOG_PID
 *
 * Newlines and backslashes inside MESSAGE are escaped ("\\n", "\\\\") so one
 * call is always one line. The line is written with a single write() on an
 * O_APPEND descriptor opened per call, so concurrent processes sharing the
 * file never interleave within a line.
 *
 * Note: under pam_wrapper, pam_syslog() only reaches libpam's pam_vsyslog
 * (and so this shim) when PAM_WRAPPER_USE_SYSLOG=1; otherwise pam_wrapper
 * swallows it into its own debug log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static char ident_buf[256];
static int have_ident;
static int log_options;
static int log_facility = LOG_USER;

extern char *program_invocation_short_name;

/* glibc's fortified entry points have no public prototype. */
void __syslog_chk(int pri, int flag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Escape so that one record stays one line; returns a malloc'd string. */
static char *escape_message(const char *msg)
{
	size_t len = strlen(msg);
	char *out = malloc(len * 2 + 1);
	char *q = out;
	const char *p;

	if (out == NULL) {
		return NULL;
	}
	for (p = msg; *p != '\0'; p++) {
		if (*p == '\\') {
			*q++ = '\\';
			*q++ = '\\';
		} else if (*p == '\n') {
			/* A trailing newline is syslog noise, not content. */
			if (p[1] != '\0') {
				*q++ = '\\';
				*q++ = 'n';
			}
		} else {
			*q++ = *p;
		}
	}
	*q = '\0';
	return out;
}

static void capture(int pri, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void capture(int pri, const char *fmt, va_list ap)
{
	/* Saved first: "%m" in fmt must see the caller's errno, and the
	 * caller must get its errno back, as with the real syslog. */
	int saved_errno = errno;
	const char *path = getenv("SYSLOG_CAPTURE_FILE");
	char ident[sizeof(ident_buf)];
	char *msg = NULL;
	char *escaped = NULL;
	char *line = NULL;
	int options;
	int len;
	int fd;

	if (path == NULL || path[0] == '\0' || fmt == NULL) {
		errno = saved_errno;
		return;
	}

	pthread_mutex_lock(&state_lock);
	if (have_ident) {
		memcpy(ident, ident_buf, sizeof(ident));
	} else {
		snprintf(ident, sizeof(ident), "%s",
			 program_invocation_short_name != NULL ?
			 program_invocation_short_name : "?");
	}
	options = log_options;
	if ((pri & LOG_FACMASK) == 0) {
		pri |= log_facility;
	}
	pthread_mutex_unlock(&state_lock);

	errno = saved_errno;
	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
		goto out;
	}
	escaped = escape_message(msg);
	if (escaped == NULL) {
		goto out;
	}

	if (options & LOG_PID) {
		len = asprintf(&line, "<%d> %s[%d]: %s\n", pri, ident,
			       (int)getpid(), escaped);
	} else {
		len = asprintf(&line, "<%d> %s: %s\n", pri, ident, escaped);
	}
	if (len < 0) {
		line = NULL;
		goto out;
	}

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		write_all(fd, line, (size_t)len);
		close(fd);
	}

out:
	free(line);
	free(escaped);
	free(msg);
	errno = saved_errno;
}

EXPORT void openlog(const char *ident, int option, int facility)
{
	pthread_mutex_lock(&state_lock);
	if (ident != NULL) {
		snprintf(ident_buf, sizeof(ident_buf), "%s", ident);
		have_ident = 1;
	}
	log_options = option;
	if (facility != 0 && (facility & ~LOG_FACMASK) == 0) {
		log_facility = facility;
	}
	pthread_mutex_unlock(&state_lock);
}

EXPORT void closelog(void)
{
	pthread_mutex_lock(&state_lock);
	have_ident = 0;
	log_options = 0;
	log_facility = LOG_USER;
	pthread_mutex_unlock(&state_lock);
}

EXPORT void vsyslog(int pri, const char *fmt, va_list ap)
{
	capture(pri, fmt, ap);
}

EXPORT void syslog(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	capture(pri, fmt, ap);
	va_end(ap);
}

EXPORT void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	capture(pri, fmt, ap);
}

EXPORT void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, fmt);
	capture(pri, fmt, ap);
	va_end(ap);
}
