/*
 * What one identity switch of the module costs in system calls (BENCHMARKS.md,
 * "Identity switches"): the calls privileges.rs makes to act as a user and back,
 * before and after session 3, in a loop. Run as root:
 *   cc -O2 -o /tmp/identity_switch benches/identity_switch.c && /tmp/identity_switch
 * Wall clock: the figures move with the machine's load; compare the lines of one run.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N 100000
#define USER 62001

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static gid_t saved[65536];

static void save_groups(void)
{
	long n = syscall(SYS_getgroups, 0, NULL);
	syscall(SYS_getgroups, n, saved);
}

int main(void)
{
	gid_t primary[1] = {USER};
	long n = syscall(SYS_getgroups, 0, NULL);
	for (int round = 0; round < 2; round++) {
		double t = now_ns();
		for (int i = 0; i < N; i++) {
			/* Before: verify by asking with the same id (new credentials each time). */
			save_groups();
			syscall(SYS_setgroups, 1, primary);
			setfsgid(USER), setfsuid(USER), setfsuid(USER), setfsgid(USER);
			setfsuid(0), setfsgid(0), syscall(SYS_setgroups, n, saved);
		}
		printf("before:                 %6.2f us per switch and back\n", (now_ns() - t) / N / 1000);
		t = now_ns();
		for (int i = 0; i < N; i++) {
			/* Now: verify with -1, which only reports. */
			save_groups();
			syscall(SYS_setgroups, 1, primary);
			setfsgid(USER), setfsuid(USER), setfsuid(-1), setfsgid(-1);
			setfsuid(0), setfsgid(0), syscall(SYS_setgroups, n, saved);
		}
		printf("now, with groups:       %6.2f us\n", (now_ns() - t) / N / 1000);
		t = now_ns();
		for (int i = 0; i < N; i++) {
			/* Now, on a thread without supplementary groups: they are left alone. */
			save_groups();
			setfsgid(USER), setfsuid(USER), setfsuid(-1), setfsgid(-1);
			setfsuid(0), setfsgid(0);
		}
		printf("now, thread w/o groups: %6.2f us\n", (now_ns() - t) / N / 1000);
	}
	return 0;
}
