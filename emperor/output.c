/* output.c — a vassal's stdout/stderr reach the emperor through a pipe and leave on
 * the emperor's stderr one whole line at a time, prefixed with the vassal's name and
 * written with one write(2): lines are never cut or interleaved. A line longer than
 * the buffer is flushed in pieces, each piece prefixed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "emperor.h"
#include "log.h"
#include "util.h"

static void emit(const struct vassal *v, const char *line, size_t len)
{
	char out[sizeof v->out_buf + 128];
	int n = snprintf(out, sizeof out, "[%s] %.*s\n", v->name, (int)len, line);

	if (n > (int)sizeof out)
		n = (int)sizeof out;
	while (n > 0 && write(log_get_fd(), out, (size_t)n) < 0 && errno == EINTR)
		;
}

static void flush_lines(struct vassal *v, bool all)
{
	size_t start = 0;

	for (size_t i = 0; i < v->out_len; i++)
		if (v->out_buf[i] == '\n') {
			emit(v, v->out_buf + start, i - start);
			start = i + 1;
		}
	if (all || (start == 0 && v->out_len == sizeof v->out_buf)) {
		if (v->out_len > start)
			emit(v, v->out_buf + start, v->out_len - start);
		start = v->out_len;
	}
	memmove(v->out_buf, v->out_buf + start, v->out_len - start);
	v->out_len -= start;
}

/* Reads what is there; returns 0 on EOF or error (the pipe is done), 1 otherwise. */
static int drain(struct vassal *v)
{
	for (int round = 0; round < 16; round++) {
		ssize_t n = read(v->out_fd, v->out_buf + v->out_len, sizeof v->out_buf - v->out_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 1 : 0;
		if (n == 0)
			return 0;
		v->out_len += (size_t)n;
		flush_lines(v, false);
	}
	return 1;
}

static void out_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vassal *v = container_of(w, struct vassal, out_io);

	(void)loop, (void)revents;
	if (drain(v) == 0)
		output_stop(v);
}

void output_start(struct vassal *v)
{
	fd_set_nonblock(v->out_fd, 1);
	v->out_len = 0;
	ev_io_init(&v->out_io, out_readable, v->out_fd, EV_READ);
	ev_io_start(v->e->loop, &v->out_io);
}

void output_stop(struct vassal *v)
{
	if (v->out_fd < 0)
		return;
	drain(v);
	flush_lines(v, true);
	ev_io_stop(v->e->loop, &v->out_io);
	close(v->out_fd);
	v->out_fd = -1;
}
