/* router.c — the HTTP router process of a gateway (see gateway.h, docs/gateway.md).
 * One libev loop (its own: the master's loop still owns libev's signal slots, so
 * signals come through a signalfd). A client connection is a sequence of exchanges:
 *   HEAD      read the request head (max-header-size: 431; malformed: 400; slow:
 *             408), parsed by http-parser; pick a node by Host (none: 404)
 *   CONNECT   non-blocking connect; a refusing node is skipped for a while and the
 *             next is tried (all down: 502)
 *   EXCHANGE  the head goes out with X-Forwarded-For/-Proto added; the request body
 *             and the response are streamed both ways as they arrive, never buffered
 *             whole (one buffer per direction; reading stops while the other side
 *             cannot take more); http-parser finds where each message ends, so
 *             keep-alive works on both sides, chunked bodies and 100-continue pass
 *             through, and the backend has backend-timeout to answer (504). A backend
 *             connection that fails before any byte of the answer (a kept-alive one
 *             the backend closed meanwhile, a node dying) is retried on a new one if
 *             no byte of the request body went out and the method is idempotent.
 *   TUNNEL    after a 101 answer to an upgrade request: bytes both ways until both
 *             sides have ended (each end's FIN passed on as a shutdown)
 *   LINGER    after the router's own error answer, or a last response: our side shut,
 *             the client's remaining bytes read and dropped until its FIN (or a few
 *             seconds), so that closing never resets the answer away
 * On its stop signal the router stops accepting, closes idle connections, lets
 * exchanges in flight finish, and exits when none is left (the master's mercy
 * bounds that). */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"
#include "procs.h"
#include "util.h"

#define RBUF 16384          /* bytes buffered from the backend; from the client, at least */
#define MAX_ATTEMPTS 8      /* connections tried for one request */
#define LINGER_S 2.0        /* after our last byte, how long the client has to close */

enum rstate { R_HEAD, R_CONNECT, R_EXCHANGE, R_TUNNEL, R_LINGER };

/* What pump_out() could do. */
enum pump { PUMP_CLIENT_FAILED = -2, PUMP_BACKEND_FAILED = -1, PUMP_BLOCKED = 0, PUMP_DONE = 1 };

struct router;

struct rconn {
	TAILQ_ENTRY(rconn) link;
	struct router *r;
	enum rstate state;
	int cfd, bfd;
	ev_io cio, bio;
	ev_timer timer;
	http_parser reqp, resp;
	char peer[INET6_ADDRSTRLEN];
	char host[256];
	bool head_only, client_keepalive, req_done, resp_done, resp_started;
	bool counted;                /* this exchange is counted in node->active */
	bool reused;                 /* bfd was kept alive from an earlier exchange */
	bool body_sent;              /* a byte of the request body went to the backend */
	bool b_any, c_sent;          /* a byte came from the backend / went to the client */
	bool c_eof, b_eof;           /* the client / the backend has sent its FIN */
	bool c_shut, b_shut;         /* we shut down our writing side to it (tunnel) */
	struct sub_node *node;       /* the node bfd is connected to (held) */
	struct sub_node *tried[MAX_ATTEMPTS]; /* skipped for this request */
	int n_tried, attempts;
	unsigned served;             /* exchanges completed */
	char *head;                  /* the rewritten request head */
	size_t head_len, head_off;
	size_t blen, boff, b_fwd;    /* bbuf: [boff, blen) not yet handled; b_fwd: bytes at */
	size_t clen, coff, c_fwd;    /*   boff being written to the client. cbuf: the same, */
	size_t ccap;                 /*   from the client, ccap bytes */
	char bbuf[RBUF];
	char cbuf[];
};
TAILQ_HEAD(rconn_list, rconn);

struct router {
	struct ev_loop *loop;
	const struct cfg_gateway *gw;
	struct sub_table table;
	struct rconn_list conns;
	int n_conns, listen_fd, sub_fd, sig_fd;
	ev_io listen_io, sub_io, sig_io;
	ev_timer expire_timer;
	ev_timer save_timer;         /* the state file, debounced (SUB_SAVE_INTERVAL) */
	ev_tstamp saved_at;
	bool stopping, done;
	uid_t uid;
	char who[32];
};

static void conn_close(struct rconn *c);
static void conn_pump(struct rconn *c);
static void conn_connect(struct rconn *c);

/* ---- watchers and the node --------------------------------------------------------------- */

