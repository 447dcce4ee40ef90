#define _GNU_SOURCE
#include "args.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static long long num(const char *s, long long min, long long max, int *bad)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		*bad = 1;
	return v;
}

int parse_args(int argc, char **argv, struct monitor_args *a)
{
	static const struct option longopts[] = {
		{ "id", 1, 0, 'i' }, { "bundle", 1, 0, 'b' }, { "state-dir", 1, 0, 's' }, { "runtime", 1, 0, 'r' },
		{ "runtime-arg", 1, 0, 'a' }, { "log-path", 1, 0, 'l' }, { "log-max-bytes", 1, 0, 'm' },
		{ "log-max-files", 1, 0, 'f' }, { "sync-fd", 1, 0, 'y' }, { "cgroup-dir", 1, 0, 'c' },
		{ "runtime-timeout", 1, 0, 't' }, { "private-cgroup2", 0, 0, 'p' }, { "mount-overlay", 1, 0, 'o' },
		{ "cleanup", 0, 0, 'k' }, { "no-fsync-exit", 0, 0, 'n' }, { "join-cgroup", 1, 0, 'j' }, { "tty", 0, 0, 'T' },
		{ "exec-process", 1, 0, 'x' }, { "attach-wait", 1, 0, 'w' }, { "proxy", 1, 0, 'P' }, { 0, 0, 0, 0 },
	};
	*a = (struct monitor_args){ .sync_fd = -1, .log_max_bytes = 10LL << 20, .log_max_files = 2, .timeout_ms = 60000, .fsync_exit = 1 };
	int c, bad = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': a->id = optarg; break;
		case 'b': a->bundle = optarg; break;
		case 's': a->state_dir = optarg; break;
		case 'r': a->runtime = optarg; break;
		case 'a':
			if (a->n_rt_args < MAX_RT_ARGS)
				a->rt_args[a->n_rt_args++] = optarg;
			else
				bad = 1;
			break;
		case 'l': a->log_path = optarg; break;
		case 'm': a->log_max_bytes = num(optarg, 0, LLONG_MAX, &bad); break;
		case 'f': a->log_max_files = (int)num(optarg, 1, 100, &bad); break;
		case 'y': { /* close-on-exec: the runtime and the container must not hold it */
			int fd_bad = 0;
			int fd = (int)num(optarg, 3, INT_MAX, &fd_bad);
			if (fd_bad || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
				bad = 1;
			else
				a->sync_fd = fd;
			break;
		}
		case 'c': a->cgroup_dir = optarg; break;
		case 't': a->timeout_ms = num(optarg, 1, 3600000, &bad); break;
		case 'p': a->private_cg2 = 1; break;
		case 'o': a->overlay = optarg; break;
		case 'k': a->cleanup = 1; break;
		case 'n': a->fsync_exit = 0; break;
		case 'j': a->join_cgroup = optarg; break;
		case 'T': a->tty = 1; break;
		case 'x': a->exec_process = optarg; break;
		case 'w': a->attach_wait_ms = num(optarg, 0, 600000, &bad); break;
		case 'P':
			if (a->n_proxies < MAX_PROXY_ARGS)
				a->proxies[a->n_proxies++] = optarg;
			else
				bad = 1;
			break;
		default: bad = 1;
		}
	}
	return bad || optind != argc || !a->id || !a->bundle || !a->state_dir || !a->runtime ? -1 : 0;
}

void print_usage(void)
{
	dprintf(2, "usage: berth-monitor --id ID --bundle DIR --state-dir DIR --runtime PATH [--runtime-arg ARG]...\n"
		   "  [--log-path FILE] [--log-max-bytes N] [--log-max-files N] [--sync-fd FD] [--cgroup-dir DIR]\n"
		   "  [--runtime-timeout MS] [--private-cgroup2] [--join-cgroup PROCS-FILE] [--mount-overlay OPTIONS]\n"
		   "  [--cleanup] [--no-fsync-exit] [--tty] [--exec-process FILE] [--attach-wait MS]\n"
		   "  [--proxy PROTO,LISTEN-IP,LISTEN-PORT,TARGET-IP,TARGET-PORT,COUNT]...\n");
}
