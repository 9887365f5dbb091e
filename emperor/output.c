/* output.c — a vassal's stdout/stderr reach the emperor through a pipe and leave on
 * the emperor's stderr one whole line at a time, prefixed with the vassal's name and
 * written with one write(2) of at most PIPE_BUF bytes: lines are never cut or
 * interleaved (a longer line is passed on in pieces, each prefixed). The emperor's
 * stderr (a pipe to journald, a terminal) may be slow: it is written without
 * blocking, through our own non-blocking open file description of it (or send
 * MSG_DONTWAIT to a socket), and what it cannot take waits in one bounded queue,
 * flushed when it is writable. The emperor's own log lines take the same queue, so
 * the order holds. Vassal lines that would overflow it are dropped and counted; once
 * the queue is empty again one line says how many. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emperor.h"
#include "log.h"
#include "util.h"

static void emit_text(const struct vassal *v, const char *line, size_t len);

#define OUTPUT_LINE_MAX 4096            /* a vassal's line buffer */
#define SINK_MAX (1024 * 1024)          /* bytes queued for stderr, at most */
#define SINK_VASSAL_MAX (256 * 1024)    /* a vassal line is dropped past this much */
#define RING_BYTES (64 * 1024)          /* a vassal's recent lines, for emperorctl logs */
#define RING_FIRST 256                  /* the ring's first size; it grows up to RING_BYTES */

struct output_ring {                    /* records "SECONDS.mmm line\n", oldest first */
	size_t cap;
	size_t start, len;                  /* the records: buf[start..start+len), wrapping */
	size_t n_lines;
	unsigned long long seq;             /* lines ever appended: the next line's number */
	char buf[];                         /* cap bytes: a quiet vassal's few lines take
					     * hundreds of bytes, not a page */
};

struct output {                         /* a vassal's pipe, while it is open */
	struct vassal *v;
	int fd;
	ev_io io;
	size_t len;                         /* bytes of an unfinished line */
	char *partial;                      /* they, while there are some (malloc'd) */
};

struct output_sink {                    /* the emperor's stderr */
	struct ev_loop *loop;
	int fd;
	int is_socket;
	pid_t pid;                          /* a forked child writes directly */
	ev_io io;                           /* EV_WRITE while something is queued */
	char *q;                            /* records, each ending in '\n' */
	size_t head, len;                   /* q[head..len) is still to be written */
	unsigned long long dropped;         /* since the last report */
	unsigned long long dropped_total;
	unsigned long long dropped_own;     /* the emperor's own lines (queue full) */
};

/* The sink the atexit handler drains: there is one emperor per process. */
static struct output_sink *exiting_sink;

/* ---- the emperor's stderr --------------------------------------------------------------- */

static ssize_t sink_write(struct output_sink *s, const char *p, size_t n)
{
	ssize_t w;

	do
		w = s->is_socket ? send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
				 : write(s->fd, p, n);
	while (w < 0 && errno == EINTR);
	return w;
}

static size_t record_len(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) + 1 : n;
}

static void sink_report_drops(struct output_sink *s)
{
	unsigned long long n = s->dropped, own = s->dropped_own;

	s->dropped = s->dropped_own = 0;
	if (own)
		log_warn("dropped %llu lines of vassal output and %llu of our own: stderr could "
			 "not keep up", n, own);
	else
		log_warn("dropped %llu lines of vassal output: stderr could not keep up", n);
}

/* Writes queued records, one write(2) each, until the queue is empty or stderr would
 * block (then its EV_WRITE watcher calls again). */
static void sink_flush(struct output_sink *s)
{
	while (s->head < s->len) {
		ssize_t w = sink_write(s, s->q + s->head, record_len(s->q + s->head, s->len - s->head));
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		s->head = w < 0 ? s->len : s->head + (size_t)w; /* stderr gone: nowhere to go */
	}
	if (s->head < s->len) {
		ev_io_start(s->loop, &s->io);
		return;
	}
	s->head = s->len = 0;
	ev_io_stop(s->loop, &s->io);
	if (s->dropped || s->dropped_own)
		sink_report_drops(s);
}

static void sink_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	sink_flush(container_of(w, struct output_sink, io));
}

/* One record (ending in '\n', at most PIPE_BUF bytes): written now if nothing waits
 * and stderr takes it, else queued, else dropped and counted. */