static void watch(struct rconn *c, ev_io *w, int fd, int events)
{
	if (w->fd == fd && (w->events & (EV_READ | EV_WRITE)) == events && ev_is_active(w))
		return;
	ev_io_stop(c->r->loop, w);
	if (!events || fd < 0)
		return;
	ev_io_set(w, fd, events);
	ev_io_start(c->r->loop, w);
}

static void arm_timer(struct rconn *c, double seconds)
{
	ev_timer_stop(c->r->loop, &c->timer);
	ev_timer_set(&c->timer, seconds, 0);
	ev_timer_start(c->r->loop, &c->timer);
}

static void set_node(struct rconn *c, struct sub_node *n)
{
	if (c->node)
		sub_node_release(&c->r->table, c->node);
	c->node = n;
	if (n)
		sub_node_hold(n);
}

/* The exchange no longer counts as in flight on its node (least-conn). */
static void exchange_uncount(struct rconn *c)
{
	if (c->counted && c->node)
		c->node->active--;
	c->counted = false;
}

static void backend_close(struct rconn *c)
{
	exchange_uncount(c);
	watch(c, &c->bio, -1, 0);
	if (c->bfd >= 0)
		close(c->bfd);
	c->bfd = -1;
	c->reused = false;
	set_node(c, NULL);
}

/* ---- ending a connection ------------------------------------------------------------------ */

/* Our side is done: shut it, then drop what the client still sends until its FIN. */
static void conn_linger(struct rconn *c)
{
	backend_close(c);
	shutdown(c->cfd, SHUT_WR);
	c->state = R_LINGER;
	c->clen = c->coff = c->c_fwd = 0;
	watch(c, &c->cio, c->cfd, EV_READ);
	arm_timer(c, LINGER_S);
}

