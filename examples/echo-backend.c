/* echo-backend.c — a small HTTP/1.1 backend that echoes, for the gateway's tests: it
 * answers a request with a body by sending that body back exactly as it came (a
 * chunked body as the same chunks, framing included; a Content-Length body with the
 * same length), streamed as it arrives; a request without a body with
 * "echo METHOD TARGET\n"; `Expect: 100-continue` with a 100 before reading the body;
 * and an upgrade request (`Connection: Upgrade`, `Upgrade: X`) with a 101, after which
 * every byte is echoed until EOF. Keep-alive and pipelining as HTTP/1.1 says.
 * Sockets come by socket activation (LISTEN_FDS, as under a vassal) or from
 * `--listen ADDR` (an address as in the config). READY=1 goes to NOTIFY_SOCKET if set.
 * SIGTERM/SIGHUP: stop accepting, exit once no connection is left; SIGINT: exit now.
 * Exit status: 0 stopped, 1 failure, 2 usage error or no socket. */
#include <errno.h>
#include <ev.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "parse.h"
#include "util.h"

#define IN_MAX   16384
#define OUT_HIGH (1 << 20)  /* stop reading while this much waits to be written */
#define MAX_LISTEN 8

struct echo;

struct conn {
	TAILQ_ENTRY(conn) link;
	struct echo *e;
	int fd;
	ev_io io;
	http_parser p;
	char field[32];             /* the header being read, lowercased, truncated */
	bool expect_continue, upgrade_asked, tunnel, in_body, eof, close_after;
	bool head_lf;               /* the head's last LF is still to be consumed */
	char upgrade[64];
	char target[256];
	char *out;                  /* waiting to be written: [out_off, out_len) */
	size_t out_len, out_off, out_cap;
	char in[IN_MAX];
};
TAILQ_HEAD(conn_list, conn);

struct echo {
	struct ev_loop *loop;
	int n_listen, listen_fd[MAX_LISTEN];
	ev_io listen_io[MAX_LISTEN];
	ev_signal sigterm, sighup, sigint;
	struct conn_list conns;
	bool stopping;
};

static void conn_close(struct conn *c);

/* ---- output ----------------------------------------------------------------------- */

static int out_add(struct conn *c, const void *buf, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		char *grown = realloc(c->out, cap);
		if (!grown)
			return -1;
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

static int out_str(struct conn *c, const char *s)
{
	return out_add(c, s, strlen(s));
}

/* Writes what it can; -1 when the peer is gone. */
static int out_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* ---- the request parser ---------------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	size_t have = strlen(c->target);

	if (have + len < sizeof c->target) {
		memcpy(c->target + have, at, len);
		c->target[have + len] = '\0';
	}
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	size_t n = len < sizeof c->field - 1 ? len : sizeof c->field - 1;

	for (size_t i = 0; i < n; i++)
		c->field[i] = (char)(at[i] | 0x20);
	c->field[n] = '\0';
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (strcmp(c->field, "expect") == 0 && len == 12 && strncasecmp(at, "100-continue", 12) == 0)
		c->expect_continue = true;
	if (strcmp(c->field, "upgrade") == 0 && len < sizeof c->upgrade) {
		memcpy(c->upgrade, at, len);
		c->upgrade[len] = '\0';
	}
	return 0;
}

static bool has_body(const http_parser *p)
{
	return (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	char head[256];

	if (p->upgrade && c->upgrade[0]) {
		snprintf(head, sizeof head, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
			 "Upgrade: %s\r\n\r\n", c->upgrade);
		c->upgrade_asked = true;
		return out_str(c, head) < 0 ? -1 : 0;
	}
	if (!has_body(p))
		return 0;
	if (c->expect_continue && out_str(c, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
		return -1;
	if (p->flags & F_CHUNKED)
		snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n",
			 http_should_keep_alive(p) ? "" : "Connection: close\r\n");
	else
		snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n%s\r\n",
			 (unsigned long long)p->content_length,
			 http_should_keep_alive(p) ? "" : "Connection: close\r\n");
	c->in_body = c->head_lf = true;
	/* The caller echoes the raw body from here. http-parser reports the end of the
	 * head before it consumes the head's last LF: that byte comes first next time. */
	http_parser_pause(p, 1);
	return out_str(c, head) < 0 ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	char resp[512], body[300];

	if (!c->in_body && !c->upgrade_asked) {
		int n = snprintf(body, sizeof body, "echo %s %s\n", http_method_str(p->method), c->target);
		snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s", n,
			 http_should_keep_alive(p) ? "" : "Connection: close\r\n",
			 p->method == HTTP_HEAD ? "" : body);
		if (out_str(c, resp) < 0)
			return -1;
	}
	c->in_body = false;
	c->close_after = !http_should_keep_alive(p) && !c->upgrade_asked;
	http_parser_pause(p, 1); /* the caller notes where the message ended */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url, .on_header_field = on_field, .on_header_value = on_value,
	.on_headers_complete = on_headers_complete, .on_message_complete = on_message_complete,
};

/* Parses in[0..len), queueing the answers and the echoed body bytes; returns len, or
 * -1 on a bad request. */
