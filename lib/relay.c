/* relay.c — children's output relayed to ours one whole line at a time (see
 * relay.h). A relay_pipe reads its child's pipe into a buffer of RELAY_LINE_MAX bytes
 * and passes on each line as soon as its newline arrives (or the buffer is full: the
 * line is cut there). A relay_sink writes each line with one write(2) if it can,
 * else queues it; the queue is flushed when the sink becomes writable again. */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* ---- the sink ------------------------------------------------------------------- */

/* Writes one line without blocking: its length, 0 if the sink is full, -1 on error. */
static ssize_t sink_try(struct relay_sink *s, const char *p, size_t len)
{
	ssize_t n;

	do
		n = s->is_socket ? send(s->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL)
				 : write(s->fd, p, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		s->last_errno = errno;
		return n;
	}
	s->last_errno = 0;
	if (n > 0 && s->on_write)
		s->on_write(s, (size_t)n);
	return n;
}

static void sink_drop(struct relay_sink *s, size_t len)
{
	s->dropped_lines++;
	s->lost_lines++;
	s->dropped_bytes += len;
}

static void sink_report_drops(struct relay_sink *s)
{
	if (!s->dropped_lines)
		return;
	log_warn("output: %lu lines (%lu bytes) of children's output dropped: our own output "
		 "could not keep up", s->dropped_lines, s->dropped_bytes);
	s->dropped_lines = s->dropped_bytes = 0;
}

/* Writes queued lines, one write each, until the queue is empty or the sink full. */
static void sink_flush(struct relay_sink *s)
{
	size_t done = 0;

	while (done < s->queued) {
		const char *p = s->queue + done, *nl = memchr(p, '\n', s->queued - done);
		size_t len = nl ? (size_t)(nl - p) + 1 : s->queued - done;
		ssize_t n = sink_try(s, p, len);
		if (n == 0)
			break;
		if (n < 0) { /* the reader is gone: nothing queued can be written any more */
			sink_drop(s, s->queued - done);
			done = s->queued;
			break;
		}
		done += (size_t)n; /* a short send leaves the rest of the line first in line */
	}
	memmove(s->queue, s->queue + done, s->queued - done);
	s->queued -= done;
	if (s->queued == 0) {
		ev_io_stop(s->loop, &s->writable);
		sink_report_drops(s);
	} else if (!ev_is_active(&s->writable)) {
		ev_io_start(s->loop, &s->writable);
	}
}

static void sink_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	sink_flush(container_of(w, struct relay_sink, writable));
}

static void sink_write_raw(struct relay_sink *s, const char *line, size_t len);

/* A child's line as one JSON object (log.format: json): our text format's fields taken
 * apart, any other line the message of the vassal's master. */
static void sink_write_json(struct relay_sink *s, const char *line, size_t len)
{
	struct strbuf rec = { 0 };

	if (len && line[len - 1] == '\n')
		len--;
	log_json_line(&rec, log_wall_now(), s->json_vassal, (int)getpid(), line, len);
	if (rec.len)
		sink_write_raw(s, rec.p, rec.len);
	strbuf_free(&rec);
}

void relay_sink_write(struct relay_sink *s, const char *line, size_t len)
{
	if (s->json_vassal[0])
		sink_write_json(s, line, len);
	else
		sink_write_raw(s, line, len);
}

static void sink_write_raw(struct relay_sink *s, const char *line, size_t len)
{
	ssize_t n = 0;

	if (s->queued == 0 && (n = sink_try(s, line, len)) == (ssize_t)len)
		return;
	if (n < 0) {
		sink_drop(s, len);
		return;
	}
	line += n, len -= (size_t)n;
	if (len > sizeof s->queue - s->queued) {
		sink_drop(s, len);
		return;
	}
	memcpy(s->queue + s->queued, line, len);
	s->queued += len;
	if (!ev_is_active(&s->writable))
		ev_io_start(s->loop, &s->writable);
}

