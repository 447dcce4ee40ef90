/* berth-monitor: one per container, modelled on conmon. Mounts the container's overlay root, starts
 * the container with one `runtime run --detach`, reaps the container's init as a child subreaper, writes its
 * stdout/stderr to a size-capped CRI log, reports the start on a sync fd, cleans up after the exit
 * (runtime delete, unmount) and records the exit atomically. See native/README.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_RT_ARGS 32
#define ERRBUF_MAX 4096
#define DRAIN_MS 2000

static struct {
	const char *id, *runtime, *cgroup_dir, *overlay;
	char bundle[PATH_MAX], state_dir[PATH_MAX], pid_file[PATH_MAX + 32], rootfs[PATH_MAX + 16];
	const char *rt_args[MAX_RT_ARGS];
	int n_rt_args, sync_fd, private_cg2, cleanup, fsync_exit;
	long long timeout_ms;
} opt = { .sync_fd = -1, .timeout_ms = 60000, .fsync_exit = 1 };

static struct cri_log crilog = { .fd = -1, .max_files = 2, .max_bytes = 10LL << 20, .line_max = LINE_MAX_DEFAULT };

struct stream {
	int fd;
	struct cri_line line; /* the runtime's stream has no line buffer */
};
static char linebufs[2][LINE_MAX_DEFAULT]; /* bss: untouched pages cost no memory */
/* [0] container stdout, [1] container stderr, [2] the output of `runtime delete` */
static struct stream streams[3] = {
	{ .fd = -1, .line = { .name = "stdout", .buf = linebufs[0] } },
	{ .fd = -1, .line = { .name = "stderr", .buf = linebufs[1] } },
	{ .fd = -1, .line = { .name = "runtime" } },
};
/* While `run` runs, streams 0 and 1 are also the runtime's stdout and stderr (detached, it hands its
 * own stdio to the container). They are left unread until it exits: on success all of it is the
 * container's and goes to the log; on failure it is the runtime's error. */
static int collecting = 1;
static char errbuf[ERRBUF_MAX];
static size_t errlen;
static pid_t kill_on_fail; /* a started container that must not outlive a failed start */
static int rootfs_mounted; /* by us: a failed start unmounts it again */
static int sigfd = -1, devnull = -1;

static struct { pid_t pid; int status; } reaped[32];
static unsigned n_reaped;