static void reply_error(struct rconn *c, int status, const char *reason)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s\n", status, reason, strlen(reason) + 1, reason);

	if (send(c->cfd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		log_errno("%s: reply %d to %s", c->r->who, status, c->peer);
	conn_linger(c);
}

/* ---- parsers ------------------------------------------------------------------------------ */

static int on_req_complete(http_parser *p)
{
	struct rconn *c = p->data;

	c->req_done = true;
	http_parser_pause(p, 1); /* what follows is the next request */
	return 0;
}

static int on_resp_headers(http_parser *p)
{
	struct rconn *c = p->data;

	c->resp_started = true;
	return c->head_only && p->status_code >= 200 ? 1 : 0; /* 1: no body to a HEAD */
}

static int on_resp_complete(http_parser *p)
{
	struct rconn *c = p->data;

	if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
		return 0; /* 100 Continue and friends: the final answer follows */
	c->resp_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings req_settings = { /* after the head: the body */
	.on_message_complete = on_req_complete,
};
static const http_parser_settings resp_settings = {
	.on_headers_complete = on_resp_headers, .on_message_complete = on_resp_complete,
};

/* Methods a request may be sent again for when its first attempt got no answer. */
static bool idempotent(unsigned method)
{
	return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
	       method == HTTP_TRACE || method == HTTP_PUT || method == HTTP_DELETE;
}

/* ---- the request head (router_parse_head: see gateway.h) -------------------------------- */

struct head_parse {            /* p->data while router_parse_head() runs */
	struct router_head *h;
	bool in_host, headers_done;
	int hosts, host_values;      /* Host fields, pieces of their values */
};

static int head_field(http_parser *p, const char *at, size_t len)
{
	struct head_parse *hp = p->data;

	hp->in_host = len == 4 && strncasecmp(at, "host", 4) == 0;
	hp->hosts += hp->in_host;
	return 0;
}

static int head_value(http_parser *p, const char *at, size_t len)
{
	struct head_parse *hp = p->data;

	hp->host_values += hp->in_host;
	while (len > 0 && (at[len - 1] == ' ' || at[len - 1] == '\t'))
		len--; /* http-parser keeps the whitespace after a value */
	if (hp->in_host && len < sizeof hp->h->host) {
		memcpy(hp->h->host, at, len);
		hp->h->host[len] = '\0';
	}
	return 0;
}

static int head_parsed(http_parser *p)
{
	struct head_parse *hp = p->data;

	hp->headers_done = true;
	http_parser_pause(p, 1); /* to see where the parser ends the head */
	return 0;
}

static int head_complete(http_parser *p)
{
	struct head_parse *hp = p->data;

	hp->h->complete = true;
	http_parser_pause(p, 1); /* what follows is the next request */
	return 0;
}

static const http_parser_settings head_settings = {
	.on_header_field = head_field, .on_header_value = head_value,
	.on_headers_complete = head_parsed, .on_message_complete = head_complete,
};

static size_t head_end(const char *buf, size_t len)
{
	const char *lf = memchr(buf, '\n', len);

	for (size_t i = lf ? (size_t)(lf - buf) : len; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

int router_parse_head(http_parser *p, const char *buf, size_t len, struct router_head *h)
{
	struct head_parse hp = { .h = h };
	enum http_errno err;
	size_t n;

	memset(h, 0, sizeof *h);
	h->len = head_end(buf, len);
	if (!h->len)
		return 0;
	http_parser_init(p, HTTP_REQUEST);
	p->data = &hp;
	n = http_parser_execute(p, &head_settings, buf, h->len);
	if (hp.headers_done && n == h->len - 1 && HTTP_PARSER_ERRNO(p) == HPE_PAUSED) {
		http_parser_pause(p, 0); /* at the head's last byte, as it should: go on */
		n += http_parser_execute(p, &head_settings, buf + n, 1);
	}
	p->data = NULL;
	err = HTTP_PARSER_ERRNO(p);
	/* Where the parser ends the head is where the empty line does, or the parser and
	 * the backend disagree on the request: a lenient bare CR ending the headers early
	 * puts the rest in the body, empty lines before the request line end it before
	 * any header. A second Host, or one folded on two lines, could be routed by one
	 * value and served by another. */
	if ((err != HPE_OK && err != HPE_PAUSED) || !hp.headers_done || n != h->len ||
	    hp.hosts > 1 || hp.host_values > 1)
		return -1;
	h->head_only = p->method == HTTP_HEAD;
	h->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	return 0;
}

char *router_rewrite_head(const char *head, size_t len, const char *peer, size_t *out_len)
{
	size_t body = len - (head[len - 2] == '\r' ? 2 : 1); /* drop the empty line */
	char extra[160], *out;
	int n = snprintf(extra, sizeof extra, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n\r\n",
			 peer);

	if (n < 0 || (size_t)n >= sizeof extra) {
		errno = EINVAL;
		return NULL;
	}
	out = malloc(body + (size_t)n);
	if (!out)
		return NULL;
	memcpy(out, head, body);
	memcpy(out + body, extra, (size_t)n);
	*out_len = body + (size_t)n;
	return out;
}

static void start_exchange(struct rconn *c, const struct router_head *h)
{
	c->reqp.data = c;
	memcpy(c->host, h->host, sizeof c->host);
	c->req_done = h->complete;
	c->head_only = h->head_only;
	c->client_keepalive = h->keep_alive;
	free(c->head);
	c->head_len = c->head_off = 0;
	c->head = router_rewrite_head(c->cbuf, h->len, c->peer, &c->head_len);
	if (!c->head) {
		log_errno("%s: request from %s", c->r->who, c->peer);
		reply_error(c, 500, "Internal Server Error");
		return;
	}
	c->coff += h->len;
	c->n_tried = c->attempts = 0;
	c->body_sent = false;
	conn_connect(c);
}

static void read_head(struct rconn *c)
{
	size_t max = c->r->gw->max_header_size;
	struct router_head h;
	int rc;

	if (c->coff > 0) { /* what a pipelining client sent after the last request */
		memmove(c->cbuf, c->cbuf + c->coff, c->clen - c->coff);
		c->clen -= c->coff;
		c->coff = 0;
	}
	rc = router_parse_head(&c->reqp, c->cbuf, c->clen, &h);
	if (h.len > max || (!h.len && c->clen >= max)) {
		reply_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	if (!h.len)
		return;
	if (rc < 0)
		reply_error(c, 400, "Bad Request");
	else
		start_exchange(c, &h);
}

/* ---- connecting to a node ----------------------------------------------------------------- */

static bool node_in_key(const struct sub_node *node, const struct sub_key *k)
{
	const struct sub_node *n;

	TAILQ_FOREACH(n, &k->nodes, link)
		if (n == node)
			return true;
	return false;
}

static void connected(struct rconn *c)
{
	c->state = R_EXCHANGE;
	c->node->active++;
	c->counted = true;
	http_parser_init(&c->resp, HTTP_RESPONSE);
	c->resp.data = c;
	c->blen = c->boff = c->b_fwd = 0;
	c->resp_started = c->resp_done = c->b_any = c->c_sent = c->b_eof = false;
	arm_timer(c, c->r->gw->backend_timeout);
	conn_pump(c);
}

static void skip_node(struct rconn *c)
{
	if (c->node && c->n_tried < MAX_ATTEMPTS)
		c->tried[c->n_tried++] = c->node;
}

static void connect_failed(struct rconn *c, int err)
{
	if (err == EAGAIN) { /* a unix socket's backlog is full: busy, not down */
		log_warn("%s: node %s is busy (%s): trying another", c->r->who, c->node->addr.text,
			 strerror(err));
	} else {
		log_warn("%s: node %s refused (%s): skipped for %.0fs", c->r->who,
			 c->node->addr.text, strerror(err), SUB_NODE_DOWN);
		c->node->down_until = ev_now(c->r->loop) + SUB_NODE_DOWN;
	}
	skip_node(c);
	backend_close(c);
	conn_connect(c);
}

/* The backend connection ended (or failed) before a byte of the answer came. */
static void backend_failed(struct rconn *c, int err)
{
	bool retry = !c->body_sent && idempotent(c->reqp.method) && c->attempts < MAX_ATTEMPTS;

	log_warn("%s: %s %s before answering (%s)%s", c->r->who, c->node->addr.text,
		 c->reused ? "closed a kept-alive connection" : "closed the connection",
		 err ? strerror(err) : "EOF", retry ? ": sending the request again" : "");
	if (!c->reused)
		skip_node(c); /* a fresh connection dropped: try the others first */
	backend_close(c);
	if (!retry) {
		reply_error(c, 502, "Bad Gateway: the node closed the connection");
		return;
	}
	c->head_off = 0;
	conn_connect(c);
}

static void conn_connect(struct rconn *c)
{
	struct sub_key *k = sub_table_lookup(&c->r->table, c->host);
	struct sub_node *n;

	if (!k) {
		reply_error(c, 404, "No such host here");
		return;
	}
	if (c->bfd >= 0 && node_in_key(c->node, k)) {
		c->reused = true;
		connected(c); /* keep-alive to the same node */
		return;
	}
	backend_close(c);
	n = c->attempts < MAX_ATTEMPTS ? sub_pick(&c->r->table, k, ev_now(c->r->loop), c->tried,
						  c->n_tried) : NULL;
	if (!n) {
		reply_error(c, 502, "Bad Gateway: no node answers");
		return;
	}
	set_node(c, n);
	c->attempts++;
	c->bfd = socket(n->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->bfd < 0) {
		log_errno("%s: socket for %s", c->r->who, n->addr.text);
		reply_error(c, 502, "Bad Gateway");
		return;
	}
	if (connect(c->bfd, (struct sockaddr *)&n->addr.ss, n->addr.len) == 0) {
		connected(c);
	} else if (errno == EINPROGRESS) {
		c->state = R_CONNECT;
		watch(c, &c->cio, -1, 0);
		watch(c, &c->bio, c->bfd, EV_WRITE);
		arm_timer(c, c->r->gw->backend_timeout);
	} else {
		connect_failed(c, errno);
	}
}

/* ---- streaming ---------------------------------------------------------------------------- */

/* Writes buf[*off..len) to fd; 1 when all written, 0 when it would block, -1 on error. */
static int flush(int fd, const char *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		*off += (size_t)n;
	}
	return 1;
}

/* Request bytes the parser accepts (up to the end of the message) go to the backend.
 * -1 when the connection was closed. */
static int feed_request(struct rconn *c)
{
	if (c->c_fwd || c->coff == c->clen)
		return 0;
	if (c->state == R_TUNNEL) {
		c->c_fwd = c->clen - c->coff;
		return 0;
	}
	if (c->req_done)
		return 0;
	size_t n = http_parser_execute(&c->reqp, &req_settings, c->cbuf + c->coff, c->clen - c->coff);
	if (HTTP_PARSER_ERRNO(&c->reqp) != HPE_OK && HTTP_PARSER_ERRNO(&c->reqp) != HPE_PAUSED) {
		log_warn("%s: bad request body from %s: %s", c->r->who, c->peer,
			 http_errno_description(HTTP_PARSER_ERRNO(&c->reqp)));
		conn_close(c);
		return -1;
	}
	c->c_fwd = n;
	return 0;
}

static void tunnel_begins(struct rconn *c)
{
	c->state = R_TUNNEL;
	ev_timer_stop(c->r->loop, &c->timer); /* a tunnel lasts as long as its ends want */
}

static int feed_response(struct rconn *c)
{
	if (c->b_fwd || c->boff == c->blen)
		return 0;
	if (c->state == R_TUNNEL) {
		c->b_fwd = c->blen - c->boff;
		return 0;
	}
	if (c->resp_done)
		return 0;
	size_t n = http_parser_execute(&c->resp, &resp_settings, c->bbuf + c->boff, c->blen - c->boff);
	if (HTTP_PARSER_ERRNO(&c->resp) != HPE_OK && HTTP_PARSER_ERRNO(&c->resp) != HPE_PAUSED) {
		log_warn("%s: bad response from %s: %s", c->r->who, c->node->addr.text,
			 http_errno_description(HTTP_PARSER_ERRNO(&c->resp)));
		if (c->c_sent)
			conn_close(c);
		else
			reply_error(c, 502, "Bad Gateway: bad response");
		return -1;
	}
	c->b_fwd = n;
	if (c->resp_done && c->resp.status_code == 101 && c->reqp.upgrade)
		tunnel_begins(c);
	return 0;
}

/* Moves what can move, both ways. */
static enum pump pump_out(struct rconn *c)
{
	enum pump result = PUMP_DONE;
	size_t off;
	int rc;

	if (c->head_off < c->head_len) {
		rc = flush(c->bfd, c->head, c->head_len, &c->head_off);
		if (rc <= 0)
			return rc < 0 ? PUMP_BACKEND_FAILED : PUMP_BLOCKED;
	}
	if (c->c_fwd) {
		off = 0;
		rc = flush(c->bfd, c->cbuf + c->coff, c->c_fwd, &off);
		c->coff += off;
		c->c_fwd -= off;
		c->body_sent |= off > 0;
		if (rc < 0)
			return PUMP_BACKEND_FAILED;
		if (rc == 0)
			result = PUMP_BLOCKED;
	}
	if (c->b_fwd) {
		off = 0;
		rc = flush(c->cfd, c->bbuf + c->boff, c->b_fwd, &off);
		c->boff += off;
		c->b_fwd -= off;
		c->c_sent |= off > 0;
		if (rc < 0)
			return PUMP_CLIENT_FAILED;
		if (rc == 0)
			result = PUMP_BLOCKED;
	}
	return result;
}

static void exchange_done(struct rconn *c)
{
	bool keepalive = http_should_keep_alive(&c->resp);

	exchange_uncount(c);
	c->served++;
	if (!keepalive || c->boff != c->blen || c->b_eof)
		backend_close(c);
	if (!c->client_keepalive || !keepalive || c->r->stopping || c->c_eof) {
		conn_linger(c);
		return;
	}
	c->state = R_HEAD;
	arm_timer(c, c->r->gw->header_timeout);
	watch(c, &c->bio, c->bfd, EV_READ); /* a kept backend connection: notice its close */
	watch(c, &c->cio, c->cfd, EV_READ);
	read_head(c);
}

/* A tunnel passes each end's FIN on once what came before it has gone; it is over
 * when both have. Returns -1 when it closed the connection. */
static int tunnel_ends(struct rconn *c)
{
	if (c->c_eof && !c->b_shut && c->c_fwd == 0 && c->coff == c->clen) {
		shutdown(c->bfd, SHUT_WR);
		c->b_shut = true;
	}
	if (c->b_eof && !c->c_shut && c->b_fwd == 0 && c->boff == c->blen) {
		shutdown(c->cfd, SHUT_WR);
		c->c_shut = true;
	}
	if (c->b_shut && c->c_shut) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void pump_failed(struct rconn *c, enum pump failure)
{
	if (failure == PUMP_BACKEND_FAILED && c->state == R_EXCHANGE && !c->b_any) {
		backend_failed(c, errno);
		return;
	}
	conn_close(c);
}

static void conn_pump(struct rconn *c)
{
	enum rstate before;
	enum pump out;

	do { /* again when a tunnel began: the bytes that waited for it may move now */
		before = c->state;
		if (feed_request(c) < 0 || feed_response(c) < 0)
			return;
		out = pump_out(c);
		if (out < 0) {
			pump_failed(c, out);
			return;
		}
		if (c->coff == c->clen)
			c->coff = c->clen = 0;
		if (c->boff == c->blen)
			c->boff = c->blen = 0;
	} while (c->state != before && out == PUMP_DONE);
	if (c->state == R_EXCHANGE && out == PUMP_DONE && c->req_done && c->resp_done) {
		exchange_done(c);
		return;
	}
	if (c->state == R_TUNNEL && tunnel_ends(c) < 0)
		return;
	bool want_c = !c->c_eof && c->c_fwd == 0 && c->clen < c->ccap;
	bool want_b = !c->b_eof && c->b_fwd == 0 && c->head_off == c->head_len &&
		      (c->state == R_TUNNEL || !c->resp_done);
	watch(c, &c->cio, c->cfd, (want_c ? EV_READ : 0) | (c->b_fwd ? EV_WRITE : 0));
	watch(c, &c->bio, c->bfd, (want_b ? EV_READ : 0) |
				  (c->c_fwd || c->head_off < c->head_len ? EV_WRITE : 0));
}

/* ---- events ------------------------------------------------------------------------------- */

static ssize_t fill(int fd, char *buf, size_t *len, size_t cap)
{
	ssize_t n;

	do
		n = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		*len += (size_t)n;
	return n;
}

static void client_ended(struct rconn *c, bool reset)
{
	if (reset || c->state == R_HEAD || c->state == R_LINGER ||
	    (c->state == R_EXCHANGE && !c->req_done)) {
		conn_close(c);
		return;
	}
	c->c_eof = true; /* a half-close: the answer still goes back */
	conn_pump(c);
}

static void client_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, cio);

	(void)loop;
	if (c->state == R_LINGER) {
		c->clen = 0; /* dropped */
		ssize_t n = fill(c->cfd, c->cbuf, &c->clen, c->ccap);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			conn_close(c);
		return;
	}
	if ((revents & EV_READ) && c->clen < c->ccap) {
		ssize_t n = fill(c->cfd, c->cbuf, &c->clen, c->ccap);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			client_ended(c, n < 0);
			return;
		}
		if (n > 0 && c->state == R_EXCHANGE && !c->req_done)
			arm_timer(c, c->r->gw->backend_timeout); /* an upload in progress */
		if (c->state == R_HEAD) {
			read_head(c);
			return;
		}
	}
	if (c->state == R_EXCHANGE || c->state == R_TUNNEL)
		conn_pump(c);
}

static void backend_ended(struct rconn *c, int err)
{
	if (c->state == R_EXCHANGE && !c->b_any) {
		backend_failed(c, err);
		return;
	}
	c->b_eof = true;
	if (c->state == R_EXCHANGE && !c->resp_done) { /* a body that ends at EOF, or cut */
		http_parser_execute(&c->resp, &resp_settings, NULL, 0);
		if (!c->resp_done) {
			log_warn("%s: %s closed in the middle of a response", c->r->who,
				 c->node->addr.text);
			conn_close(c);
			return;
		}
	}
	conn_pump(c);
}

static void backend_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, bio);

	(void)loop;
	if (c->state == R_CONNECT) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			connect_failed(c, err);
		else
			connected(c);
		return;
	}
	if (c->state != R_EXCHANGE && c->state != R_TUNNEL) {
		backend_close(c); /* an idle kept connection closed (or spoke out of turn) */
		return;
	}
	if (revents & EV_READ) {
		ssize_t n = fill(c->bfd, c->bbuf, &c->blen, sizeof c->bbuf);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			backend_ended(c, n < 0 ? errno : 0);
			return;
		}
		c->b_any |= n > 0;
		if (n > 0 && c->state == R_EXCHANGE)
			arm_timer(c, c->r->gw->backend_timeout);
	}
	conn_pump(c);
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, timer);

	(void)loop, (void)revents;
	switch (c->state) {
	case R_HEAD:
		if (c->clen > c->coff)
			reply_error(c, 408, "Request Timeout");
		else
			conn_close(c); /* an idle keep-alive connection */
		break;
	case R_CONNECT:
		connect_failed(c, ETIMEDOUT);
		break;
	case R_EXCHANGE:
		log_warn("%s: %s did not answer within %.0fs", c->r->who, c->node->addr.text,
			 c->r->gw->backend_timeout);
		if (c->c_sent)
			conn_close(c); /* a response that stalled midway */
		else
			reply_error(c, 504, "Gateway Timeout");
		break;
	case R_TUNNEL:
		break;
	case R_LINGER:
		conn_close(c);
		break;
	}
}

