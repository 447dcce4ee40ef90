/* berth-monitor's event loop: one poll(2) over the signalfd (SIGCHLD: reap every child, we are a
 * subreaper) and the output pipes. The container's stdout and stderr go to the CRI log; the runtime's
 * own output is captured for error messages. */
#ifndef BERTH_LOOP_H
#define BERTH_LOOP_H
#include <sys/types.h>
#include "log.h"

enum stream_id { STREAM_STDOUT, STREAM_STDERR, STREAM_RUNTIME };

void loop_init(int sigfd, struct cri_log *log);
/* Reads fd (non-blocking) as that stream from now on; closed by loop_close or at EOF. */
void loop_watch(enum stream_id s, int fd);
/* on: stdout and stderr are (also) the runtime's: not read by loop_pump, and what loop_drain reads of
 * them is captured rather than logged. Off: they are the container's, and go to the log. */
void loop_capture(int on);
/* on (--tty): the terminal's fds (tty.h) are polled too once capturing is off, and the output is at
 * its end of file only when the terminal is too. */
void loop_tty(int on);
/* Reads what is there now (to EAGAIN), closing the stream at EOF. */
void loop_drain(enum stream_id s);
/* Closes the stream; a line the container left without a newline is logged as a P record. */
void loop_close(enum stream_id s);
/* The captured output, trailing newlines and blanks trimmed ("" if none), and forgetting it. */
const char *loop_captured(void);
void loop_clear_captured(void);
/* Polls until done(arg) (1), the deadline (0; 0 = none, CLOCK_MONOTONIC ms) or a poll error (-1, errno). */
int loop_pump(int (*done)(long), long arg, long long deadline);
/* The exit status of a reaped child, if it was reaped. */
int loop_reaped(pid_t pid, int *status);
int loop_done_reaped(long pid);
/* done: the container's stdout and stderr are at EOF. */
int loop_done_eof(long unused);

#endif
