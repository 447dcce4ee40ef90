/* --tty: the container's pseudo-terminal, owned by the monitor as conmon owns it. The runtime creates
 * the pty in the container and sends us the master over a unix socket (--console-socket, SCM_RIGHTS);
 * from then on the monitor is the only holder of the master, so the terminal outlives the CLI and the
 * agent. Its output goes to the CRI log (as stdout) and to every client of the attach socket; what a
 * client writes goes to the container; resize requests come through the `ctl` fifo. */
#ifndef BERTH_TTY_H
#define BERTH_TTY_H
#include <poll.h>
#include "log.h"

/* Socket and fifo names in the state dir. */
#define TTY_CONSOLE_SOCK "console.sock"
#define TTY_ATTACH_SOCK "attach"
#define TTY_CTL_FIFO "ctl"

/* Creates the console socket (for the runtime), the attach socket and the ctl fifo in state_dir; -1 with
 * errno. console_path receives the path to give the runtime (short, whatever state_dir's length). */
int tty_setup(const char *state_dir, struct cri_log *log, char *console_path, size_t cap);
/* After the runtime succeeded: takes the master it sent. -1 with errno (ENOMSG: it sent none). */
int tty_take_master(void);
/* 1 while the master is open (the container's side not yet closed by all its processes). */
int tty_master_open(void);
/* Appends this module's fds to pf (at most max); returns how many. */
int tty_pollfds(struct pollfd *pf, int max);
/* Handles the revents of the fds tty_pollfds added, in the same order. */
void tty_handle(const struct pollfd *pf, int n);
/* 1 once a client has attached (done function for loop_pump). */
int tty_done_attached(long unused);
/* The container is gone: flushes the log line, disconnects the clients (they read EOF) and removes the
 * socket and fifo files. */
void tty_shutdown(void);

#endif
