#define _GNU_SOURCE
#include "tty.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define MAX_CLIENTS 8
/* Output no client has seen yet (none attached): the first client to attach gets it, so `run -it`
 * shows the prompt the shell printed before the CLI connected. Bounded: the oldest half goes first. */
#define BACKLOG_MAX 65536

static int dirfd_ = -1, console_ls = -1, attach_ls = -1, ctl = -1, master = -1;
static int clients[MAX_CLIENTS];
static int n_clients, had_client;
static struct cri_log *crilog;
static char linebuf[LINE_MAX_DEFAULT];
static struct cri_line line = { .name = "stdout", .buf = linebuf }; /* a terminal merges stdout and stderr */
static char backlog[BACKLOG_MAX];
static size_t backlog_len;

/* A listening unix socket at DIR/name. sun_path holds 108 bytes and a state dir may be longer: bind
 * through /proc/self/fd/DIRFD/name, which the kernel resolves at bind time (conmon does the same). */
static int listen_at(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dirfd_, name);
	if (unlinkat(dirfd_, name, 0) < 0 && errno != ENOENT)
		return -1;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || fchmodat(dirfd_, name, 0600, 0) < 0 || listen(s, MAX_CLIENTS) < 0) {
		int saved = errno;
		close(s);
		errno = saved;
		return -1;
	}
	return s;
}