static void sink_put(struct output_sink *s, const char *rec, size_t n, int from_vassal)
{
	if (s->head == s->len) {
		ssize_t w = sink_write(s, rec, n);
		if (w == (ssize_t)n || (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return;
		if (w > 0) /* a socket took part of it: the rest goes first */
			rec += w, n -= (size_t)w;
	}
	if (s->len - s->head + n > (from_vassal ? SINK_VASSAL_MAX : SINK_MAX)) {
		if (from_vassal)
			s->dropped++, s->dropped_total++;
		else
			s->dropped_own++;
		return;
	}
	if (s->len + n > SINK_MAX) {
		memmove(s->q, s->q + s->head, s->len - s->head);
		s->len -= s->head;
		s->head = 0;
	}
	memcpy(s->q + s->len, rec, n);
	s->len += n;
	ev_io_start(s->loop, &s->io);
}

static void sink_log_line(const char *line, size_t len, void *arg)
{
	struct output_sink *s = arg;

	if (getpid() != s->pid) { /* a forked child, before its exec */
		while (write(s->fd, line, len) < 0 && errno == EINTR)
			;
		return;
	}
	sink_put(s, line, len, 0);
}

/* Our own description of stderr, non-blocking, that leaves the one we share with our
 * parent as it is. A socket takes send(MSG_DONTWAIT); a regular file never waits. */
static int sink_fd(struct output_sink *s, int fd)
{
	struct stat st;
	char path[64];
	int own;

	s->fd = fd;
	if (fstat(fd, &st) < 0)
		return -1;
	s->is_socket = S_ISSOCK(st.st_mode);
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return 0;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	own = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (own < 0)
		return -1;
	s->fd = own;
	return 0;
}

/* Waits (poll, at most timeout_ms in all) until the queue is written. */
static void sink_drain(struct output_sink *s, int timeout_ms)
{
	double deadline = mono_now() + timeout_ms / 1000.0;

	sink_flush(s);
	while (s->head < s->len) {
		struct pollfd p = { .fd = s->fd, .events = POLLOUT };
		int left = (int)((deadline - mono_now()) * 1000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return;
		sink_flush(s);
	}
}

static void sink_at_exit(void)
{
	if (exiting_sink && exiting_sink->pid == getpid())
		sink_drain(exiting_sink, 1000);
}

int output_sink_open(struct emperor *e)
{
	struct output_sink *s = calloc(1, sizeof *s);

	if (!s || !(s->q = malloc(SINK_MAX))) {
		free(s);
		log_errno("output: no memory for the stderr queue; writing it directly");
		return -1;
	}
	s->loop = e->loop;
	s->pid = getpid();
	if (sink_fd(s, log_get_fd()) < 0)
		log_errno("output: cannot open stderr again non-blocking; writes may wait");
	ev_io_init(&s->io, sink_writable, s->fd, EV_WRITE);
	e->out_sink = s;
	exiting_sink = s;
	atexit(sink_at_exit);
	log_set_writer(sink_log_line, s);
	return 0;
}

void output_sink_drain(struct emperor *e, int timeout_ms)
{
	if (e->out_sink)
		sink_drain(e->out_sink, timeout_ms);
}

unsigned long long output_dropped(const struct emperor *e)
{
	return e->out_sink ? e->out_sink->dropped_total : 0;
}

/* ---- a vassal's pipe ------------------------------------------------------------------- */

/* ---- a vassal's recent lines ------------------------------------------------------- */

static void ring_drop_oldest(struct output_ring *r)
{
	while (r->len > 0) {
		char c = r->buf[r->start];
		r->start = (r->start + 1) % r->cap;
		r->len--;
		if (c == '\n')
			break;
	}
	r->n_lines--;
}

static void ring_put(struct output_ring *r, const char *p, size_t n)
{
	size_t at = (r->start + r->len) % r->cap, first = n < r->cap - at ? n : r->cap - at;

	memcpy(r->buf + at, p, first);
	memcpy(r->buf, p + first, n - first);
	r->len += n;
}

/* The records in order, from the oldest, copied to out (r->len bytes). */
static void ring_flatten(const struct output_ring *r, char *out)
{
	size_t first = r->len < r->cap - r->start ? r->len : r->cap - r->start;

	memcpy(out, r->buf + r->start, first);
	memcpy(out + first, r->buf, r->len - first);
}

/* The ring's next size for len + need bytes: just enough (in malloc's steps of 16
 * bytes: 1,000 quiet vassals' few lines each, ~700 bytes, cost what they take) while it
 * is small, then by half, so a chatty one's growth costs few copies; at most
 * RING_BYTES. */
static size_t ring_next_cap(size_t cap, size_t want)
{
	size_t next = cap < 2048 ? (want + 15) & ~(size_t)15 : cap + cap / 2;

	if (next < want)
		next = want;
	return next > RING_BYTES ? RING_BYTES : next;
}

/* Room for need more bytes: the ring grows while it is under RING_BYTES; at that size,
 * or without memory to grow, the oldest lines go. */
static void ring_make_room(struct output_ring **rp, size_t need)
{
	struct output_ring *r = *rp;

	while (r->len + need > r->cap && r->cap < RING_BYTES) {
		size_t cap = ring_next_cap(r->cap, r->len + need);
		struct output_ring *grown = malloc(sizeof *grown + cap);
		if (!grown)
			break;
		*grown = *r;
		ring_flatten(r, grown->buf);
		grown->cap = cap;
		grown->start = 0;
		free(r);
		*rp = r = grown;
	}
	while (r->len > 0 && r->len + need > r->cap)
		ring_drop_oldest(r);
}

static bool has_timestamp(const char *s, size_t len);

/* A record is "SECONDS.mmm line\n", or "- line\n" for a line with a date of its own
 * (the master's and lib/log.c's lines): shown with that date, it needs no other. */
static void ring_append(struct vassal *v, const char *line, size_t len, double now)
{
	char stamp[32];
	int n = has_timestamp(line, len) ? snprintf(stamp, sizeof stamp, "- ")
					 : snprintf(stamp, sizeof stamp, "%.3f ", now);

	if (!v->ring) {
		if (!(v->ring = malloc(sizeof *v->ring + RING_FIRST)))
			return;
		*v->ring = (struct output_ring){ .cap = RING_FIRST };
	}
	if (len > RING_BYTES / 4)
		len = RING_BYTES / 4;
	ring_make_room(&v->ring, (size_t)n + len + 1);
	if (v->ring->len + (size_t)n + len + 1 > v->ring->cap) /* no memory to grow */
		len = 0;
	if (v->ring->len + (size_t)n + 1 > v->ring->cap)
		return;
	ring_put(v->ring, stamp, (size_t)n);
	ring_put(v->ring, line, len);
	ring_put(v->ring, "\n", 1);
	v->ring->n_lines++;
	v->ring->seq++;
}

/* A line that starts with a date of its own (lib/log.c's, ISO 8601's) keeps it. */
static bool has_timestamp(const char *s, size_t len)
{
	static const char shape[] = "dddd-dd-dd";

	if (len < sizeof shape)
		return false;
	for (size_t i = 0; i < sizeof shape - 1; i++)
		if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return false;
	return s[10] == ' ' || s[10] == 'T';
}

void output_show_line(double t, const char *line, size_t len, struct strbuf *b)
{
	char when[40];

	if (!has_timestamp(line, len)) {
		log_format_time(t, when, sizeof when);
		strbuf_printf(b, "%s ", when);
	}
	strbuf_append(b, line, len);
	strbuf_append(b, "\n", 1);
}

/* A ring record "SECONDS.mmm line\n" as output_show_line shows it. */
static void show_record(const char *rec, size_t n, struct strbuf *b)
{
	const char *sp = memchr(rec, ' ', n);

	if (sp)
		output_show_line(strtod(rec, NULL), sp + 1, n - (size_t)(sp + 1 - rec) - 1, b);
}

unsigned long long output_lines(const struct vassal *v, unsigned long long from, size_t max,
				struct strbuf *b)
{
	const struct output_ring *r = v->ring;
	char *flat;
	unsigned long long first;
	size_t skip, off = 0;

	if (!r || !(flat = malloc(r->len ? r->len : 1)))
		return r ? r->seq : 0;
	ring_flatten(r, flat);
	first = r->seq - r->n_lines;
	if (from > r->seq) /* a number of a previous record of the same name */
		from = first;
	skip = from > first ? (size_t)(from - first) : 0;
	if (max && r->n_lines - skip > max)
		skip = r->n_lines - max;
	for (size_t line = 0; off < r->len; line++) {
		const char *nl = memchr(flat + off, '\n', r->len - off);
		size_t n = (size_t)(nl - (flat + off)) + 1;
		if (line >= skip)
			show_record(flat + off, n, b);
		off += n;
	}
	free(flat);
	return r->seq;
}

void output_ring_free(struct vassal *v)
{
	free(v->ring);
	v->ring = NULL;
}

/* ---- a vassal's lines leaving on stderr ----------------------------------------------- */

/* One line as one JSON object (lib/log.c's fields; the vassal's name added). */
static void emit_json(const struct vassal *v, const char *line, size_t len, double now)
{
	struct strbuf rec = { 0 };

	log_json_line(&rec, now, v->name, (int)v->child.pid, line, len);
	if (v->e->out_sink)
		sink_put(v->e->out_sink, rec.p, rec.len, 1);
	else if (rec.len)
		while (write(log_get_fd(), rec.p, rec.len) < 0 && errno == EINTR)
			;
	strbuf_free(&rec);
}

/* One line as "[name] line\n" records of at most PIPE_BUF bytes each (or one JSON
 * object), and into the vassal's ring. */
static void emit(struct vassal *v, const char *line, size_t len)
{
	double now = log_wall_now();

	ring_append(v, line, len, now);
	if (control_following(v->e))
		control_vassal_line(v, now, line, len);
	if (log_get_format() == LOG_FORMAT_JSON) {
		emit_json(v, line, len, now);
		return;
	}
	emit_text(v, line, len);
}

static void emit_text(const struct vassal *v, const char *line, size_t len)
{
	char rec[PIPE_BUF];
	int prefix = snprintf(rec, sizeof rec, "[%.200s] ", v->name);
	size_t room = sizeof rec - (size_t)prefix - 1;

	do {
		size_t n = len < room ? len : room;
		memcpy(rec + prefix, line, n);
		rec[(size_t)prefix + n] = '\n';
		if (v->e->out_sink)
			sink_put(v->e->out_sink, rec, (size_t)prefix + n + 1, 1);
		else
			while (write(log_get_fd(), rec, (size_t)prefix + n + 1) < 0 && errno == EINTR)
				;
		line += n;
		len -= n;
	} while (len > 0);
}

/* A line read whole is passed on from here: only a vassal that leaves a line
 * unfinished holds a buffer of its own until the line ends. */
static char scratch[OUTPUT_LINE_MAX];

/* Passes on the whole lines of buf[0..o->len) (all of it if `all`, or a full buffer
 * without a newline) and moves the rest to the front. */
static void flush_lines(struct output *o, char *buf, bool all)
{
	size_t start = 0;

	for (size_t i = 0; i < o->len; i++)
		if (buf[i] == '\n') {
			emit(o->v, buf + start, i - start);
			start = i + 1;
		}
	if (all || (start == 0 && o->len == OUTPUT_LINE_MAX)) {
		if (o->len > start)
			emit(o->v, buf + start, o->len - start);
		start = o->len;
	}
	memmove(buf, buf + start, o->len - start);
	o->len -= start;
}

/* After a flush of buf: an unfinished line moves into (or stays in) o->partial. */
static void keep_partial(struct output *o, char *buf)
{
	if (o->len == 0) {
		free(o->partial);
		o->partial = NULL;
		return;
	}
	if (o->partial)
		return; /* buf is o->partial */
	o->partial = malloc(OUTPUT_LINE_MAX);
	if (!o->partial) {
		flush_lines(o, buf, true); /* no memory to wait for its end: pass it on cut */
		return;
	}
	memcpy(o->partial, buf, o->len);
}

/* Reads what is there (at most a full pipe); 0 on EOF or error (the pipe is done). */
static int drain(struct output *o)
{
	for (int round = 0; round < 16; round++) {
		char *buf = o->partial ? o->partial : scratch;
		ssize_t n = read(o->fd, buf + o->len, OUTPUT_LINE_MAX - o->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 1 : 0;
		if (n == 0)
			return 0;
		o->len += (size_t)n;
		flush_lines(o, buf, false);
		keep_partial(o, buf);
	}
	return 1;
}

static void out_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct output *o = container_of(w, struct output, io);

	(void)loop, (void)revents;
	if (drain(o) == 0)
		output_stop(o->v);
}

void output_start(struct vassal *v, int fd)
{
	struct output *o;

	output_stop(v);
	o = malloc(sizeof *o);
	if (!o) {
		log_errno("%s: no memory for its output; it is not passed on", v->name);
		close(fd);
		return;
	}
	o->v = v;
	o->fd = fd;
	o->len = 0;
	o->partial = NULL;
	fd_set_nonblock(fd, 1);
	ev_io_init(&o->io, out_readable, fd, EV_READ);
	ev_io_start(v->e->loop, &o->io);
	v->out = o;
}

void output_stop(struct vassal *v)
{
	struct output *o = v->out;

	if (!o)
		return;
	drain(o);
	if (o->partial)
		flush_lines(o, o->partial, true);
	ev_io_stop(v->e->loop, &o->io);
	close(o->fd);
	free(o->partial);
	free(o);
	v->out = NULL;
}

int output_fd(const struct vassal *v)
{
	return v->out ? v->out->fd : -1;
}
