/* Small helpers shared by berth-monitor's files. */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H
#include <stddef.h>
#include <sys/types.h>

/* A diagnostic on stderr, prefixed "berth-monitor[PID]: ". */
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* write(2) until done; retries EINTR. */
int write_all(int fd, const char *p, size_t n);
/* CLOCK_MONOTONIC in milliseconds. */
long long mono_ms(void);
/* RFC 3339 UTC with nanoseconds: 2026-11-22T14:00:00.123456789Z (30 chars + NUL) */
void rfc3339(char out[40]);
/* DIR/NAME via a temp file and a rename: a reader, also after kill -9, sees the old file or the whole new
 * one. durable: fsync the file before and DIR after the rename, so that it also survives a power cut. */
int write_atomic(const char *dir, const char *name, const char *content, int durable);
/* Reads up to cap-1 bytes and NUL-terminates; -1 on error. */
ssize_t read_small(const char *path, char *buf, size_t cap);

#endif