static ssize_t consume(struct conn *c, size_t len)
{
	size_t off = 0;

	while (off < len && !c->tunnel && !c->close_after) {
		bool body = c->in_body;
		size_t n = http_parser_execute(&c->p, &settings, c->in + off, len - off);
		enum http_errno err = HTTP_PARSER_ERRNO(&c->p);

		if (err != HPE_OK && err != HPE_PAUSED)
			return -1;
		size_t lf = body && c->head_lf && n > 0;
		if (lf)
			c->head_lf = false;
		if (body && out_add(c, c->in + off + lf, n - lf) < 0) /* raw body, framing and all */
			return -1;
		off += n;
		if (err == HPE_PAUSED)
			http_parser_pause(&c->p, 0);
		if (c->p.upgrade && c->upgrade_asked)
			c->tunnel = true;
		else if (err == HPE_PAUSED && !c->in_body) { /* a message ended: next one */
			c->target[0] = '\0';
			c->expect_continue = false;
		}
	}
	if (c->tunnel && off < len && out_add(c, c->in + off, len - off) < 0) /* sent after the head */
		return -1;
	return (ssize_t)len;
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_close(struct conn *c)
{
	struct echo *e = c->e;

	ev_io_stop(e->loop, &c->io);
	close(c->fd);
	TAILQ_REMOVE(&e->conns, c, link);
	free(c->out);
	free(c);
	if (e->stopping && TAILQ_EMPTY(&e->conns))
		ev_break(e->loop, EVBREAK_ALL);
}

static void conn_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, io);
	ssize_t n;

	if ((revents & EV_READ) && c->out_len < OUT_HIGH && !c->close_after) {
		n = recv(c->fd, c->in, sizeof c->in, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->eof = true;
			n = 0;
		}
		if (n > 0 && c->tunnel) {
			if (out_add(c, c->in, (size_t)n) < 0)
				c->eof = true;
		} else if (n > 0 && consume(c, (size_t)n) < 0) {
			out_str(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
			c->eof = true;
		}
	}
	if (out_flush(c) < 0 || ((c->eof || c->close_after) && c->out_len == 0)) {
		conn_close(c);
		return;
	}
	int events = (c->eof || c->close_after || c->out_len >= OUT_HIGH ? 0 : EV_READ) |
		     (c->out_len ? EV_WRITE : 0);
	ev_io_stop(loop, w);
	ev_io_set(w, c->fd, events);
	ev_io_start(loop, w);
}

static void accept_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct echo *e = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct conn *c;

	(void)revents;
	if (fd < 0)
		return;
	c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->e = e;
	c->fd = fd;
	http_parser_init(&c->p, HTTP_REQUEST);
	c->p.data = c;
	TAILQ_INSERT_TAIL(&e->conns, c, link);
	ev_io_init(&c->io, conn_event, fd, EV_READ);
	ev_io_start(loop, &c->io);
}

/* ---- start and stop --------------------------------------------------------------- */

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct echo *e = w->data;
	struct conn *c;
	int n = 0;

	(void)revents;
	if (w->signum == SIGINT)
		exit(128 + SIGINT);
	TAILQ_FOREACH(c, &e->conns, link)
		n++;
	log_info("stopping (SIG%s): %d connections", sigabbrev_np(w->signum), n);
	e->stopping = true;
	for (int i = 0; i < e->n_listen; i++) {
		ev_io_stop(loop, &e->listen_io[i]);
		close(e->listen_fd[i]);
	}
	if (TAILQ_EMPTY(&e->conns))
		ev_break(loop, EVBREAK_ALL);
}

static int listen_on(const char *text)
{
	struct cfg_addr a;
	const char *why;
	int fd;

	if (parse_addr(text, &a, &why) < 0) {
		log_warn("--listen %s: %s", text, why);
		return -1;
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) < 0 ||
	    bind(fd, (struct sockaddr *)&a.ss, a.len) < 0 || listen(fd, 1024) < 0) {
		log_errno("--listen %s", text);
		return -1;
	}
	return fd;
}

static int take_sockets(struct echo *e, int argc, char **argv)
{
	const char *fds = getenv("LISTEN_FDS");

	if (argc == 3 && strcmp(argv[1], "--listen") == 0) {
		e->listen_fd[0] = listen_on(argv[2]);
		e->n_listen = e->listen_fd[0] >= 0;
		return e->n_listen ? 0 : -1;
	}
	if (argc != 1 || !fds) {
		fprintf(stderr, "usage: echo-backend [--listen ADDR]   (or sockets by LISTEN_FDS)\n");
		return -1;
	}
	e->n_listen = atoi(fds);
	if (e->n_listen < 1 || e->n_listen > MAX_LISTEN)
		return -1;
	for (int i = 0; i < e->n_listen; i++)
		e->listen_fd[i] = 3 + i;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

int main(int argc, char **argv)
{
	struct echo e = { .loop = ev_default_loop(EVFLAG_AUTO) };

	log_init("echo-backend");
	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&e.conns);
	if (take_sockets(&e, argc, argv) < 0)
		return 2;
	for (int i = 0; i < e.n_listen; i++) {
		fd_set_nonblock(e.listen_fd[i], 1);
		ev_io_init(&e.listen_io[i], accept_ready, e.listen_fd[i], EV_READ);
		e.listen_io[i].data = &e;
		ev_io_start(e.loop, &e.listen_io[i]);
	}
	ev_signal_init(&e.sigterm, on_stop, SIGTERM);
	ev_signal_init(&e.sighup, on_stop, SIGHUP);
	ev_signal_init(&e.sigint, on_stop, SIGINT);
	e.sigterm.data = e.sighup.data = e.sigint.data = &e;
	ev_signal_start(e.loop, &e.sigterm);
	ev_signal_start(e.loop, &e.sighup);
	ev_signal_start(e.loop, &e.sigint);
	log_info("serving %d socket%s", e.n_listen, e.n_listen > 1 ? "s" : "");
	notify_parent("READY=1\nSTATUS=echoing");
	ev_run(e.loop, 0);
	log_info("stopped");
	return 0;
}