/* ---- connections -------------------------------------------------------------------------- */

static void router_done(struct router *r)
{
	if (r->done)
		return;
	r->done = true;
	log_info("%s: stopped", r->who);
	ev_break(r->loop, EVBREAK_ALL);
}

static void conn_close(struct rconn *c)
{
	struct router *r = c->r;

	backend_close(c);
	ev_io_stop(r->loop, &c->cio);
	ev_timer_stop(r->loop, &c->timer);
	close(c->cfd);
	TAILQ_REMOVE(&r->conns, c, link);
	free(c->head);
	free(c);
	r->n_conns--;
	if (r->stopping && r->n_conns == 0)
		router_done(r);
	else if (!r->stopping && r->n_conns < r->gw->max_connections)
		ev_io_start(r->loop, &r->listen_io);
}

static void peer_text(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	snprintf(out, len, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)len);
	else if (ss.ss_family == AF_UNIX)
		snprintf(out, len, "unix");
}

static struct rconn *conn_new(struct router *r, int fd)
{
	size_t ccap = r->gw->max_header_size > RBUF ? r->gw->max_header_size : RBUF;
	struct rconn *c = malloc(sizeof *c + ccap);

	if (!c)
		return NULL;
	memset(c, 0, offsetof(struct rconn, bbuf)); /* the buffers need no zeroing */
	c->r = r;
	c->cfd = fd;
	c->bfd = -1;
	c->ccap = ccap;
	c->state = R_HEAD;
	peer_text(fd, c->peer, sizeof c->peer);
	ev_io_init(&c->cio, client_event, fd, EV_READ);
	ev_io_init(&c->bio, backend_event, -1, EV_READ);
	ev_timer_init(&c->timer, timer_fired, 0, 0);
	return c;
}

