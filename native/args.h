/* berth-monitor's command line (see README.md, "Command line"). */
#ifndef BERTH_ARGS_H
#define BERTH_ARGS_H

#define MAX_RT_ARGS 32
#define MAX_PROXY_ARGS 32 /* proxy.h PROXY_SPECS_MAX */

struct monitor_args {
	const char *id, *bundle, *state_dir, *runtime, *log_path, *cgroup_dir, *overlay, *join_cgroup;
	const char *exec_process; /* --exec-process: `runtime exec` of this process.json instead of `run` */
	const char *rt_args[MAX_RT_ARGS];
	int n_rt_args;
	int sync_fd; /* -1: none */
	long long log_max_bytes, timeout_ms;
	int log_max_files, private_cg2, cleanup, fsync_exit, tty;
	long long attach_wait_ms; /* --attach-wait: after the exit, wait this long for a first client */
	const char *proxies[MAX_PROXY_ARGS]; /* --proxy values, parsed by proxy.c */
	int n_proxies;
};

/* Fills in *a (defaults first). -1 on a bad or incomplete command line; the sync fd is set (and made
 * close-on-exec) as soon as it is parsed, so that even then the caller can report on it. */
int parse_args(int argc, char **argv, struct monitor_args *a);
void print_usage(void);

#endif
