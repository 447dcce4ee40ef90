#define _GNU_SOURCE
#include "proxy.h"
#include "util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Caps, so that a flood costs the monitor a bounded number of fds (6 per TCP connection) and no more
 * memory: when every TCP slot is taken the listeners are not polled, and new connections wait in the
 * kernel's backlog; a new UDP client takes the slot of the least recently active one. */
#define TCP_CONNS_MAX 64
#define UDP_ASSOCS_MAX 64
#define UDP_IDLE_MS 90000 /* docker-proxy's UDP association timeout */
#define BACKLOG 128
#define PUMP_ROUNDS 16 /* per event: a fast stream must not starve the loop's other fds */

enum kind { K_LISTEN = 1, K_CONN, K_ASSOC, K_TIMER };

struct listener {
	int fd, udp;
	union sockaddr_any target;
};

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

struct assoc {
	int fd, listener; /* fd -1: free */
	union sockaddr_any client;
	socklen_t client_len;
	long long last; /* CLOCK_MONOTONIC ms of the last datagram either way */
};

static int epfd = -1, timerfd = -1, timer_armed, n_listeners, listening = 1;
static struct listener listeners[PROXY_LISTENERS_MAX];
static struct conn conns[TCP_CONNS_MAX];
static struct assoc assocs[UDP_ASSOCS_MAX];
static int n_conns;
static char dgram[65536]; /* bss: only the pages a datagram touches become resident */

static socklen_t addr_len(const union sockaddr_any *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in4;
}

static void set_port(union sockaddr_any *a, int port)
{
	if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons((uint16_t)port);
	else
		a->in4.sin_port = htons((uint16_t)port);
}

static int parse_addr(const char *ip, union sockaddr_any *a)
{
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET6, ip, &a->in6.sin6_addr) == 1)
		a->sa.sa_family = AF_INET6;
	else if (inet_pton(AF_INET, ip, &a->in4.sin_addr) == 1)
		a->sa.sa_family = AF_INET;
	else
		return -1;
	return 0;
}

int proxy_parse(const char *text, struct proxy_spec *s)
{
	char proto[4], lip[INET6_ADDRSTRLEN], tip[INET6_ADDRSTRLEN], extra;
	int lport, tport, count;
	if (sscanf(text, "%3[a-z],%45[0-9a-fA-F:.],%d,%45[0-9a-fA-F:.],%d,%d%c", proto, lip, &lport, tip, &tport, &count, &extra) != 6)
		return -1;
	if ((strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) || count < 1 || lport < 1 || tport < 1 ||
	    lport > 65536 - count || tport > 65536 - count || parse_addr(lip, &s->listen) < 0 || parse_addr(tip, &s->target) < 0)
		return -1;
	s->udp = proto[0] == 'u';
	s->count = count;
	set_port(&s->listen, lport);
	set_port(&s->target, tport);
	return 0;
}

static void describe(const union sockaddr_any *a, int udp, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int v6 = a->sa.sa_family == AF_INET6;
	inet_ntop(a->sa.sa_family, v6 ? (const void *)&a->in6.sin6_addr : (const void *)&a->in4.sin_addr, ip, sizeof ip);
	snprintf(out, cap, v6 ? "[%s]:%d/%s" : "%s:%d/%s", ip, ntohs(v6 ? a->in6.sin6_port : a->in4.sin_port), udp ? "udp" : "tcp");
}

static int ep_set(int op, int fd, uint32_t events, enum kind k, int index)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)k << 32 | (uint32_t)index };
	return epoll_ctl(epfd, op, fd, &ev);
}

