/* The port proxy (proxy.h): the --proxy specs, the listening sockets and the epoll set that loop.c
 * polls as one fd; events are dispatched to proxy_tcp.c and proxy_udp.c. */
#define _GNU_SOURCE
#include "proxy_int.h"
#include "util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BACKLOG 128

int proxy_epfd = -1, proxy_n_listeners;
struct listener proxy_listeners[PROXY_LISTENERS_MAX];
static int udp_ready;

socklen_t proxy_addr_len(const union sockaddr_any *a)
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

int proxy_ep_set(int op, int fd, uint32_t events, enum kind k, int index)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)k << 32 | (uint32_t)index };
	return epoll_ctl(proxy_epfd, op, fd, &ev);
}

static int open_listener(const union sockaddr_any *at, int udp)
{
	int fd = socket(at->sa.sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	/* V6ONLY: [::1]:P is this port on IPv6 alone; SO_REUSEADDR (TCP): a restart binds despite TIME_WAIT. */
	if ((at->sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    (!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
	    bind(fd, &at->sa, proxy_addr_len(at)) < 0 || (!udp && listen(fd, BACKLOG) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int proxy_open(const struct proxy_spec *specs, int n, char *err, size_t cap)
{
	if (n == 0)
		return 0;
	proxy_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (proxy_epfd < 0) {
		snprintf(err, cap, "port proxy: epoll: %s", strerror(errno));
		return -1;
	}
	tcp_reset();
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < specs[i].count; k++) {
			union sockaddr_any at = specs[i].listen, to = specs[i].target;
			set_port(&at, ntohs(at.sa.sa_family == AF_INET6 ? at.in6.sin6_port : at.in4.sin_port) + k);
			set_port(&to, ntohs(to.sa.sa_family == AF_INET6 ? to.in6.sin6_port : to.in4.sin_port) + k);
			char name[80];
			describe(&at, specs[i].udp, name, sizeof name);
			int fd = proxy_n_listeners < PROXY_LISTENERS_MAX ? open_listener(&at, specs[i].udp) : (errno = EMFILE, -1);
			if (fd < 0 || proxy_ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, K_LISTEN, proxy_n_listeners) < 0) {
				snprintf(err, cap, "cannot listen on %s: %s", name, strerror(errno));
				if (fd >= 0)
					close(fd);
				proxy_close();
				return -1;
			}
			proxy_listeners[proxy_n_listeners++] = (struct listener){ .fd = fd, .udp = specs[i].udp, .target = to };
		}
		if (specs[i].udp && !udp_ready) {
			udp_ready = 1;
			if (udp_setup() < 0) {
				snprintf(err, cap, "port proxy: timerfd: %s", strerror(errno));
				proxy_close();
				return -1;
			}
		}
	}
	return 0;
}

int proxy_fd(void) { return proxy_epfd; }

void proxy_handle(void)
{
	struct epoll_event evs[32];
	int n = epoll_wait(proxy_epfd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		int index = (int)(uint32_t)evs[i].data.u64;
		switch ((enum kind)(evs[i].data.u64 >> 32)) {
		case K_LISTEN:
			if (proxy_listeners[index].udp)
				udp_in(index);
			else
				tcp_accept(&proxy_listeners[index]);
			break;
		case K_CONN: tcp_event(index, evs[i].events); break;
		case K_ASSOC: udp_out(index); break;
		case K_TIMER: udp_expire(); break;
		}
	}
}

void proxy_close(void)
{
	if (proxy_epfd < 0)
		return;
	tcp_close_all();
	udp_close_all();
	udp_ready = 0;
	for (int i = 0; i < proxy_n_listeners; i++)
		close(proxy_listeners[i].fd);
	proxy_n_listeners = 0;
	close(proxy_epfd);
	proxy_epfd = -1;
}
