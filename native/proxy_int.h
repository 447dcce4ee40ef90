/* The port proxy's parts, and what they share (not for the rest of the monitor): proxy.c (the
 * specs, the listeners, the epoll set and its dispatch), proxy_tcp.c (spliced connections) and
 * proxy_udp.c (associations per client). */
#ifndef BERTH_PROXY_INT_H
#define BERTH_PROXY_INT_H
#include "proxy.h"
#include <stdint.h>

#define PUMP_ROUNDS 16 /* reads per event: a fast stream must not starve the loop's other fds */

/* What an epoll event is about: the kind in the data's high 32 bits, an index in the low ones. */
enum kind { K_LISTEN = 1, K_CONN, K_ASSOC, K_TIMER };

struct listener {
	int fd, udp;
	union sockaddr_any target; /* this port's, in the container */
};

extern int proxy_epfd, proxy_n_listeners;
extern struct listener proxy_listeners[PROXY_LISTENERS_MAX];

socklen_t proxy_addr_len(const union sockaddr_any *a);
/* epoll_ctl with the event's data made of k and index. */
int proxy_ep_set(int op, int fd, uint32_t events, enum kind k, int index);

/* proxy_tcp.c. At most 64 connections, 6 fds each: at the cap the listeners are not polled. */
void tcp_reset(void);                      /* every slot free, before the first listener */
void tcp_accept(struct listener *l);       /* a listener is readable */
void tcp_event(int data, uint32_t events); /* an event of a connection's socket */
void tcp_close_all(void);

/* proxy_udp.c. At most 64 associations; a new client takes the least recently active one's slot. */
int udp_setup(void);    /* the idle timer, once per monitor with a UDP listener; -1 with errno */
void udp_in(int li);    /* listener li is readable */
void udp_out(int ai);   /* association ai is readable */
void udp_expire(void);  /* the idle timer fired */
void udp_close_all(void);

#endif