static int open_listener(const union sockaddr_any *at, int udp)
{
	int fd = socket(at->sa.sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	/* V6ONLY: [::1]:P is this port on IPv6 alone; SO_REUSEADDR (TCP): a restart binds despite TIME_WAIT. */
	if ((at->sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    (!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    bind(fd, &at->sa, addr_len(at)) < 0 || (!udp && listen(fd, BACKLOG) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A free slot: fds -1, the generation kept (and moved on). */
static void conn_clear(struct conn *c)
{
	unsigned gen = c->gen + 1;
	memset(c, 0, sizeof *c);
	c->gen = gen;
	c->fd[0] = c->fd[1] = -1;
	c->dir[0].pipe[0] = c->dir[0].pipe[1] = c->dir[1].pipe[0] = c->dir[1].pipe[1] = -1;
}

int proxy_open(const struct proxy_spec *specs, int n, char *err, size_t cap)
{
	if (n == 0)
		return 0;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		snprintf(err, cap, "port proxy: epoll: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		assocs[i].fd = -1;
	for (int i = 0; i < TCP_CONNS_MAX; i++)
		conn_clear(&conns[i]);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < specs[i].count; k++) {
			union sockaddr_any at = specs[i].listen, to = specs[i].target;
			set_port(&at, ntohs(at.sa.sa_family == AF_INET6 ? at.in6.sin6_port : at.in4.sin_port) + k);
			set_port(&to, ntohs(to.sa.sa_family == AF_INET6 ? to.in6.sin6_port : to.in4.sin_port) + k);
			char name[80];
			describe(&at, specs[i].udp, name, sizeof name);
			int fd = n_listeners < PROXY_LISTENERS_MAX ? open_listener(&at, specs[i].udp) : (errno = EMFILE, -1);
			if (fd < 0 || ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, K_LISTEN, n_listeners) < 0) {
				snprintf(err, cap, "cannot listen on %s: %s", name, strerror(errno));
				if (fd >= 0)
					close(fd);
				proxy_close();
				return -1;
			}
			listeners[n_listeners++] = (struct listener){ .fd = fd, .udp = specs[i].udp, .target = to };
		}
		if (specs[i].udp && timerfd < 0) {
			timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
			if (timerfd < 0 || ep_set(EPOLL_CTL_ADD, timerfd, EPOLLIN, K_TIMER, 0) < 0) {
				snprintf(err, cap, "port proxy: timerfd: %s", strerror(errno));
				proxy_close();
				return -1;
			}
		}
	}
	return 0;
}

int proxy_fd(void) { return epfd; }

/* Listeners are polled only while a TCP slot is free (a UDP listener always). */
static void set_listening(int on)
{
	if (on == listening)
		return;
	listening = on;
	for (int i = 0; i < n_listeners; i++)
		if (!listeners[i].udp)
			(void)ep_set(EPOLL_CTL_MOD, listeners[i].fd, on ? EPOLLIN : 0, K_LISTEN, i);
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
		return epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd[side], NULL);
	}
	int op = c->registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	c->registered[side] = 1;
	return ep_set(op, c->fd[side], ev, K_CONN, (int)((c->gen & 0xffff) << 16 | (unsigned)(c - conns) << 1 | (unsigned)side));
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

static void conn_event(int data, uint32_t events)
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

static void accept_tcp(struct listener *l)
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
		    (connect(c->fd[1], &l->target.sa, addr_len(&l->target)) < 0 && errno != EINPROGRESS) ||
		    conn_interest(c, 0) < 0 || conn_interest(c, 1) < 0) {
			conn_close(c);
			continue;
		}
	}
	set_listening(0);
}

static void arm_timer(void)
{
	long long first = 0;
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		if (assocs[i].fd >= 0 && (first == 0 || assocs[i].last < first))
			first = assocs[i].last;
	long long in = first == 0 ? 0 : first + UDP_IDLE_MS - mono_ms();
	if (first != 0 && in < 1)
		in = 1;
	struct itimerspec t = { .it_value = { .tv_sec = in / 1000, .tv_nsec = (in % 1000) * 1000000 } };
	(void)timerfd_settime(timerfd, 0, &t, NULL); /* 0 disarms it: no association, no wake-up */
	timer_armed = first != 0;
}