/* Unmounts the container's root; a busy one (a process still holds it) is detached instead. */
static int umount_rootfs(void)
{
	if (umount2(opt.rootfs, 0) == 0 || errno == EINVAL) /* EINVAL: not a mount point (copy mode) */
		return 0;
	if (errno == EBUSY && umount2(opt.rootfs, MNT_DETACH) == 0)
		return 0;
	warnf("unmount %s: %s", opt.rootfs, strerror(errno));
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
	char msg[ERRBUF_MAX + 512], esc[sizeof msg * 2], line[sizeof esc + 16];
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

static long long mono_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		fail("clock_gettime: %s", strerror(errno));
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
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

static void on_data(struct stream *s, const char *p, size_t n)
{
	if (s == &streams[2] || collecting) {
		size_t take = n < sizeof errbuf - 1 - errlen ? n : sizeof errbuf - 1 - errlen;
		memcpy(errbuf + errlen, p, take);
		errlen += take;
	} else {
		cri_log_feed(&crilog, &s->line, p, n);
	}
}

static void close_stream(struct stream *s)
{
	if (s->fd >= 0 && close(s->fd) < 0)
		warnf("close %s: %s", s->line.name, strerror(errno));
	s->fd = -1;
	if (s != &streams[2] && !collecting) /* output ended without a newline */
		cri_log_flush(&crilog, &s->line);
	s->line.len = 0;
}

/* Reads up to max_reads times (0: until EAGAIN); closes the stream at EOF. */
static void drain(struct stream *s, int max_reads)
{
	static char rbuf[65536];
	for (int k = 0; s->fd >= 0 && (max_reads == 0 || k < max_reads); k++) {
		ssize_t r = read(s->fd, rbuf, sizeof rbuf);
		if (r > 0) {
			on_data(s, rbuf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r < 0)
			warnf("read %s: %s", s->line.name, strerror(errno));
		close_stream(s);
	}
}

/* ---- children */

static void reap_all(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		reaped[n_reaped % 32].pid = p;
		reaped[n_reaped % 32].status = st;
		n_reaped++;
	}
}

static int find_reaped(pid_t pid, int *status)
{
	for (unsigned i = 0; i < 32 && i < n_reaped; i++)
		if (reaped[i].pid == pid) {
			*status = reaped[i].status;
			return 1;
		}
	return 0;
}

/* Polls the signalfd and the open streams until done(arg) or the deadline (0: none). */
static int pump(int (*done)(long), long arg, long long deadline)
{
	for (;;) {
		if (done(arg))
			return 1;
		int timeout = -1;
		if (deadline) {
			long long now = mono_ms();
			if (now >= deadline)
				return 0;
			timeout = (int)(deadline - now);
		}
		struct pollfd pf[4] = { { .fd = sigfd, .events = POLLIN } };
		struct stream *who[4] = { NULL };
		nfds_t n = 1;
		for (int i = collecting ? 2 : 0; i < 3; i++)
			if (streams[i].fd >= 0) {
				pf[n].fd = streams[i].fd, pf[n].events = POLLIN, who[n++] = &streams[i];
			}
		if (poll(pf, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll: %s", strerror(errno));
		}
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
				if (si.ssi_signo != SIGCHLD)
					warnf("ignoring signal %u (stop the container through the runtime)", si.ssi_signo);
			reap_all();
		}
		for (nfds_t i = 1; i < n; i++)
			if (pf[i].revents)
				drain(who[i], 4); /* a chatty stream must not starve the signalfd */
	}
}

static int done_reaped(long pid) { int st; return find_reaped((pid_t)pid, &st); }
static int done_eof(long unused) { (void)unused; return streams[0].fd < 0 && streams[1].fd < 0; }

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
	long pid = read_small(opt.pid_file, buf, sizeof buf) > 0 ? strtol(buf, &end, 10) : 0;
	return pid > 0 && pid <= INT_MAX && end && (*end == 0 || *end == '\n') ? (pid_t)pid : 0;
}

/* Runs `runtime run` to completion; on failure reports its output (and kills whatever it started). */
static void run_runtime(pid_t pid)
{
	int st;
	if (!pump(done_reaped, pid, mono_ms() + opt.timeout_ms)) {
		if (kill(pid, SIGKILL) < 0)
			warnf("kill runtime: %s", strerror(errno));
		kill_on_fail = container_pid();
		fail("runtime run timed out after %lld ms", opt.timeout_ms);
	}
	find_reaped(pid, &st);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	kill_on_fail = container_pid();
	drain(&streams[1], 0); /* stderr first: where the runtime puts its error */
	drain(&streams[0], 0);
	while (errlen > 0 && (errbuf[errlen - 1] == '\n' || errbuf[errlen - 1] == ' '))
		errlen--;
	errbuf[errlen] = 0;
	char how[64];
	if (WIFEXITED(st))
		snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
	else
		snprintf(how, sizeof how, "signal %d", WTERMSIG(st));
	fail("runtime run failed (%s): %s", how, errlen ? errbuf : "no output");
}

static void make_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
		fail("pipe: %s", strerror(errno));
}

/* After the exit (--cleanup): `RUNTIME delete --force ID`, then unmount the root, so that berth needs
 * no process of its own for either. 1 when both worked; a failure is only a warning, and berth
 * does the cleanup itself when the exit record says it was not done. */
static int cleanup_after_exit(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		warnf("cleanup: pipe: %s", strerror(errno));
		return 0;
	}
	streams[2].fd = fds[0];
	const char *del[] = { "delete", "--force", opt.id, NULL };
	pid_t pid = spawn(del, fds[1], fds[1]);
	if (close(fds[1]) < 0)
		warnf("close: %s", strerror(errno));
	int st = 0, ok = pump(done_reaped, pid, mono_ms() + opt.timeout_ms);
	if (!ok && kill(pid, SIGKILL) < 0)
		warnf("kill runtime delete: %s", strerror(errno));
	drain(&streams[2], 0);
	close_stream(&streams[2]);
	errbuf[errlen] = 0;
	ok = ok && find_reaped(pid, &st) && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!ok)
		warnf("runtime delete: %s", errlen ? errbuf : "failed or timed out");
	errlen = 0;
	return umount_rootfs() == 0 && ok;
}

