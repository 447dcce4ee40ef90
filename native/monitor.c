/* berth-monitor: one per container, modelled on conmon. Mounts the container's overlay root, starts
 * the container with one `runtime run --detach`, reaps the container's init as a child subreaper, writes
 * its stdout/stderr to a size-capped CRI log, reports the start on a sync fd, cleans up after the exit
 * (runtime delete, unmount) and records the exit atomically. See native/README.md.
 * This file is the process flow; args.c the command line, loop.c the poll/reap loop, log.c the log. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "tty.h"
#include "util.h"

#define DRAIN_MS 2000

static struct monitor_args opt;
/* opt's paths made absolute, and the files derived from them */
static struct {
	char bundle[PATH_MAX], state_dir[PATH_MAX], pid_file[PATH_MAX + 32], rootfs[PATH_MAX + 16], console[64];
} paths;
static struct cri_log crilog = { .fd = -1, .line_max = LINE_MAX_DEFAULT };
static pid_t kill_on_fail; /* a started container that must not outlive a failed start */
static int rootfs_mounted; /* by us: a failed start unmounts it again */
static int devnull = -1;
static struct proxy_spec proxies[PROXY_SPECS_MAX];

/* Unmounts the container's root; a busy one (a process still holds it) is detached instead. */
static int umount_rootfs(void)
{
	if (umount2(paths.rootfs, 0) == 0 || errno == EINVAL) /* EINVAL: not a mount point (copy mode) */
		return 0;
	if (errno == EBUSY && umount2(paths.rootfs, MNT_DETACH) == 0)
		return 0;
	warnf("unmount %s: %s", paths.rootfs, strerror(errno));
	return -1;
}

static void json_str(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 7 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20)
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		else if (c == '"' || c == '\\')
			out[o++] = '\\', out[o++] = (char)c;
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

static void sync_send(const char *line)
{
	if (opt.sync_fd < 0)
		return;
	if (write_all(opt.sync_fd, line, strlen(line)) < 0) /* EPIPE: the caller is gone (SIGPIPE ignored) */
		warnf("sync fd: %s", strerror(errno));
	if (close(opt.sync_fd) < 0)
		warnf("close sync fd: %s", strerror(errno));
	opt.sync_fd = -1;
}

/* Before the start is reported, every failure ends here: {"error":...} on the sync fd, exit 1. */
static void fail(const char *fmt, ...)
{
	char msg[8192], esc[sizeof msg * 2], line[sizeof esc + 16];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	warnf("%s", msg);
	if (kill_on_fail > 0 && kill(kill_on_fail, SIGKILL) < 0 && errno != ESRCH)
		warnf("kill container %d: %s", (int)kill_on_fail, strerror(errno));
	if (rootfs_mounted)
		(void)umount_rootfs();
	json_str(esc, sizeof esc, msg, strlen(msg));
	snprintf(line, sizeof line, "{\"error\":\"%s\"}\n", esc);
	sync_send(line);
	exit(1);
}

/* oom_kill count from <cgroup-dir>/memory.events, -1 when unavailable (no cgroup v2, no dir). */
static long long oom_kills(void)
{
	char path[PATH_MAX + 32], buf[1024];
	if (!opt.cgroup_dir)
		return -1;
	snprintf(path, sizeof path, "%s/memory.events", opt.cgroup_dir);
	if (read_small(path, buf, sizeof buf) < 0)
		return -1;
	char *p = strstr(buf, "oom_kill ");
	return p && (p == buf || p[-1] == '\n') ? strtoll(p + 9, NULL, 10) : -1;
}

/* Before `run`: a cgroup the runtime has yet to create starts at 0 OOM kills. */
static long long oom_baseline(void)
{
	long long n = oom_kills();
	if (n < 0 && opt.cgroup_dir && access(opt.cgroup_dir, F_OK) < 0 && errno == ENOENT)
		return 0;
	return n;
}

/* Sets the calling process's oom_score_adj to 0. */
static int reset_oom_score(void)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, "0", 1);
	int saved = errno;
	close(fd);
	errno = saved;
	return r < 0 ? -1 : 0;
}

/* Moves the calling process into the cgroup whose cgroup.procs file is `procs`. */
static int join_cgroup(const char *procs)
{
	char pid[24];
	int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, pid, (size_t)n);
	int saved = errno;
	close(fd);
	errno = saved;
	return r < 0 ? -1 : 0;
}