static void assoc_close(struct assoc *a)
{
	close(a->fd);
	a->fd = -1;
}

/* The association of a client, made (or taking the least recently used slot) on its first datagram. */
static struct assoc *assoc_for(int li, const union sockaddr_any *from, socklen_t len)
{
	struct assoc *oldest = &assocs[0];
	for (int i = 0; i < UDP_ASSOCS_MAX; i++) {
		struct assoc *a = &assocs[i];
		if (a->fd >= 0 && a->listener == li && a->client_len == len && memcmp(&a->client, from, len) == 0)
			return a;
		if (a->fd < 0 ? oldest->fd >= 0 : (oldest->fd >= 0 && a->last < oldest->last))
			oldest = a;
	}
	if (oldest->fd >= 0)
		assoc_close(oldest);
	const union sockaddr_any *to = &listeners[li].target;
	int fd = socket(to->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, &to->sa, addr_len(to)) < 0 || ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, K_ASSOC, (int)(oldest - assocs)) < 0) {
		warnf("port proxy: udp association: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	*oldest = (struct assoc){ .fd = fd, .listener = li, .client_len = len };
	memcpy(&oldest->client, from, len);
	return oldest;
}

/* Errors other than "nothing there" are per-datagram (ICMP unreachable reported as ECONNREFUSED): the
 * datagram is dropped, as the network would. */
static void udp_in(int li)
{
	for (int k = 0; k < PUMP_ROUNDS; k++) {
		union sockaddr_any from;
		socklen_t len = sizeof from;
		ssize_t r = recvfrom(listeners[li].fd, dgram, sizeof dgram, 0, &from.sa, &len);
		if (r < 0)
			return;
		struct assoc *a = assoc_for(li, &from, len);
		if (!a)
			return;
		a->last = mono_ms();
		(void)send(a->fd, dgram, (size_t)r, 0);
		/* Armed for the oldest association; activity only delays expiries, so an early wake-up re-arms. */
		if (!timer_armed)
			arm_timer();
	}
}

static void udp_out(struct assoc *a)
{
	for (int k = 0; k < PUMP_ROUNDS; k++) {
		ssize_t r = recv(a->fd, dgram, sizeof dgram, 0);
		if (r < 0)
			return;
		a->last = mono_ms();
		(void)sendto(listeners[a->listener].fd, dgram, (size_t)r, 0, &a->client.sa, a->client_len);
	}
}

static void udp_expire(void)
{
	uint64_t ticks;
	if (read(timerfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
		warnf("port proxy: timerfd: %s", strerror(errno));
	long long now = mono_ms();
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		if (assocs[i].fd >= 0 && now - assocs[i].last >= UDP_IDLE_MS)
			assoc_close(&assocs[i]);
	arm_timer();
}

void proxy_handle(void)
{
	struct epoll_event evs[32];
	int n = epoll_wait(epfd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		int index = (int)(uint32_t)evs[i].data.u64;
		switch ((enum kind)(evs[i].data.u64 >> 32)) {
		case K_LISTEN:
			if (listeners[index].udp)
				udp_in(index);
			else
				accept_tcp(&listeners[index]);
			break;
		case K_CONN: conn_event(index, evs[i].events); break;
		case K_ASSOC:
			if (assocs[index].fd >= 0)
				udp_out(&assocs[index]);
			break;
		case K_TIMER: udp_expire(); break;
		}
	}
}

void proxy_close(void)
{
	if (epfd < 0)
		return;
	for (int i = 0; i < TCP_CONNS_MAX; i++)
		if (conns[i].fd[0] >= 0)
			conn_close(&conns[i]);
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		if (assocs[i].fd >= 0)
			assoc_close(&assocs[i]);
	for (int i = 0; i < n_listeners; i++)
		close(listeners[i].fd);
	n_listeners = 0;
	if (timerfd >= 0)
		close(timerfd);
	if (epfd >= 0)
		close(epfd);
	timerfd = epfd = -1;
}