static void accept_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, listen_io);

	(void)revents;
	for (int i = 0; i < 64 && r->n_conns < r->gw->max_connections; i++) {
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_errno("%s: accept", r->who);
			break;
		}
		struct rconn *c = conn_new(r, fd);
		if (!c) {
			log_errno("%s: connection from fd %d", r->who, fd);
			close(fd);
			break;
		}
		ev_io_start(loop, &c->cio);
		arm_timer(c, r->gw->header_timeout);
		TAILQ_INSERT_TAIL(&r->conns, c, link);
		r->n_conns++;
	}
	if (r->n_conns >= r->gw->max_connections)
		ev_io_stop(loop, &r->listen_io);
}

/* ---- subscriptions, signals, start -------------------------------------------------------- */

static bool sender_allowed(const struct router *r, uid_t uid)
{
	if (r->gw->n_subscribers == 0)
		return uid == 0 || uid == r->uid;
	for (size_t i = 0; i < r->gw->n_subscribers; i++)
		if (r->gw->subscribers[i] == uid)
			return true;
	return false;
}

/* The expiry timer fires when the first node not heard from again has to go. */
static void expiry_rearm(struct router *r)
{
	ev_tstamp next = sub_table_next_expiry(&r->table), now = ev_now(r->loop);

	ev_timer_stop(r->loop, &r->expire_timer);
	if (next == 0)
		return;
	ev_timer_set(&r->expire_timer, next > now ? next - now : 0.001, 0);
	ev_timer_start(r->loop, &r->expire_timer);
}