int tty_setup(const char *state_dir, struct cri_log *log, char *console_path, size_t cap)
{
	crilog = log;
	dirfd_ = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0 || (console_ls = listen_at(TTY_CONSOLE_SOCK)) < 0 || (attach_ls = listen_at(TTY_ATTACH_SOCK)) < 0)
		return -1;
	/* O_RDWR: the fifo never reads EOF when a writer goes, and the open does not wait for one. */
	if ((unlinkat(dirfd_, TTY_CTL_FIFO, 0) < 0 && errno != ENOENT) || mkfifoat(dirfd_, TTY_CTL_FIFO, 0600) < 0)
		return -1;
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d/" TTY_CTL_FIFO, dirfd_);
	if ((ctl = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -1;
	/* The runtime is our child: our /proc entry resolves for it as /proc/self does for us. */
	snprintf(console_path, cap, "/proc/%d/fd/%d/" TTY_CONSOLE_SOCK, (int)getpid(), dirfd_);
	return 0;
}

int tty_take_master(void)
{
	/* The runtime connected, sent the fd and exited: the connection waits in the backlog. */
	int c = accept4(console_ls, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return errno == EAGAIN ? (errno = ENOMSG, -1) : -1;
	char data[4096], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { data, sizeof data };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t r;
	while ((r = recvmsg(c, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	close(c);
	struct cmsghdr *cm = r >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (r < 0)
		return -1;
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
		errno = ENOMSG;
		return -1;
	}
	memcpy(&master, CMSG_DATA(cm), sizeof master);
	close(console_ls);
	console_ls = -1;
	(void)unlinkat(dirfd_, TTY_CONSOLE_SOCK, 0);
	return fcntl(master, F_SETFL, O_NONBLOCK);
}

int tty_master_open(void) { return master >= 0; }
int tty_done_attached(long unused) { (void)unused; return had_client; }

static void drop_client(int i, const char *why)
{
	if (why)
		warnf("attach client dropped: %s", why);
	close(clients[i]);
	clients[i] = clients[--n_clients];
}

/* A client must keep up: a write that would block drops it rather than blocking the container. */
static void send_all_clients(const char *p, size_t n)
{
	for (int i = n_clients - 1; i >= 0; i--) {
		ssize_t w = send(clients[i], p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w != (ssize_t)n)
			drop_client(i, w < 0 ? strerror(errno) : "too slow");
	}
}

static void keep_backlog(const char *p, size_t n)
{
	if (n > BACKLOG_MAX)
		p += n - BACKLOG_MAX, n = BACKLOG_MAX;
	if (backlog_len + n > BACKLOG_MAX) {
		size_t drop = backlog_len + n - BACKLOG_MAX;
		drop = drop < BACKLOG_MAX / 2 ? BACKLOG_MAX / 2 : drop;
		drop = drop > backlog_len ? backlog_len : drop;
		memmove(backlog, backlog + drop, backlog_len - drop);
		backlog_len -= drop;
	}
	memcpy(backlog + backlog_len, p, n);
	backlog_len += n;
}

/* Reads the master a few times (a chatty container must not starve the signalfd); EIO means every
 * process of the container closed its side: the terminal's end of file. */
static void read_master(void)
{
	static char buf[65536];
	for (int k = 0; master >= 0 && k < 4; k++) {
		ssize_t r = read(master, buf, sizeof buf);
		if (r > 0) {
			cri_log_feed(crilog, &line, buf, (size_t)r);
			if (n_clients > 0)
				send_all_clients(buf, (size_t)r);
			else
				keep_backlog(buf, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r < 0 && errno != EIO)
			warnf("read terminal: %s", strerror(errno));
		close(master);
		master = -1;
	}
}

static void accept_client(void)
{
	int c = accept4(attach_ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (n_clients == MAX_CLIENTS) {
		warnf("attach: more than %d clients, refusing one", MAX_CLIENTS);
		close(c);
		return;
	}
	int sndbuf = 1 << 20; /* capped by net.core.wmem_max: room for a burst before "too slow" */
	(void)setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	clients[n_clients++] = c;
	had_client = 1;
	if (backlog_len > 0) {
		send_all_clients(backlog, backlog_len);
		backlog_len = 0;
	}
}

/* What a client types goes to the terminal; its end of file detaches it. */
static void client_input(int i)
{
	char buf[4096];
	ssize_t r = recv(clients[i], buf, sizeof buf, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		drop_client(i, r < 0 ? strerror(errno) : NULL);
		return;
	}
	if (master >= 0 && write_all(master, buf, (size_t)r) < 0)
		warnf("write terminal: %s", strerror(errno));
}

/* "ROWS COLS\n" lines: TIOCSWINSZ, after which the kernel sends SIGWINCH to the terminal's
 * foreground process group. */
static void read_ctl(void)
{
	static char buf[256];
	static size_t len;
	ssize_t r = read(ctl, buf + len, sizeof buf - 1 - len);
	if (r <= 0)
		return;
	len += (size_t)r;
	buf[len] = 0;
	char *nl;
	while ((nl = strchr(buf, '\n'))) {
		*nl = 0;
		unsigned rows, cols;
		if (sscanf(buf, "%u %u", &rows, &cols) == 2 && rows > 0 && cols > 0 && rows < 65536 && cols < 65536 && master >= 0) {
			struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
			if (ioctl(master, TIOCSWINSZ, &ws) < 0)
				warnf("resize: %s", strerror(errno));
		}
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len + 1);
	}
	if (len == sizeof buf - 1) /* a line that long is no resize request */
		len = 0;
}

int tty_pollfds(struct pollfd *pf, int max)
{
	int n = 0;
	if (max < 3 + MAX_CLIENTS)
		return 0;
	pf[n++] = (struct pollfd){ .fd = master, .events = POLLIN }; /* -1: ignored by poll */
	pf[n++] = (struct pollfd){ .fd = attach_ls, .events = POLLIN };
	pf[n++] = (struct pollfd){ .fd = ctl, .events = POLLIN };
	for (int i = 0; i < n_clients; i++)
		pf[n++] = (struct pollfd){ .fd = clients[i], .events = POLLIN };
	return n;
}

void tty_handle(const struct pollfd *pf, int n)
{
	if (n < 3)
		return;
	if (pf[0].revents && pf[0].fd == master)
		read_master();
	if (pf[1].revents & POLLIN)
		accept_client();
	if (pf[2].revents & POLLIN)
		read_ctl();
	/* From the end: drop_client moves the last client into the slot it frees. */
	for (int k = n - 1; k >= 3; k--)
		for (int i = 0; i < n_clients; i++)
			if (clients[i] == pf[k].fd && pf[k].revents) {
				client_input(i);
				break;
			}
}

void tty_shutdown(void)
{
	if (dirfd_ < 0)
		return;
	cri_log_flush(crilog, &line);
	/* A client whose connect is still in the listen queue gets what nobody saw (a command that ended
	 * before its CLI attached), then its end of file like the others. */
	for (int k = 0; attach_ls >= 0 && k < MAX_CLIENTS && n_clients < MAX_CLIENTS; k++) {
		int before = n_clients;
		accept_client();
		if (n_clients == before)
			break;
	}
	while (n_clients > 0)
		drop_client(n_clients - 1, NULL);
	if (master >= 0)
		close(master);
	master = -1;
	int *fds[] = { &console_ls, &attach_ls, &ctl };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0)
			close(*fds[i]), *fds[i] = -1;
	const char *names[] = { TTY_CONSOLE_SOCK, TTY_ATTACH_SOCK, TTY_CTL_FIFO };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (unlinkat(dirfd_, names[i], 0) < 0 && errno != ENOENT)
			warnf("remove %s: %s", names[i], strerror(errno));
}
