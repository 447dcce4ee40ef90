/* A hostile container's probes (issue 18), one syscall each: `syscall-probe NAME [ARG]` prints
 * "NAME ok" and exits 0 when the kernel let it through, or "NAME errno=N" and exits 1 when it was
 * refused. Built statically by test/integration/hardening.test.ts, bind-mounted into containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(const char *name, long r)
{
	if (r < 0) {
		printf("%s errno=%d\n", name, errno);
		return 1;
	}
	printf("%s ok %ld\n", name, r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *p = argv[1];
	const char *arg = argc > 2 ? argv[2] : "berth-probe";
	if (!strcmp(p, "unshare-user"))
		return report(p, unshare(CLONE_NEWUSER));
	if (!strcmp(p, "clone-newuser")) {
		/* clone(2) with a namespace flag, the path `unshare` does not take */
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		return report(p, r);
	}
	if (!strcmp(p, "userfaultfd"))
		return report(p, syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
	if (!strcmp(p, "perf_event_open")) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof a);
		a.size = sizeof a, a.type = PERF_TYPE_SOFTWARE, a.config = PERF_COUNT_SW_TASK_CLOCK;
		a.exclude_kernel = 1, a.exclude_hv = 1;
		return report(p, syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
	}
	if (!strcmp(p, "io_uring_setup")) {
		struct io_uring_params params;
		memset(&params, 0, sizeof params);
		return report(p, syscall(SYS_io_uring_setup, 4, &params));
	}
	if (!strcmp(p, "personality-rie"))
		return report(p, personality(READ_IMPLIES_EXEC));
	if (!strcmp(p, "keyctl-user-keyring"))
		return report(p, syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
	if (!strcmp(p, "keyctl-search")) /* ARG: a description host root added to its user keyring */
		return report(p, syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", arg, 0));
	if (!strcmp(p, "add-key"))
		return report(p, syscall(SYS_add_key, "user", arg, "secret", 6, KEY_SPEC_USER_KEYRING));
	if (!strcmp(p, "invalidate-key")) /* ARG: a key serial */
		return report(p, syscall(SYS_keyctl, KEYCTL_INVALIDATE, atol(arg)));
	if (!strcmp(p, "seccomp-mode")) {
		/* Not a syscall: the Seccomp: line of /proc/self/status, 2 = filter */
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];
		while (f && fgets(line, sizeof line, f))
			if (!strncmp(line, "Seccomp:", 8))
				return report(p, atol(line + 8));
		return 2;
	}
	fprintf(stderr, "unknown probe %s\n", p);
	return 2;
}