static void subscription_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sub_io);
	char buf[1024], ctl[CMSG_SPACE(sizeof(struct ucred))], key[256];

	(void)revents;
	for (int i = 0; i < 64; i++) { /* then the loop's turn; what is left comes next time */
		struct iovec iov = { buf, sizeof buf - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(r->sub_fd, &mh, MSG_DONTWAIT);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		struct ucred uc = { .uid = (uid_t)-1 };
		struct cfg_addr addr;
		const char *why;
		int weight, cmd;

		if (n < 0)
			break;
		buf[n] = '\0';
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(cm), sizeof uc);
		if (!sender_allowed(r, uc.uid)) {
			log_warn("%s: subscription from uid %d (pid %d) refused", r->who, (int)uc.uid, (int)uc.pid);
			continue;
		}
		cmd = (mh.msg_flags & MSG_TRUNC) ? -1 : sub_parse(buf, key, sizeof key, &addr, &weight, &why);
		if (mh.msg_flags & MSG_TRUNC)
			why = "longer than 1023 bytes";
		if (cmd < 0)
			log_warn("%s: bad subscription packet from pid %d: %s", r->who, (int)uc.pid, why);
		else if (cmd == 1)
			sub_table_add(&r->table, key, &addr, weight, ev_now(loop));
		else
			sub_table_remove(&r->table, key, &addr);
	}
	expiry_rearm(r);
}

