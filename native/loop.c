#define _GNU_SOURCE
#include "loop.h"
#include "proxy.h"
#include "tty.h"
#include "util.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERRBUF_MAX 4096
#define REAPED_MAX 32

struct stream {
	int fd;
	struct cri_line line; /* the runtime's stream has no line buffer */
};
static char linebufs[2][LINE_MAX_DEFAULT]; /* bss: untouched pages cost no memory */
static struct stream streams[3] = {
	{ .fd = -1, .line = { .name = "stdout", .buf = linebufs[0] } },
	{ .fd = -1, .line = { .name = "stderr", .buf = linebufs[1] } },
	{ .fd = -1, .line = { .name = "runtime" } },
};
static int sigfd = -1, capturing, tty;
static struct cri_log *crilog;
static char errbuf[ERRBUF_MAX];
static size_t errlen;
static struct { pid_t pid; int status; } reaped[REAPED_MAX];
static unsigned n_reaped;

void loop_init(int fd, struct cri_log *log)
{
	sigfd = fd;
	crilog = log;
}

void loop_watch(enum stream_id s, int fd) { streams[s].fd = fd; }
void loop_capture(int on) { capturing = on; }
void loop_tty(int on) { tty = on; }

static void on_data(struct stream *s, const char *p, size_t n)
{
	if (s == &streams[STREAM_RUNTIME] || capturing) {
		size_t take = n < sizeof errbuf - 1 - errlen ? n : sizeof errbuf - 1 - errlen;
		memcpy(errbuf + errlen, p, take);
		errlen += take;
	} else {
		cri_log_feed(crilog, &s->line, p, n);
	}
}

void loop_close(enum stream_id id)
{
	struct stream *s = &streams[id];
	if (s->fd >= 0 && close(s->fd) < 0)
		warnf("close %s: %s", s->line.name, strerror(errno));
	s->fd = -1;
	if (id != STREAM_RUNTIME && !capturing) /* output ended without a newline */
		cri_log_flush(crilog, &s->line);
	s->line.len = 0;
}

/* Reads up to max_reads times (0: until EAGAIN); closes the stream at EOF. */
static void drain(enum stream_id id, int max_reads)
{
	static char rbuf[65536];
	struct stream *s = &streams[id];
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
		loop_close(id);
	}
}

void loop_drain(enum stream_id s) { drain(s, 0); }

const char *loop_captured(void)
{
	while (errlen > 0 && (errbuf[errlen - 1] == '\n' || errbuf[errlen - 1] == ' '))
		errlen--;
	errbuf[errlen] = 0;
	return errbuf;
}

void loop_clear_captured(void) { errlen = 0; }

static void reap_all(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		reaped[n_reaped % REAPED_MAX].pid = p;
		reaped[n_reaped % REAPED_MAX].status = st;
		n_reaped++;
	}
}

int loop_reaped(pid_t pid, int *status)
{
	for (unsigned i = 0; i < REAPED_MAX && i < n_reaped; i++)
		if (reaped[i].pid == pid) {
			*status = reaped[i].status;
			return 1;
		}
	return 0;
}

int loop_done_reaped(long pid) { int st; return loop_reaped((pid_t)pid, &st); }
int loop_done_eof(long unused)
{
	(void)unused;
	return streams[STREAM_STDOUT].fd < 0 && streams[STREAM_STDERR].fd < 0 && !(tty && tty_master_open());
}

int loop_pump(int (*done)(long), long arg, long long deadline)
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
		struct pollfd pf[4 + 16 + 1] = { { .fd = sigfd, .events = POLLIN } };
		enum stream_id who[4] = { 0 };
		nfds_t n = 1;
		for (int i = capturing ? STREAM_RUNTIME : STREAM_STDOUT; i <= STREAM_RUNTIME; i++)
			if (streams[i].fd >= 0) {
				pf[n].fd = streams[i].fd, pf[n].events = POLLIN, who[n++] = (enum stream_id)i;
			}
		/* The terminal's fds after the pipes: served only once the start is over (not while capturing). */
		int n_tty = tty && !capturing ? tty_pollfds(pf + n, 16) : 0;
		/* The port proxy's epoll set, last: also served only once the container runs (until then a
		 * connection waits in the listener's backlog rather than being refused by a container not up). */
		nfds_t at_proxy = n + (nfds_t)n_tty, total = at_proxy;
		if (!capturing && proxy_fd() >= 0)
			pf[total].fd = proxy_fd(), pf[total++].events = POLLIN;
		if (poll(pf, total, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
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
		if (n_tty > 0)
			tty_handle(pf + n, n_tty);
		if (total > at_proxy && pf[at_proxy].revents)
			proxy_handle();
	}
}
