/* The port proxy's UDP side, as docker-proxy does it: a connected socket per client address and port
 * (the container's answers come back on it and go out from the listening address), closed after 90 s
 * without a datagram either way. One timerfd, armed for the oldest association: no periodic tick. */
#define _GNU_SOURCE
#include "proxy_int.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define UDP_ASSOCS_MAX 64
#define UDP_IDLE_MS 90000 /* docker-proxy's UDP association timeout */

struct assoc {
	int fd, listener; /* fd -1: free */
	union sockaddr_any client;
	socklen_t client_len;
	long long last; /* CLOCK_MONOTONIC ms of the last datagram either way */
};

static struct assoc assocs[UDP_ASSOCS_MAX];
static int timerfd = -1, timer_armed;
static char dgram[65536]; /* bss: only the pages a datagram touches become resident */

int udp_setup(void)
{
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		assocs[i].fd = -1;
	timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	return timerfd < 0 ? -1 : proxy_ep_set(EPOLL_CTL_ADD, timerfd, EPOLLIN, K_TIMER, 0);
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
	const union sockaddr_any *to = &proxy_listeners[li].target;
	int fd = socket(to->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, &to->sa, proxy_addr_len(to)) < 0 || proxy_ep_set(EPOLL_CTL_ADD, fd, EPOLLIN, K_ASSOC, (int)(oldest - assocs)) < 0) {
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
void udp_in(int li)
{
	for (int k = 0; k < PUMP_ROUNDS; k++) {
		union sockaddr_any from;
		socklen_t len = sizeof from;
		ssize_t r = recvfrom(proxy_listeners[li].fd, dgram, sizeof dgram, 0, &from.sa, &len);
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

void udp_out(int ai)
{
	struct assoc *a = &assocs[ai];
	if (a->fd < 0)
		return;
	for (int k = 0; k < PUMP_ROUNDS; k++) {
		ssize_t r = recv(a->fd, dgram, sizeof dgram, 0);
		if (r < 0)
			return;
		a->last = mono_ms();
		(void)sendto(proxy_listeners[a->listener].fd, dgram, (size_t)r, 0, &a->client.sa, a->client_len);
	}
}

void udp_expire(void)
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

void udp_close_all(void)
{
	if (timerfd < 0)
		return;
	for (int i = 0; i < UDP_ASSOCS_MAX; i++)
		if (assocs[i].fd >= 0)
			assoc_close(&assocs[i]);
	close(timerfd);
	timerfd = -1;
}