/* ---- the state file: at most every SUB_SAVE_INTERVAL, and at exit ---------------------- */

static void save_nodes(struct router *r)
{
	ev_timer_stop(r->loop, &r->save_timer);
	r->saved_at = ev_now(r->loop);
	sub_table_save(&r->table);
}

static void save_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	save_nodes(container_of(w, struct router, save_timer));
}

static void nodes_changed(struct sub_table *t)
{
	struct router *r = container_of(t, struct router, table);
	ev_tstamp wait = r->saved_at + SUB_SAVE_INTERVAL - ev_now(r->loop);

	if (ev_is_active(&r->save_timer))
		return;
	if (wait <= 0) {
		save_nodes(r);
		return;
	}
	ev_timer_set(&r->save_timer, wait, 0);
	ev_timer_start(r->loop, &r->save_timer);
}

/* A change not written yet is written before the router goes. */
static void save_pending(struct router *r)
{
	if (ev_is_active(&r->save_timer))
		save_nodes(r);
}

static void expire_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct router *r = container_of(w, struct router, expire_timer);

	(void)revents;
	sub_table_expire(&r->table, ev_now(loop));
	expiry_rearm(r);
}

static void stop_signal(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sig_io);
	struct signalfd_siginfo si;
	struct rconn *c, *next;

	(void)revents;
	if (read(r->sig_fd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (si.ssi_signo == SIGINT) {
		save_pending(r);
		_exit(0);
	}
	if (r->stopping)
		return;
	r->stopping = true;
	ev_io_stop(loop, &r->listen_io);
	log_info("%s: stopping: %d connections", r->who, r->n_conns);
	for (c = TAILQ_FIRST(&r->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		/* Idle between requests. A new connection's first request may be on its way:
		 * it gets header-timeout to arrive, and is answered. */
		if (c->state == R_HEAD && c->clen == c->coff && c->served > 0)
			conn_close(c);
	}
	if (r->n_conns == 0)
		router_done(r);
}

static int router_signals(struct router *r, int stop_sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, stop_sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	r->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sig_fd < 0)
		return -1;
	ev_io_init(&r->sig_io, stop_signal, r->sig_fd, EV_READ);
	ev_io_start(r->loop, &r->sig_io);
	return 0;
}

/* A filesystem subscription socket keeps its nodes beside it, in PATH.nodes. */
static void state_path(struct router *r)
{
	const struct sockaddr_un *sun = (const void *)&r->gw->subscription_server.ss;

	if (sun->sun_family == AF_UNIX && sun->sun_path[0] &&
	    asprintf(&r->table.state_path, "%s.nodes", sun->sun_path) < 0)
		r->table.state_path = NULL;
}

static void add_static_nodes(struct router *r, const struct config *cfg)
{
	for (size_t i = 0; r->gw->to && r->gw->to[i]; i++) {
		const struct cfg_socket *s = config_socket(cfg, r->gw->to[i]);
		if (s)
			sub_table_add(&r->table, "", &s->addr, 1, 0);
	}
}

int router_main(void *arg)
{
	struct proc *p = arg;
	struct router r = { .gw = &p->m->cfg->gateways[p->index], .uid = getuid() };
	char ident[96];

	snprintf(r.who, sizeof r.who, "gateway %zu", p->index + 1);
	snprintf(ident, sizeof ident, "vassal %s", p->m->cfg->name);
	log_init(ident);
	prctl(PR_SET_NAME, "vassal-router");
	TAILQ_INIT(&r.conns);
	sub_table_init(&r.table, r.gw->balance, r.who);
	add_static_nodes(&r, p->m->cfg);
	int n_static = sub_table_count(&r.table);
	r.loop = ev_loop_new(EVFLAG_AUTO);
	if (!r.loop || router_fds(p, &r.listen_fd, &r.sub_fd) < 0 ||
	    router_signals(&r, p->child.stop_signal) < 0) {
		log_errno("%s: cannot start", r.who);
		return 1;
	}
	fd_set_nonblock(r.listen_fd, 1); /* our own dup: the flag is on a shared description, */
	ev_io_init(&r.listen_io, accept_ready, r.listen_fd, EV_READ); /* only routers use it */
	ev_io_start(r.loop, &r.listen_io);
	ev_timer_init(&r.save_timer, save_due, 0, 0);
	if (r.sub_fd >= 0) {
		state_path(&r);
		sub_table_restore(&r.table, ev_now(r.loop));
		r.table.on_change = nodes_changed;
		ev_io_init(&r.sub_io, subscription_ready, r.sub_fd, EV_READ);
		ev_io_start(r.loop, &r.sub_io);
		ev_timer_init(&r.expire_timer, expire_due, 0, 0);
		expiry_rearm(&r);
	}
	log_info("%s: routing on %s (%d static nodes, %d subscribed)", r.who, r.gw->listen.text,
		 n_static, sub_table_count(&r.table) - n_static);
	ev_run(r.loop, 0);
	save_pending(&r);
	sub_table_fini(&r.table);
	ev_loop_destroy(r.loop);
	return r.done ? 0 : 1;
}