static void usage(void)
{
	sync_send("{\"error\":\"berth-monitor: bad arguments\"}\n");
	dprintf(2, "usage: berth-monitor --id ID --bundle DIR --state-dir DIR --runtime PATH [--runtime-arg ARG]...\n"
		   "  [--log-path FILE] [--log-max-bytes N] [--log-max-files N] [--sync-fd FD] [--cgroup-dir DIR]\n"
		   "  [--runtime-timeout MS] [--private-cgroup2] [--mount-overlay OPTIONS] [--cleanup] [--no-fsync-exit]\n");
	exit(2);
}

static void abs_path(char *dst, const char *src, const char *what)
{
	if (!realpath(src, dst))
		fail("%s %s: %s", what, src, strerror(errno));
}

static int bad_args;
static long long num(const char *s, long long min, long long max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_args = 1;
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id", 1, 0, 'i' }, { "bundle", 1, 0, 'b' }, { "state-dir", 1, 0, 's' }, { "runtime", 1, 0, 'r' },
		{ "runtime-arg", 1, 0, 'a' }, { "log-path", 1, 0, 'l' }, { "log-max-bytes", 1, 0, 'm' },
		{ "log-max-files", 1, 0, 'f' }, { "sync-fd", 1, 0, 'y' }, { "cgroup-dir", 1, 0, 'c' },
		{ "runtime-timeout", 1, 0, 't' }, { "private-cgroup2", 0, 0, 'p' }, { "mount-overlay", 1, 0, 'o' },
		{ "cleanup", 0, 0, 'k' }, { "no-fsync-exit", 0, 0, 'n' }, { 0, 0, 0, 0 },
	};
	const char *bundle = NULL, *state = NULL, *log = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': opt.id = optarg; break;
		case 'b': bundle = optarg; break;
		case 's': state = optarg; break;
		case 'r': opt.runtime = optarg; break;
		case 'a':
			if (opt.n_rt_args < MAX_RT_ARGS)
				opt.rt_args[opt.n_rt_args++] = optarg;
			else
				bad_args = 1;
			break;
		case 'l': log = optarg; break;
		case 'm': crilog.max_bytes = num(optarg, 0, LLONG_MAX); break;
		case 'f': crilog.max_files = (int)num(optarg, 1, 100); break;
		case 'y': /* close-on-exec: the runtime and the container must not hold it */
			opt.sync_fd = (int)num(optarg, 3, INT_MAX);
			if (bad_args || fcntl(opt.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
				opt.sync_fd = -1, bad_args = 1;
			break;
		case 'c': opt.cgroup_dir = optarg; break;
		case 't': opt.timeout_ms = num(optarg, 1, 3600000); break;
		case 'p': opt.private_cg2 = 1; break;
		case 'o': opt.overlay = optarg; break;
		case 'k': opt.cleanup = 1; break;
		case 'n': opt.fsync_exit = 0; break;
		default: bad_args = 1;
		}
	}
	if (bad_args || optind != argc || !opt.id || !bundle || !state || !opt.runtime)
		usage();
	if (crilog.max_bytes > 0 && crilog.max_bytes < 4096)
		fail("--log-max-bytes must be 0 (no cap) or at least 4096");
	if (crilog.max_bytes > 0 && crilog.max_bytes / 4 < (long long)crilog.line_max)
		crilog.line_max = (size_t)(crilog.max_bytes / 4); /* a record always fits in one file */
	abs_path(opt.bundle, bundle, "bundle");
	abs_path(opt.state_dir, state, "state dir");
	if (log && (log[0] != '/' || strlen(log) >= PATH_MAX))
		fail("--log-path must be absolute");
	snprintf(crilog.path, sizeof crilog.path, "%s", log ? log : "");
	if (!log)
		snprintf(crilog.path, sizeof crilog.path, "%s/container.log", opt.state_dir);
	snprintf(opt.pid_file, sizeof opt.pid_file, "%s/container.pid", opt.state_dir);
	snprintf(opt.rootfs, sizeof opt.rootfs, "%s/rootfs", opt.bundle);
	/* nothing of the caller's but the sync fd reaches the runtime */
	unsigned keep = opt.sync_fd < 0 ? ~0U : (unsigned)opt.sync_fd;
	if ((keep > 3 && close_range(3, keep - 1, 0) < 0) || (keep != ~0U && close_range(keep + 1, ~0U, 0) < 0))
		fail("close_range: %s", strerror(errno));

	/* Detach: fork, setsid, fork again. The caller's child exits at once; the grandchild is
	 * the monitor, in its own session, outside the caller's process group. */
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
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
	    (sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		fail("signals: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));

	/* monitor.pid: our pid and start time (clock ticks after boot, /proc/self/stat field 22) */
	char stat[1024], line[256];
	char *rp = read_small("/proc/self/stat", stat, sizeof stat) > 0 ? strrchr(stat, ')') : NULL;
	unsigned long long starttime = 0;
	for (int field = 2; rp && field < 22; field++)
		rp = strchr(rp + 1, ' ');
	if (!rp || sscanf(rp, " %llu", &starttime) != 1)
		fail("cannot parse /proc/self/stat");
	snprintf(line, sizeof line, "{\"pid\":%d,\"startTime\":%llu}\n", (int)getpid(), starttime);
	/* Not fsynced: it only means something while this process lives, and after a power cut a missing
	 * or empty file reads as "monitor gone", which is then true. */
	if (write_atomic(opt.state_dir, "monitor.pid", line, 0) < 0)
		fail("write monitor.pid: %s", strerror(errno));

	/* The overlay root, mounted here rather than by berth: a syscall instead of a mount(8) process. */
	if (opt.overlay) {
		if (mount("overlay", opt.rootfs, "overlay", 0, opt.overlay) < 0)
			fail("cannot mount the container root at %s: %s", opt.rootfs, strerror(errno));
		rootfs_mounted = 1;
	}
	if (cri_log_open(&crilog) < 0)
		fail("log %s: %s", crilog.path, strerror(errno));
	char exit_path[PATH_MAX + 16];
	snprintf(exit_path, sizeof exit_path, "%s/exit", opt.state_dir);
	if ((unlink(opt.pid_file) < 0 && errno != ENOENT) || (unlink(exit_path) < 0 && errno != ENOENT))
		fail("stale state in %s: %s", opt.state_dir, strerror(errno));

	int out[2], err[2];
	make_pipe(out);
	make_pipe(err);
	streams[0].fd = out[0], streams[1].fd = err[0];
	long long oom_before = oom_baseline();
	/* One runtime process instead of create + start (conmon's two): detached, the runtime gives the
	 * container its own stdio, our pipes; the container is our child once the runtime exits. */
	const char *run[] = { "run", "--detach", "--bundle", opt.bundle, "--pid-file", opt.pid_file, opt.id, NULL };
	pid_t rpid = spawn(run, out[1], err[1]);
	if (close(out[1]) < 0 || close(err[1]) < 0)
		fail("close: %s", strerror(errno));
	run_runtime(rpid);
	pid_t cpid = container_pid();
	if (cpid <= 0)
		fail("runtime run left no pid in %s", opt.pid_file);
	collecting = 0;
	rootfs_mounted = 0; /* the container runs on it now: unmounted only after the exit */

	char started[40], finished[40];
	rfc3339(started);
	snprintf(line, sizeof line, "{\"pid\":%d}\n", (int)cpid);
	sync_send(line);

	pump(done_reaped, (long)cpid, 0);
	rfc3339(finished);
	pump(done_eof, 0, mono_ms() + DRAIN_MS); /* the container's writers are gone: read to EOF */
	close_stream(&streams[0]);
	close_stream(&streams[1]);

	int st = 0;
	find_reaped(cpid, &st);
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
	if (write_atomic(opt.state_dir, "exit", exitjson, opt.fsync_exit) < 0) {
		warnf("write exit: %s", strerror(errno));
		return 1;
	}
	if (crilog.dropped)
		warnf("%lu log lines dropped", crilog.dropped);
	return 0;
}
