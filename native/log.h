/* The container log: CRI format ("<RFC 3339> <stream> <F|P> <text>"), one record per line, P for the
 * pieces of lines longer than line_max, size-capped with rotation (log → log.1 → … → log.(files-1)). */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H
#include <limits.h>
#include <stddef.h>

#define LINE_MAX_DEFAULT 16384

struct cri_log {
	char path[PATH_MAX + 32];
	long long max_bytes; /* rotate before a record would pass it; 0: never */
	int max_files;       /* including the live one; 1: truncate instead of rotating */
	size_t line_max;     /* longer lines are split into P records */
	int fd;              /* -1 until opened (and after a failed reopen: retried per record) */
	long long size;
	unsigned long dropped; /* records that could not be written (full disk) */
};

/* One stream's partial line, carried between reads; buf holds line_max bytes. */
struct cri_line {
	const char *name; /* "stdout" or "stderr" */
	size_t len;
	char *buf;
};

int cri_log_open(struct cri_log *log);
/* Appends output: complete lines become F records, full buffers P records. */
void cri_log_feed(struct cri_log *log, struct cri_line *line, const char *p, size_t n);
/* The stream ended: what is left of a line without a newline becomes a P record. */
void cri_log_flush(struct cri_log *log, struct cri_line *line);

#endif