/* fork + exec `RUNTIME [--runtime-arg…] VERB…` with stdin /dev/null and stdout/stderr on out/err. */
static pid_t spawn(const char *const verb[], int out, int err)
{
	const char *argv[MAX_RT_ARGS + 16];
	int n = 0;
	argv[n++] = opt.runtime;
	for (int i = 0; i < opt.n_rt_args; i++)
		argv[n++] = opt.rt_args[i];
	while (*verb)
		argv[n++] = *verb++;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		if (sigprocmask(SIG_SETMASK, &none, NULL) < 0 || signal(SIGPIPE, SIG_DFL) == SIG_ERR ||
		    dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		/* The runtime starts at a neutral OOM score, not the monitor's (the agent's -900 under the
		 * shipped unit): crun writes the spec's oomScoreAdj only when it is not 0, so a normal
		 * container would otherwise inherit -900. Raising a score needs no privilege. */
		if (reset_oom_score() < 0) {
			dprintf(2, "oom_score_adj: %s\n", strerror(errno));
			_exit(126);
		}
		/* A cgroup berth prepared (the v1 devices controller, for a runtime that manages no cgroups):
		 * the runtime, and so the container, is born in it. Before the private cgroup2 mount below,
		 * which would hide the v1 hierarchies. */
		if (opt.join_cgroup && join_cgroup(opt.join_cgroup) < 0) {
			dprintf(2, "--join-cgroup %s: %s\n", opt.join_cgroup, strerror(errno));
			_exit(126);
		}
		/* Hybrid hosts: crun needs a pure cgroup2 /sys/fs/cgroup. Only the runtime gets the private
		 * namespace, so the monitor's own mounts (the root, its unmount) stay in the host's. */
		if (opt.private_cg2 && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
					mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)) {
			dprintf(2, "--private-cgroup2: %s\n", strerror(errno));
			_exit(126);
		}
		execv(opt.runtime, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", opt.runtime, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* The pid the runtime wrote to --pid-file, 0 if none (yet). */
static pid_t container_pid(void)
{
	char buf[32], *end = NULL;
	long pid = read_small(paths.pid_file, buf, sizeof buf) > 0 ? strtol(buf, &end, 10) : 0;
	return pid > 0 && pid <= INT_MAX && end && (*end == 0 || *end == '\n') ? (pid_t)pid : 0;
}

static int make_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ? -1 : 0;
}

/* Waits for a runtime process, killing it at the timeout; 1 when it exited 0. */
static int wait_runtime(pid_t pid, int *status)
{
	int r = loop_pump(loop_done_reaped, pid, mono_ms() + opt.timeout_ms);
	if (r < 0)
		fail("poll: %s", strerror(errno));
	if (r == 0) {
		if (kill(pid, SIGKILL) < 0)
			warnf("kill runtime: %s", strerror(errno));
		return -1;
	}
	loop_reaped(pid, status);
	return WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

/* `RUNTIME run --detach`: one runtime process where conmon runs create and then start. Detached, the
 * runtime hands its own stdio, our pipes, to the container, which is our child once the runtime exits.
 * The pipes are not read until then: on success all of it is the container's (it blocks at most that
 * long on a full pipe), on failure it is the runtime's error. Returns the container's pid. */
static pid_t run_container(void)
{
	int out[2], err[2], st = 0;
	if (make_pipe(out) < 0 || make_pipe(err) < 0)
		fail("pipe: %s", strerror(errno));
	loop_watch(STREAM_STDOUT, out[0]);
	loop_watch(STREAM_STDERR, err[0]);
	loop_capture(1);
	/* --exec-process: a process in the running container (exec sessions with a terminal get their
	 * own monitor, as conmon's exec sessions do); the flow after it is the same. */
	const char *verb[16] = { 0 };
	int n = 0;
	verb[n++] = opt.exec_process ? "exec" : "run";
	verb[n++] = "--detach", verb[n++] = "--pid-file", verb[n++] = paths.pid_file;
	if (opt.tty)
		verb[n++] = "--console-socket", verb[n++] = paths.console;
	if (opt.exec_process)
		verb[n++] = "--process", verb[n++] = opt.exec_process;
	else
		verb[n++] = "--bundle", verb[n++] = paths.bundle;
	verb[n++] = opt.id;
	pid_t rpid = spawn(verb, out[1], err[1]);
	if (close(out[1]) < 0 || close(err[1]) < 0)
		fail("close: %s", strerror(errno));
	int ok = wait_runtime(rpid, &st);
	if (ok <= 0) {
		kill_on_fail = container_pid();
		if (ok < 0)
			fail("runtime run timed out after %lld ms", opt.timeout_ms);
		loop_drain(STREAM_STDERR); /* stderr first: where the runtime puts its error */
		loop_drain(STREAM_STDOUT);
		const char *output = loop_captured();
		char how[64];
		if (WIFEXITED(st))
			snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
		else
			snprintf(how, sizeof how, "signal %d", WTERMSIG(st));
		fail("runtime run failed (%s): %s", how, *output ? output : "no output");
	}
	pid_t cpid = container_pid();
	kill_on_fail = cpid;
	if (cpid <= 0)
		fail("runtime %s left no pid in %s", verb[0], paths.pid_file);
	if (opt.tty) {
		/* The container's stdio is the terminal: the pipes were only ever the runtime's. */
		if (tty_take_master() < 0)
			fail("runtime %s sent no terminal on %s: %s", verb[0], TTY_CONSOLE_SOCK, strerror(errno));
		loop_close(STREAM_STDOUT);
		loop_close(STREAM_STDERR);
		loop_clear_captured();
	}
	kill_on_fail = 0;
	loop_capture(0);
	return cpid;
}

/* After the exit (--cleanup): `RUNTIME delete --force ID`, then unmount the root, so that berth needs
 * no process of its own for either. 1 when both worked; a failure is only a warning, and berth
 * does the cleanup itself when the exit record says it was not done. */
static int cleanup_after_exit(void)
{
	int fds[2], st = 0;
	if (make_pipe(fds) < 0) {
		warnf("cleanup: pipe: %s", strerror(errno));
		return 0;
	}
	loop_watch(STREAM_RUNTIME, fds[0]);
	const char *del[] = { "delete", "--force", opt.id, NULL };
	pid_t pid = spawn(del, fds[1], fds[1]);
	if (close(fds[1]) < 0)
		warnf("close: %s", strerror(errno));
	int ok = wait_runtime(pid, &st) > 0;
	loop_drain(STREAM_RUNTIME);
	loop_close(STREAM_RUNTIME);
	const char *output = loop_captured();
	if (!ok)
		warnf("runtime delete: %s", *output ? output : "failed or timed out");
	loop_clear_captured();
	return umount_rootfs() == 0 && ok;
}

/* Checks the arguments and derives the paths; nothing of the caller's but the sync fd stays open. */
static void setup(int argc, char **argv)
{
	if (parse_args(argc, argv, &opt) < 0) {
		sync_send("{\"error\":\"berth-monitor: bad arguments\"}\n");
		print_usage();
		exit(2);
	}
	crilog.max_bytes = opt.log_max_bytes, crilog.max_files = opt.log_max_files;
	if (crilog.max_bytes > 0 && crilog.max_bytes < 4096)
		fail("--log-max-bytes must be 0 (no cap) or at least 4096");
	if (crilog.max_bytes > 0 && crilog.max_bytes / 4 < (long long)crilog.line_max)
		crilog.line_max = (size_t)(crilog.max_bytes / 4); /* a record always fits in one file */
	if (!realpath(opt.bundle, paths.bundle))
		fail("bundle %s: %s", opt.bundle, strerror(errno));
	if (!realpath(opt.state_dir, paths.state_dir))
		fail("state dir %s: %s", opt.state_dir, strerror(errno));
	if (opt.log_path && (opt.log_path[0] != '/' || strlen(opt.log_path) >= PATH_MAX))
		fail("--log-path must be absolute");
	if (opt.log_path)
		snprintf(crilog.path, sizeof crilog.path, "%s", opt.log_path);
	else
		snprintf(crilog.path, sizeof crilog.path, "%s/container.log", paths.state_dir);
	for (int i = 0; i < opt.n_proxies; i++)
		if (proxy_parse(opt.proxies[i], &proxies[i]) < 0)
			fail("--proxy %s: expected tcp|udp,LISTEN-IP,LISTEN-PORT,TARGET-IP,TARGET-PORT,COUNT", opt.proxies[i]);
	snprintf(paths.pid_file, sizeof paths.pid_file, "%s/container.pid", paths.state_dir);
	snprintf(paths.rootfs, sizeof paths.rootfs, "%s/rootfs", paths.bundle);
	unsigned keep = opt.sync_fd < 0 ? ~0U : (unsigned)opt.sync_fd;
	if ((keep > 3 && close_range(3, keep - 1, 0) < 0) || (keep != ~0U && close_range(keep + 1, ~0U, 0) < 0))
		fail("close_range: %s", strerror(errno));
}

/* fork, setsid, fork again: the caller's child exits at once; the grandchild is the monitor, in its own
 * session, outside the caller's process group. Then signals to a signalfd, and subreaper. */
static void detach(void)
{
	for (int i = 0; i < 2; i++) {
		pid_t p = fork();
		if (p < 0 || (p == 0 && i == 0 && setsid() < 0))
			fail("detach: %s", strerror(errno));
		if (p > 0)
			_exit(0);
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || chdir("/") < 0)
		fail("/dev/null: %s", strerror(errno));
	sigset_t mask;
	sigemptyset(&mask);
	int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&mask, sigs[i]);
	int sigfd;
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    (sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		fail("signals: %s", strerror(errno));
	loop_init(sigfd, &crilog);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

/* monitor.pid: our pid and start time (clock ticks after boot, /proc/self/stat field 22). Not fsynced:
 * it only means something while this process lives, and after a power cut a missing or empty file
 * reads as "monitor gone", which is then true. */
static void write_monitor_pid(void)
{
	char stat[1024], line[256];
	char *rp = read_small("/proc/self/stat", stat, sizeof stat) > 0 ? strrchr(stat, ')') : NULL;
	unsigned long long starttime = 0;
	for (int field = 2; rp && field < 22; field++)
		rp = strchr(rp + 1, ' ');
	if (!rp || sscanf(rp, " %llu", &starttime) != 1)
		fail("cannot parse /proc/self/stat");
	snprintf(line, sizeof line, "{\"pid\":%d,\"startTime\":%llu}\n", (int)getpid(), starttime);
	if (write_atomic(paths.state_dir, "monitor.pid", line, 0) < 0)
		fail("write monitor.pid: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	setup(argc, argv);
	detach();
	write_monitor_pid();
	/* Published ports the kernel cannot forward: bound before the container starts, so a port taken
	 * since berth's check fails the start, naming it. */
	char proxy_err[256];
	if (proxy_open(proxies, opt.n_proxies, proxy_err, sizeof proxy_err) < 0)
		fail("%s", proxy_err);
	/* The overlay root, mounted here rather than by berth: a syscall instead of a mount(8) process. */
	if (opt.overlay && !opt.exec_process) {
		if (mount("overlay", paths.rootfs, "overlay", 0, opt.overlay) < 0)
			fail("cannot mount the container root at %s: %s", paths.rootfs, strerror(errno));
		rootfs_mounted = 1;
	}
	if (cri_log_open(&crilog) < 0)
		fail("log %s: %s", crilog.path, strerror(errno));
	/* Before the start is reported: a client may attach as soon as it is. */
	if (opt.tty && tty_setup(paths.state_dir, &crilog, paths.console, sizeof paths.console) < 0)
		fail("terminal sockets in %s: %s", paths.state_dir, strerror(errno));
	loop_tty(opt.tty);
	char exit_path[PATH_MAX + 16];
	snprintf(exit_path, sizeof exit_path, "%s/exit", paths.state_dir);
	if ((unlink(paths.pid_file) < 0 && errno != ENOENT) || (unlink(exit_path) < 0 && errno != ENOENT))
		fail("stale state in %s: %s", paths.state_dir, strerror(errno));

	long long oom_before = oom_baseline();
	pid_t cpid = run_container();
	rootfs_mounted = 0; /* the container runs on it now: unmounted only after the exit */
	char started[40], finished[40], line[64];
	rfc3339(started);
	snprintf(line, sizeof line, "{\"pid\":%d}\n", (int)cpid);
	sync_send(line);

	/* A poll error leaves no exit record: berth reads "monitor gone" as an unknown exit. */
	if (loop_pump(loop_done_reaped, (long)cpid, 0) < 0)
		fail("poll: %s", strerror(errno));
	rfc3339(finished);
	proxy_close(); /* the container is gone: its ports are free before anyone reads the exit record */
	if (loop_pump(loop_done_eof, 0, mono_ms() + DRAIN_MS) < 0) /* the container's writers are gone: read to EOF */
		fail("poll: %s", strerror(errno));
	loop_close(STREAM_STDOUT);
	loop_close(STREAM_STDERR);
	/* --attach-wait: a command that ended before its caller attached (an exec session: nothing logs it)
	 * keeps its output for the caller, which is on its way. */
	if (opt.tty && opt.attach_wait_ms > 0 && loop_pump(tty_done_attached, 0, mono_ms() + opt.attach_wait_ms) < 0)
		warnf("poll: %s", strerror(errno));
	tty_shutdown();

	int st = 0;
	loop_reaped(cpid, &st);
	int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	int code = sig ? 128 + sig : WEXITSTATUS(st);
	long long oom_after = oom_before >= 0 ? oom_kills() : -1;
	int oom = oom_after > oom_before && oom_before >= 0;
	/* Before the exit record: whoever reads it may reuse the id or remove the container at once. */
	int cleaned = opt.cleanup && cleanup_after_exit();
	char sigstr[16], exitjson[512];
	snprintf(sigstr, sizeof sigstr, sig ? "%d" : "null", sig);
	snprintf(exitjson, sizeof exitjson,
		 "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":%s,\"oomSource\":\"%s\",\"startedAt\":\"%s\",\"finishedAt\":\"%s\",\"cleaned\":%s}\n",
		 code, sigstr, oom ? "true" : "false", oom_after >= 0 ? "memory.events" : "none", started, finished, cleaned ? "true" : "false");
	if (write_atomic(paths.state_dir, "exit", exitjson, opt.fsync_exit) < 0) {
		warnf("write exit: %s", strerror(errno));
		return 1;
	}
	if (crilog.dropped)
		warnf("%lu log lines dropped", crilog.dropped);
	return 0;
}
