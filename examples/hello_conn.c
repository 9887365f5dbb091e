/* hello_conn.c — the reference worker's HTTP side (see hello_worker.h): a
 * connection reads requests with http-parser (keep-alive, pipelining, bodies read and
 * dropped), answers each, and on a graceful stop finishes what is in flight. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hello_worker.h"
#include "log.h"

static void conn_advance(struct conn *c);
static void conn_write(struct conn *c);

/* ---- connections -------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	health_idle(c);
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	if (close(c->fd) < 0)
		log_errno("close(connection fd %d)", c->fd);
	TAILQ_REMOVE(&w->conns, c, link);
	free(c);
	w->n_conns--;
	accept_closed(w);
	if (w->stopping && w->n_conns == 0)
		worker_stopped(w);
}

/* Watches fd for events (EV_READ, EV_WRITE or 0). */
static void conn_watch(struct conn *c, int events)
{
	if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(c->w->loop, &c->io);
	if (!events)
		return;
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->w->loop, &c->io);
}

/* After the last response: shut our side and wait (bounded) for the client's FIN, so
 * that unread input does not turn our close into a reset that eats the response. */
static void conn_linger(struct conn *c)
{
	c->state = CONN_LINGER;
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->in_len = 0;
	ev_timer_stop(c->w->loop, &c->timer);
	ev_timer_set(&c->timer, LINGER_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
	conn_watch(c, EV_READ);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

static void response_body(const struct conn *c, char *body, size_t size)
{
	const struct worker *w = c->w;

	if (c->rq.status != 200)
		snprintf(body, size, "%s\n", c->rq.detail[0] ? c->rq.detail : reason(c->rq.status));
	else if (c->rq.route == ROUTE_PID)
		snprintf(body, size, "%d\n", (int)w->pid);
	else
		snprintf(body, size, "%s from pid %d worker %s\n", w->opt.greeting, (int)w->pid, w->id);
}

static void conn_respond_now(struct conn *c)
{
	struct worker *w = c->w;
	char body[sizeof c->rq.detail + NAME_MAX_LEN * 2];
	int n;

	c->keep_alive = c->rq.status == 200 && c->rq.keep_alive && !w->stopping;
	response_body(c, body, sizeof body);
	n = snprintf(c->out, sizeof c->out,
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "X-Worker-Pid: %d\r\nX-Worker-Id: %s\r\n%sConnection: %s\r\n\r\n%s",
		     c->rq.status, reason(c->rq.status), strlen(body), (int)w->pid, w->id,
		     c->rq.status == 405 ? "Allow: GET, HEAD, POST\r\n" : "",
		     c->keep_alive ? "keep-alive" : "close", c->rq.head_only ? "" : body);
	c->out_len = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
	c->out_off = 0;
	c->state = CONN_WRITE;
	conn_write(c);
}

/* The request is read in full: answer now or after /slow's and --delay's wait. */
static void conn_respond(struct conn *c)
{
	long ms = c->w->opt.delay_ms + (c->rq.route == ROUTE_SLOW ? c->rq.slow_ms : 0);

	health_busy(c);
	test_opts_on_request(&c->w->opt.test);
	if (c->rq.status != 200 || ms == 0) {
		conn_respond_now(c);
		return;
	}
	if (c->rq.route == ROUTE_SLOW)
		log_info("slow request: answering in %ld ms", ms);
	c->state = CONN_DELAY;
	conn_watch(c, 0);
	ev_timer_set(&c->timer, (double)ms / 1000., 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

static void conn_after_response(struct conn *c)
{
	health_idle(c);
	c->served++;
	if (!c->keep_alive || c->w->stopping) {
		conn_linger(c);
		return;
	}
	c->state = CONN_READ;
	conn_advance(c);
}

static void conn_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(c, EV_WRITE);
			return;
		}
		if (n < 0) {
			if (errno != EPIPE && errno != ECONNRESET)
				log_errno("send(connection fd %d)", c->fd);
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_after_response(c);
}

/* ---- requests: http-parser ------------------------------------------------------ */

/* "ms=N" among the &-separated parameters of query. */
static int parse_slow_query(char *query, long *ms)
{
	char *save = NULL, *end;

	for (char *p = strtok_r(query, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
		if (strncmp(p, "ms=", 3) != 0)
			continue;
		errno = 0;
		*ms = strtol(p + 3, &end, 10);
		return errno || end == p + 3 || *end || *ms < 0 || *ms > SLOW_MAX_MS ? -1 : 0;
	}
	return -1;
}

/* /mule?farm=NAME&msg=TEXT: one datagram to the farm's MULE_<NAME>_SOCKET. */
static int mule_send(char *query, struct request *rq)
{
	char *save = NULL, *farm = NULL, *msg = NULL, key[96], *addr;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	for (char *p = strtok_r(query, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
		if (strncmp(p, "farm=", 5) == 0)
			farm = p + 5;
		else if (strncmp(p, "msg=", 4) == 0)
			msg = p + 4;
	}
	if (!farm || !msg || strlen(farm) > 64)
		return 400;
	snprintf(key, sizeof key, "MULE_%s_SOCKET", farm);
	for (char *k = key; *k; k++)
		*k = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
	addr = getenv(key);
	if (!addr || strlen(addr) >= sizeof sun.sun_path) {
		snprintf(rq->detail, sizeof rq->detail, "no mule farm \"%s\" (no %s in the environment)",
			 farm, key);
		return 404;
	}
	memcpy(sun.sun_path, addr, strlen(addr));
	if (addr[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 503;
	rc = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sun,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr)));
	if (rc < 0)
		log_errno("mule message to %s", addr);
	close(fd);
	return rc < 0 ? 503 : 200;
}

/* The route of the request target (in place): 200 or an error status. */
static int parse_target(char *target, struct request *rq)
{
	char *query = strchr(target, '?');

	if (target[0] != '/')
		return 400;
	if (query)
		*query++ = '\0';
	if (strcmp(target, "/pid") == 0)
		rq->route = ROUTE_PID;
	if (strcmp(target, "/mule") == 0)
		return query ? mule_send(query, rq) : 400;
	if (strcmp(target, "/slow") != 0)
		return 200;
	rq->route = ROUTE_SLOW;
	return query && parse_slow_query(query, &rq->slow_ms) == 0 ? 200 : 400;
}

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	memset(&c->rq, 0, sizeof c->rq);
	c->rq.status = 200;
	c->in_request = 1;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct request *rq = &((struct conn *)p->data)->rq;

	if (rq->url_len + len >= sizeof rq->url) {
		rq->status = 414;
		return 0;
	}
	memcpy(rq->url + rq->url_len, at, len);
	rq->url_len += len;
	rq->url[rq->url_len] = '\0';
	return 0;
}

/* The head is in: method, version and target decide the answer. */
static int on_headers_complete(http_parser *p)
{
	struct request *rq = &((struct conn *)p->data)->rq;

	rq->head_only = p->method == HTTP_HEAD;
	if (rq->status != 200)
		return 0;
	if (p->http_major != 1 || p->http_minor > 1)
		rq->status = 505;
	else if (p->method != HTTP_GET && p->method != HTTP_HEAD && p->method != HTTP_POST)
		rq->status = 405;
	else
		rq->status = parse_target(rq->url, rq);
	return 0;
}

/* A whole request (its body read and dropped): pause, to answer it before the next. */
static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->rq.keep_alive = http_should_keep_alive(p);
	c->in_request = 0;
	c->complete = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* ---- input ------------------------------------------------------------------ */

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* A request http-parser refused: answered, and the connection closed after. */
static void conn_reject(struct conn *c, enum http_errno err)
{
	memset(&c->rq, 0, sizeof c->rq);
	c->rq.status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
	if (c->rq.status == 400)
		snprintf(c->rq.detail, sizeof c->rq.detail, "Bad Request: %s", http_errno_description(err));
	c->in_len = 0;
	c->in_request = 0;
	conn_respond(c);
}

/* Gives what is buffered to http-parser; answers once a whole request is in. */
static void conn_advance(struct conn *c)
{
	size_t n;
	enum http_errno err;

	if (c->in_len == 0 && !c->in_request && c->w->stopping) {
		conn_close(c);
		return;
	}
	c->complete = 0;
	n = http_parser_execute(&c->parser, &parser_settings, c->in, c->in_len);
	err = HTTP_PARSER_ERRNO(&c->parser);
	if (err != HPE_OK && err != HPE_PAUSED) {
		conn_reject(c, err);
		return;
	}
	conn_consume(c, n);
	if (!c->complete) {
		conn_watch(c, EV_READ);
		return;
	}
	http_parser_pause(&c->parser, 0);
	if (c->rq.status != 200)
		c->rq.keep_alive = 0;
	conn_respond(c);
}

static void conn_read(struct conn *c)
{
	char discard[4096];
	int lingering = c->state == CONN_LINGER;
	char *buf = lingering ? discard : c->in + c->in_len;
	size_t room = lingering ? sizeof discard : sizeof c->in - c->in_len;
	ssize_t n = recv(c->fd, buf, room, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0 && errno != ECONNRESET && errno != EPIPE)
			log_errno("recv(connection fd %d)", c->fd);
		conn_close(c);
		return;
	}
	if (lingering)
		return;
	ev_timer_stop(c->w->loop, &c->timer); /* conn_await_first(): it came */
	c->in_len += (size_t)n;
	conn_advance(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = CONTAINER_OF(io, struct conn, io);

	(void)loop;
	if (revents & EV_WRITE)
		conn_write(c);
	else if (revents & EV_READ)
		conn_read(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = CONTAINER_OF(t, struct conn, timer);

	(void)loop;
	(void)revents;
	if (c->state == CONN_LINGER || c->state == CONN_READ)
		conn_close(c);
	else
		conn_respond_now(c);
}

void conn_new(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c) {
		log_warn("out of memory: dropping a connection");
		if (close(fd) < 0)
			log_errno("close(connection fd %d)", fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->state = CONN_READ;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
	TAILQ_INSERT_TAIL(&w->conns, c, link);
	w->n_conns++;
	ev_io_start(w->loop, &c->io);
}

/* Between two requests on a keep-alive connection: closed by a graceful stop. */
int conn_idle(const struct conn *c)
{
	return c->state == CONN_READ && !c->in_request && c->in_len == 0 && c->served > 0;
}

/* Accepted, nothing read yet: its request may already be on its way, so it is in
 * flight, not idle. It gets LINGER_S to arrive. */
void conn_await_first(struct conn *c)
{
	ev_timer_set(&c->timer, LINGER_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* On stop, an idle keep-alive connection may have a request already on its way:
 * closing it now would fail that request. It gets IDLE_GRACE_S to arrive (and be
 * answered with Connection: close); otherwise the timer closes it. */
void conn_await_last(struct conn *c)
{
	ev_timer_stop(c->w->loop, &c->timer);
	ev_timer_set(&c->timer, IDLE_GRACE_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

int conn_unread(const struct conn *c)
{
	return c->state == CONN_READ && !c->in_request && c->in_len == 0 && c->served == 0;
}
