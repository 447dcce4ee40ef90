/* --proxy: berth-monitor's user-space port forwarder, docker-proxy's job for the published ports the
 * kernel cannot DNAT (the host's IPv6 loopback: there is no route_localnet for IPv6, so a packet from
 * ::1 is never forwarded to a bridge). It lives in the monitor because the monitor lives exactly as
 * long as the container and outlives berth and its agent: the ports survive an agent restart, come
 * back with the container's next monitor, and close when its init is reaped.
 *
 * One epoll set (polled by loop.c as a single fd, so the loop's poll array does not grow with the
 * connections): listeners, TCP connections spliced through two pipes each (no user-space copy, no
 * buffer in the monitor's RSS), UDP associations per client address with an idle timer (timerfd). */
#ifndef BERTH_PROXY_H
#define BERTH_PROXY_H
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_SPECS_MAX 32
/* Listening sockets in all, a range counting one per port: berth refuses more before the start. */
#define PROXY_LISTENERS_MAX 64

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* One --proxy PROTO,LISTEN-IP,LISTEN-PORT,TARGET-IP,TARGET-PORT,COUNT (README.md, "Port proxy"). */
struct proxy_spec {
	int udp;
	union sockaddr_any listen, target; /* ports: the first of the range */
	int count;
};

/* Parses one --proxy value; -1 when it is malformed (bad protocol, address or port, a range past 65535). */
int proxy_parse(const char *text, struct proxy_spec *s);
/* Binds every port of every spec (IPV6_V6ONLY for IPv6, close-on-exec) and listens. On failure -1,
 * everything opened so far closed and err naming the address: "cannot listen on [::1]:8080/tcp: …". */
int proxy_open(const struct proxy_spec *specs, int n, char *err, size_t cap);
/* The fd for loop.c to poll for POLLIN; -1 when there is no proxy. */
int proxy_fd(void);
/* Serves what is ready now (never blocks). */
void proxy_handle(void);
/* The container is gone: closes the listeners (the ports are free at once), connections and associations. */
void proxy_close(void);

#endif
