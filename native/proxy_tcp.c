/* The port proxy's TCP side: each accepted connection gets a non-blocking connect to the container and
 * two pipes; each direction is splice(2)d socket → pipe → socket, so no byte passes through the
 * monitor's memory. Level-triggered epoll, the interest recomputed after every event. The cap bounds
 * the fds (6 per connection); at the cap the listeners are not polled and new connections wait in the
 * kernel's backlog rather than being refused. */
#define _GNU_SOURCE
#include "proxy_int.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define TCP_CONNS_MAX 64

/* One direction of a TCP connection: bytes spliced from one socket into the pipe, then out to the other. */
struct half {
	int pipe[2];
	size_t queued; /* in the pipe */
	int eof;       /* the source sent FIN */
	int full;      /* the last splice in found nothing or no room while the pipe held data: wait for it to drain */
	int shut;      /* the FIN was passed on (shutdown(SHUT_WR) of the destination) */
};

struct conn {
	int fd[2];         /* 0: the client's, 1: ours to the container */
	struct half dir[2]; /* dir[i] carries fd[i] → fd[!i] */
	int connecting, registered[2];
	int hup[2];   /* fd[i] reported EPOLLHUP: it may only be read from now on */
	unsigned gen; /* in the epoll data: an event of a closed connection must not reach its slot's next one */
};

static struct conn conns[TCP_CONNS_MAX];
static int n_conns, listening = 1;

/* A free slot: fds -1, the generation kept (and moved on). */
static void conn_clear(struct conn *c)
{
	unsigned gen = c->gen + 1;
	memset(c, 0, sizeof *c);
	c->gen = gen;
	c->fd[0] = c->fd[1] = -1;
	c->dir[0].pipe[0] = c->dir[0].pipe[1] = c->dir[1].pipe[0] = c->dir[1].pipe[1] = -1;
}

void tcp_reset(void)
{
	for (int i = 0; i < TCP_CONNS_MAX; i++)
		conn_clear(&conns[i]);
}

/* Listeners are polled only while a TCP slot is free (a UDP listener always). */
static void set_listening(int on)
{
	if (on == listening)
		return;
	listening = on;
	for (int i = 0; i < proxy_n_listeners; i++)
		if (!proxy_listeners[i].udp)
			(void)proxy_ep_set(EPOLL_CTL_MOD, proxy_listeners[i].fd, on ? EPOLLIN : 0, K_LISTEN, i);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]); /* also takes it out of the epoll set */
		for (int j = 0; j < 2; j++)
			if (c->dir[i].pipe[j] >= 0)
				close(c->dir[i].pipe[j]);
	}
	conn_clear(c);
	n_conns--;
	set_listening(1);
}

/* What fd[side] waits for: reading while its direction can take more, writing while the other has bytes
 * for it (or the connect is in progress). An fd that needs nothing more (read to EOF, FIN passed on to
 * it), or that hung up and is not to be read now, leaves the set: epoll reports EPOLLHUP whatever the
 * interest, and level-triggered it would spin the loop. -1 on an epoll error. */
static int conn_interest(struct conn *c, int side)
{
	const struct half *in = &c->dir[side], *out = &c->dir[!side];
	uint32_t ev = 0;
	if (!c->connecting && !in->eof && !in->full)
		ev |= EPOLLIN;
	if (out->queued > 0 || (side == 1 && c->connecting))
		ev |= EPOLLOUT;
	if ((in->eof && out->shut) || (c->hup[side] && !(ev & EPOLLIN))) {
		if (!c->registered[side])
			return 0;
		c->registered[side] = 0;
		return epoll_ctl(proxy_epfd, EPOLL_CTL_DEL, c->fd[side], NULL);
	}
	int op = c->registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	c->registered[side] = 1;
	return proxy_ep_set(op, c->fd[side], ev, K_CONN, (int)((c->gen & 0xffff) << 16 | (unsigned)(c - conns) << 1 | (unsigned)side));
}

/* Moves what it can of direction d: socket → pipe → socket, with SPLICE_F_MOVE (no copy through user
 * space). -1 on a socket error (reset, EPIPE): the connection is over. */
static int pump(struct conn *c, int d)
{
	struct half *h = &c->dir[d];
	int src = c->fd[d], dst = c->fd[!d];
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		int progress = 0;
		if (!h->eof && !h->full) {
			ssize_t r = splice(src, NULL, h->pipe[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (r > 0)
				h->queued += (size_t)r, progress = 1;
			else if (r == 0)
				h->eof = 1, progress = 1;
			else if (errno == EAGAIN)
				/* The socket is empty or the pipe has no free slot (a slot may hold a small skb
				 * fragment, so bytes queued tell nothing of the room left): with data queued, stop
				 * reading until some of it went out. */
				h->full = h->queued > 0;
			else if (errno != EINTR)
				return -1;
		}
		if (h->queued > 0) {
			ssize_t w = splice(h->pipe[0], NULL, dst, NULL, h->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (w > 0)
				h->queued -= (size_t)w, h->full = 0, progress = 1;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
		}
		if (h->eof && h->queued == 0 && !h->shut) {
			h->shut = 1; /* half-close, as the client did: the other side may still answer */
			if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN)
				return -1;
		}
		if (!progress)
			break;
	}
	return 0;
}

void tcp_event(int data, uint32_t events)
{
	struct conn *c = &conns[(data & 0xffff) >> 1];
	int side = data & 1;
	if (c->fd[0] < 0 || (c->gen & 0xffff) != (unsigned)data >> 16)
		return; /* closed earlier in this batch of events (and maybe reused) */
	if (c->connecting && side == 1) {
		int e = 0;
		socklen_t len = sizeof e;
		if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e != 0) {
			conn_close(c); /* the container refused or is unreachable: the client sees its connection closed */
			return;
		}
		c->connecting = 0;
	}
	if ((events & EPOLLERR) || (!c->connecting && (pump(c, 0) < 0 || pump(c, 1) < 0))) {
		conn_close(c);
		return;
	}
	if (c->dir[0].shut && c->dir[1].shut) {
		conn_close(c);
		return;
	}
	if (events & EPOLLHUP)
		c->hup[side] = 1;
	if (conn_interest(c, 0) < 0 || conn_interest(c, 1) < 0) {
		warnf("port proxy: epoll: %s", strerror(errno));
		conn_close(c);
	}
}

void tcp_accept(struct listener *l)
{
	while (n_conns < TCP_CONNS_MAX) {
		int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			warnf("port proxy: accept: %s", strerror(errno));
			/* Out of fds or memory: the pending connection stays readable, and a level-triggered
			 * listener would spin. Rest it until one of ours closes (if none is open, the next
			 * event retries). */
			if (n_conns > 0)
				set_listening(0);
			return;
		}
		struct conn *c = conns;
		while (c->fd[0] >= 0)
			c++;
		n_conns++;
		c->fd[0] = cfd;
		c->connecting = 1;
		c->fd[1] = socket(l->target.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd[1] < 0 || pipe2(c->dir[0].pipe, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(c->dir[1].pipe, O_NONBLOCK | O_CLOEXEC) < 0 ||
		    (connect(c->fd[1], &l->target.sa, proxy_addr_len(&l->target)) < 0 && errno != EINPROGRESS) ||
		    conn_interest(c, 0) < 0 || conn_interest(c, 1) < 0) {
			conn_close(c);
			continue;
		}
	}
	set_listening(0);
}

void tcp_close_all(void)
{
	for (int i = 0; i < TCP_CONNS_MAX; i++)
		if (conns[i].fd[0] >= 0)
			conn_close(&conns[i]);
}
