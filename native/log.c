#define _GNU_SOURCE
#include "log.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int cri_log_open(struct cri_log *log)
{
	struct stat st = { 0 };
	log->fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log->fd >= 0 && fstat(log->fd, &st) < 0) {
		(void)close(log->fd);
		log->fd = -1;
	}
	log->size = st.st_size;
	return log->fd < 0 ? -1 : 0;
}

/* log → log.1 → … → log.(files-1); the oldest is overwritten by the rename before it. */
static void rotate(struct cri_log *log)
{
	if (log->max_files <= 1) {
		if (ftruncate(log->fd, 0) < 0)
			warnf("truncate %s: %s", log->path, strerror(errno));
		log->size = 0;
		return;
	}
	char from[PATH_MAX + 48], to[PATH_MAX + 48];
	for (int i = log->max_files - 1; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof from, "%s", log->path);
		else
			snprintf(from, sizeof from, "%s.%d", log->path, i - 1);
		snprintf(to, sizeof to, "%s.%d", log->path, i);
		if (rename(from, to) < 0 && errno != ENOENT)
			warnf("rotate %s: %s", from, strerror(errno));
	}
	if (close(log->fd) < 0)
		warnf("close log: %s", strerror(errno));
	if (cri_log_open(log) < 0) /* emit() retries the open, without rotating again */
		warnf("reopen %s: %s", log->path, strerror(errno));
}

static void emit(struct cri_log *log, const char *stream, const char *p, size_t n, char tag)
{
	char ts[40], hdr[64];
	rfc3339(ts);
	int h = snprintf(hdr, sizeof hdr, "%s %s %c ", ts, stream, tag);
	size_t left = (size_t)h + n + 1;
	if (log->fd >= 0 && log->max_bytes > 0 && log->size > 0 && log->size + (long long)left > log->max_bytes)
		rotate(log);
	struct iovec iov[3] = { { hdr, (size_t)h }, { (void *)p, n }, { "\n", 1 } };
	int i = 0;
	if (log->fd < 0 && cri_log_open(log) < 0)
		left = 0, errno = EBADF;
	while (left > 0) {
		ssize_t w = writev(log->fd, iov + i, 3 - i);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		log->size += w;
		left -= (size_t)w;
		size_t k = (size_t)w;
		while (i < 3 && k >= iov[i].iov_len)
			k -= iov[i++].iov_len;
		if (i < 3)
			iov[i].iov_base = (char *)iov[i].iov_base + k, iov[i].iov_len -= k;
	}
	if (left > 0 && log->dropped++ == 0) /* full SD card: drop lines, never block the container */
		warnf("log %s: %s (dropping lines)", log->path, strerror(errno));
}

void cri_log_feed(struct cri_log *log, struct cri_line *s, const char *p, size_t n)
{
	while (n > 0) {
		if (s->len == log->line_max) { /* a full buffer: F if the line ends right here, else P */
			int nl = p[0] == '\n';
			emit(log, s->name, s->buf, s->len, nl ? 'F' : 'P');
			s->len = 0;
			p += nl, n -= (size_t)nl;
			continue;
		}
		const char *e = memchr(p, '\n', n);
		size_t seg = e ? (size_t)(e - p) : n, take = seg < log->line_max - s->len ? seg : log->line_max - s->len;
		memcpy(s->buf + s->len, p, take);
		s->len += take, p += take, n -= take;
		if (e && take == seg) {
			emit(log, s->name, s->buf, s->len, 'F');
			s->len = 0, p++, n--;
		}
	}
}

void cri_log_flush(struct cri_log *log, struct cri_line *s)
{
	if (s->len > 0)
		emit(log, s->name, s->buf, s->len, 'P');
	s->len = 0;
}