/* A non-blocking open file description of the pipe target, for us alone. */
static int reopen_nonblocking(int target)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/self/fd/%d", target);
	return open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
}

int relay_sink_open(struct relay_sink *s, struct ev_loop *loop, int target)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->fd = target;
	if (fstat(target, &st) < 0) {
		log_errno("output: fstat(%d)", target);
		return -1;
	}
	s->is_socket = S_ISSOCK(st.st_mode);
	if (S_ISFIFO(st.st_mode)) {
		int fd = reopen_nonblocking(target);
		if (fd < 0)
			log_errno("output: reopening fd %d non-blocking (writes may block)", target);
		else
			s->fd = fd, s->own_fd = true;
	}
	/* A regular file, a terminal or /dev/null is written as it is: a write there does
	 * not wait for a reader, and a rotated log (dup2 onto target) is followed. */
	ev_io_init(&s->writable, sink_writable, s->fd, EV_WRITE);
	return 0;
}

void relay_sink_close(struct relay_sink *s)
{
	if (s->queued)
		sink_flush(s);
	if (s->queued)
		sink_drop(s, s->queued);
	s->queued = 0;
	ev_io_stop(s->loop, &s->writable);
	sink_report_drops(s);
	if (s->own_fd)
		close(s->fd);
	s->own_fd = false;
	s->fd = -1;
}

/* ---- a child's pipe -------------------------------------------------------------- */

/* Passes on every complete line in buf; cuts a full buffer into a line of its own. */
static void pipe_lines(struct relay_pipe *p)
{
	size_t start = 0;
	char *nl;

	while ((nl = memchr(p->buf + start, '\n', p->len - start)) != NULL) {
		size_t end = (size_t)(nl - p->buf) + 1;
		relay_sink_write(p->sink, p->buf + start, end - start);
		start = end;
	}
	if (start == 0 && p->len == sizeof p->buf - 1) { /* no newline in a full buffer */
		p->buf[p->len++] = '\n';
		relay_sink_write(p->sink, p->buf, p->len);
		start = p->len;
	}
	memmove(p->buf, p->buf + start, p->len - start);
	p->len -= start;
}

/* Reads at most RELAY_READS_MAX times: 1 while the pipe may hold more, 0 at its end. */
static int pipe_read(struct relay_pipe *p)
{
	for (int i = 0; i < RELAY_READS_MAX; i++) {
		ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return 0; /* EOF: every writer is gone (or an error: give up on it) */
		p->len += (size_t)n;
		pipe_lines(p);
	}
	return 1;
}

static void pipe_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay_pipe *p = container_of(w, struct relay_pipe, readable);

	(void)loop, (void)revents;
	if (pipe_read(p) == 0)
		relay_pipe_close(p);
}

void relay_pipe_init(struct relay_pipe *p)
{
	p->sink = NULL;
	p->fd = -1;
	p->len = 0;
	ev_io_init(&p->readable, pipe_readable, -1, EV_READ);
}

int relay_pipe_open(struct relay_pipe *p, struct relay_sink *sink, int *child_end)
{
	int fds[2];

	relay_pipe_close(p);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_errno("output: pipe");
		return -1;
	}
	if (fd_set_nonblock(fds[0], 1) < 0) {
		log_errno("output: pipe: O_NONBLOCK");
		close(fds[0]), close(fds[1]);
		return -1;
	}
	p->sink = sink;
	p->fd = fds[0];
	p->len = 0;
	ev_io_init(&p->readable, pipe_readable, p->fd, EV_READ);
	ev_io_start(sink->loop, &p->readable);
	*child_end = fds[1];
	return 0;
}

void relay_pipe_close(struct relay_pipe *p)
{
	if (p->fd < 0)
		return;
	pipe_read(p); /* what the child wrote before it went; bounded */
	if (p->len > 0) {
		p->buf[p->len++] = '\n';
		relay_sink_write(p->sink, p->buf, p->len);
		p->len = 0;
	}
	ev_io_stop(p->sink->loop, &p->readable);
	close(p->fd);
	p->fd = -1;
}
