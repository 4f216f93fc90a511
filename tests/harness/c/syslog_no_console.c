/*
 * syslog_no_console.so: LD_PRELOAD shim for the benchmark driver. It drops
 * LOG_CONS from openlog() and changes nothing else about syslog.
 *
 * Why: where no syslog daemon listens on /dev/log (containers, this
 * benchmark's machines), glibc's syslog() writes each message to /dev/console
 * instead when the process once called openlog(..., LOG_CONS, ...). GA does,
 * and glibc keeps that option after closelog(), so from GA's first log line on
 * every later syslog() of the process, pam_totp's included, wrote to the
 * console: a serial console at 9600 baud here, a millisecond per line. On a
 * real system the daemon is there and the console is never touched. Without
 * LOG_CONS, a message that finds no daemon is dropped, as pam_totp's own
 * logging expects; formatting it and trying the socket still cost what they
 * cost.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <syslog.h>

__attribute__((visibility("default"))) void openlog(const char *ident, int option, int facility)
{
	static void (*real_openlog)(const char *, int, int);

	if (real_openlog == NULL)
		*(void **)&real_openlog = dlsym(RTLD_NEXT, "openlog");
	if (real_openlog != NULL)
		real_openlog(ident, option & ~LOG_CONS, facility);
}
