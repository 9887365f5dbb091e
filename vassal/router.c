/* router.c — the HTTP router process of a gateway (see gateway.h). One libev loop
 * (its own: the master's loop still owns libev's signal slots, so signals come
 * through a signalfd). A client connection is a sequence of exchanges:
 *   HEAD      read the request head (max-header-size: 431; malformed: 400; slow:
 *             408), parsed by http-parser; pick a node by Host (none: 404)
 *   CONNECT   non-blocking connect; a refusing node is skipped for a while and the
 *             next is tried (all down: 502)
 *   EXCHANGE  the head goes out with X-Forwarded-For/-Proto added; the request body
 *             and the response are streamed both ways as they arrive, never buffered
 *             whole (one buffer per direction; reading stops while the other side
 *             cannot take more); http-parser finds where each message ends, so
 *             keep-alive works on both sides, chunked bodies and 100-continue pass
 *             through, and the backend has backend-timeout to answer (504)
 *   TUNNEL    after a 101 answer to an upgrade request: bytes both ways until EOF
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

#define RBUF 16384

enum rstate { R_HEAD, R_CONNECT, R_EXCHANGE, R_TUNNEL };

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
	bool host_field, head_only, client_keepalive, req_done, resp_done, resp_started;
	struct sub_node *node;       /* the node bfd is connected to */
	struct sub_node *tried[8];
	int n_tried;
	char *head;                  /* the rewritten request head */
	size_t head_len, head_off;
	char cbuf[RBUF];             /* from the client: [coff, clen) not yet handled */
	size_t clen, coff, c_fwd;    /* c_fwd: bytes at coff being written to the backend */
	char bbuf[RBUF];             /* from the backend, same scheme */
	size_t blen, boff, b_fwd;
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
	bool stopping;
	uid_t uid;
	char who[32];
};

static void conn_close(struct rconn *c);
static void conn_pump(struct rconn *c);
static void conn_connect(struct rconn *c);

/* ---- replies of the router's own -------------------------------------------------- */

static void reply_and_close(struct rconn *c, int status, const char *reason)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s\n", status, reason, strlen(reason) + 1, reason);

	if (send(c->cfd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		log_errno("%s: reply %d to %s", c->r->who, status, c->peer);
	shutdown(c->cfd, SHUT_WR);
	conn_close(c);
}

/* ---- parsers ------------------------------------------------------------------------- */

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct rconn *c = p->data;

	c->host_field = len == 4 && strncasecmp(at, "host", 4) == 0;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct rconn *c = p->data;

	if (c->host_field && len < sizeof c->host) {
		memcpy(c->host, at, len);
		c->host[len] = '\0';
	}
	return 0;
}

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

static const http_parser_settings req_settings = {
	.on_header_field = on_field, .on_header_value = on_value,
	.on_message_complete = on_req_complete,
};
static const http_parser_settings resp_settings = {
	.on_headers_complete = on_resp_headers, .on_message_complete = on_resp_complete,
};

/* ---- watchers ---------------------------------------------------------------------------- */

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

/* ---- the request head ------------------------------------------------------------------- */

static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return i + 2;
		if (buf[i] == '\n' && buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The head as received, its blank line replaced by the forwarding headers. */
static int rewrite_head(struct rconn *c, const char *head, size_t len)
{
	size_t body = len - (head[len - 2] == '\r' ? 2 : 1); /* drop the blank line */
	char extra[160];
	int n = snprintf(extra, sizeof extra, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n\r\n",
			 c->peer);

	free(c->head);
	c->head = malloc(body + (size_t)n);
	if (!c->head)
		return -1;
	memcpy(c->head, head, body);
	memcpy(c->head + body, extra, (size_t)n);
	c->head_len = body + (size_t)n;
	c->head_off = 0;
	return 0;
}

static void start_exchange(struct rconn *c, size_t len)
{
	const char *head = c->cbuf + c->coff;
	size_t parsed;

	http_parser_init(&c->reqp, HTTP_REQUEST);
	c->reqp.data = c;
	c->host[0] = '\0';
	c->req_done = c->resp_done = c->resp_started = false;
	parsed = http_parser_execute(&c->reqp, &req_settings, head, len);
	if (HTTP_PARSER_ERRNO(&c->reqp) != HPE_OK && HTTP_PARSER_ERRNO(&c->reqp) != HPE_PAUSED) {
		reply_and_close(c, 400, "Bad Request");
		return;
	}
	(void)parsed;
	c->head_only = c->reqp.method == HTTP_HEAD;
	c->client_keepalive = http_should_keep_alive(&c->reqp) && !c->reqp.upgrade;
	if (rewrite_head(c, head, len) < 0) {
		reply_and_close(c, 500, "Internal Server Error");
		return;
	}
	c->coff += len;
	c->n_tried = 0;
	c->state = R_CONNECT;
	conn_connect(c);
}

static void read_head(struct rconn *c)
{
	size_t end = head_end(c->cbuf + c->coff, c->clen - c->coff);

	if (end) {
		start_exchange(c, end);
		return;
	}
	if (c->clen - c->coff >= c->r->gw->max_header_size || c->clen == sizeof c->cbuf)
		reply_and_close(c, 431, "Request Header Fields Too Large");
}

/* ---- connecting to a node ----------------------------------------------------------------- */

static bool node_still_there(struct rconn *c, struct sub_key *k)
{
	struct sub_node *n;

	TAILQ_FOREACH(n, &k->nodes, link)
		if (n == c->node)
			return true;
	return false;
}

static void connected(struct rconn *c)
{
	c->state = R_EXCHANGE;
	c->node->active++;
	http_parser_init(&c->resp, HTTP_RESPONSE);
	c->resp.data = c;
	c->blen = c->boff = c->b_fwd = 0;
	arm_timer(c, c->r->gw->backend_timeout);
	conn_pump(c);
}

static void connect_failed(struct rconn *c, int err)
{
	log_warn("%s: node %s refused (%s): skipped for %.0fs", c->r->who, c->node->addr.text,
		 strerror(err), SUB_NODE_DOWN);
	c->node->down_until = ev_now(c->r->loop) + SUB_NODE_DOWN;
	if (c->n_tried < (int)ARRAY_LEN(c->tried))
		c->tried[c->n_tried++] = c->node;
	close(c->bfd);
	c->bfd = -1;
	c->node = NULL;
	conn_connect(c);
}

static void conn_connect(struct rconn *c)
{
	struct sub_key *k = sub_table_lookup(&c->r->table, c->host);

	if (!k) {
		reply_and_close(c, 404, "No such host here");
		return;
	}
	if (c->bfd >= 0 && c->node && node_still_there(c, k)) {
		connected(c); /* keep-alive to the same node */
		return;
	}
	if (c->bfd >= 0) {
		watch(c, &c->bio, -1, 0);
		close(c->bfd);
		c->bfd = -1;
	}
	c->node = sub_pick(&c->r->table, k, ev_now(c->r->loop), c->tried, c->n_tried);
	if (!c->node) {
		reply_and_close(c, 502, "Bad Gateway: no node answers");
		return;
	}
	c->bfd = socket(c->node->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->bfd < 0) {
		reply_and_close(c, 502, "Bad Gateway");
		return;
	}
	if (connect(c->bfd, (struct sockaddr *)&c->node->addr.ss, c->node->addr.len) == 0) {
		connected(c);
	} else if (errno == EINPROGRESS) {
		watch(c, &c->bio, c->bfd, EV_WRITE);
		arm_timer(c, c->r->gw->backend_timeout);
	} else {
		connect_failed(c, errno);
	}
}

/* ---- streaming ------------------------------------------------------------------------------ */

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

/* Request bytes the parser accepts (up to the end of the message) go to the backend. */
static void feed_request(struct rconn *c)
{
	if (c->c_fwd || c->coff == c->clen || (c->req_done && c->state != R_TUNNEL))
		return;
	if (c->state == R_TUNNEL) {
		c->c_fwd = c->clen - c->coff;
		return;
	}
	size_t n = http_parser_execute(&c->reqp, &req_settings, c->cbuf + c->coff, c->clen - c->coff);
	if (HTTP_PARSER_ERRNO(&c->reqp) != HPE_OK && HTTP_PARSER_ERRNO(&c->reqp) != HPE_PAUSED) {
		conn_close(c);
		return;
	}
	c->c_fwd = n;
}

static void feed_response(struct rconn *c)
{
	if (c->b_fwd || c->boff == c->blen)
		return;
	if (c->state == R_TUNNEL) {
		c->b_fwd = c->blen - c->boff;
		return;
	}
	size_t n = http_parser_execute(&c->resp, &resp_settings, c->bbuf + c->boff, c->blen - c->boff);
	if (HTTP_PARSER_ERRNO(&c->resp) != HPE_OK && HTTP_PARSER_ERRNO(&c->resp) != HPE_PAUSED) {
		log_warn("%s: bad response from %s: %s", c->r->who, c->node->addr.text,
			 http_errno_description(HTTP_PARSER_ERRNO(&c->resp)));
		conn_close(c);
		return;
	}
	c->b_fwd = n;
	if (c->resp_done && c->resp.status_code == 101 && c->reqp.upgrade)
		c->state = R_TUNNEL;
}

/* Moves what can move; returns -1 if the connection is gone. */
static int pump_out(struct rconn *c)
{
	int rc;

	if (c->head_off < c->head_len) {
		if ((rc = flush(c->bfd, c->head, c->head_len, &c->head_off)) <= 0)
			return rc;
	}
	if (c->c_fwd) {
		size_t off = 0;
		rc = flush(c->bfd, c->cbuf + c->coff, c->c_fwd, &off);
		c->coff += off;
		c->c_fwd -= off;
		if (rc <= 0)
			return rc;
	}
	if (c->b_fwd) {
		size_t off = 0;
		rc = flush(c->cfd, c->bbuf + c->boff, c->b_fwd, &off);
		c->boff += off;
		c->b_fwd -= off;
		if (rc <= 0)
			return rc;
	}
	return 1;
}

static void exchange_done(struct rconn *c)
{
	bool backend_keepalive = http_should_keep_alive(&c->resp);

	c->node->active--;
	if (!backend_keepalive || c->boff != c->blen) {
		watch(c, &c->bio, -1, 0);
		close(c->bfd);
		c->bfd = -1;
		c->node = NULL;
	}
	if (!c->client_keepalive || c->r->stopping || !backend_keepalive) {
		shutdown(c->cfd, SHUT_WR);
		conn_close(c);
		return;
	}
	c->state = R_HEAD;
	arm_timer(c, c->r->gw->header_timeout);
	if (c->coff == c->clen)
		c->coff = c->clen = 0;
	watch(c, &c->cio, c->cfd, EV_READ);
	read_head(c);
}

static void conn_pump(struct rconn *c)
{
	int out;

	feed_request(c);
	feed_response(c);
	out = pump_out(c);
	if (out < 0) {
		conn_close(c);
		return;
	}
	if (c->coff == c->clen)
		c->coff = c->clen = 0;
	if (c->boff == c->blen)
		c->boff = c->blen = 0;
	if (out == 1 && c->req_done && c->resp_done && c->state == R_EXCHANGE) {
		exchange_done(c);
		return;
	}
	/* Read a side only when what came from it has gone out. */
	bool want_c = c->c_fwd == 0 && c->clen < sizeof c->cbuf;
	bool want_b = c->b_fwd == 0 && c->head_off == c->head_len && !c->resp_done;
	if (c->state == R_TUNNEL)
		want_b = c->b_fwd == 0;
	int cev = (want_c ? EV_READ : 0) | (c->b_fwd ? EV_WRITE : 0);
	int bev = (want_b ? EV_READ : 0) | (c->c_fwd || c->head_off < c->head_len ? EV_WRITE : 0);
	watch(c, &c->cio, c->cfd, cev);
	watch(c, &c->bio, c->bfd, bev);
}

/* ---- events --------------------------------------------------------------------------------- */

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

static void client_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, cio);
	ssize_t n;

	(void)loop;
	if ((revents & EV_READ) && c->clen == sizeof c->cbuf) {
		watch(c, w, c->cfd, 0); /* full: conn_pump() reads again once it drained */
	} else if (revents & EV_READ) {
		n = fill(c->cfd, c->cbuf, &c->clen, sizeof c->cbuf);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (c->state == R_TUNNEL && c->bfd >= 0)
				shutdown(c->bfd, SHUT_WR);
			conn_close(c);
			return;
		}
		if (c->state == R_HEAD) {
			read_head(c);
			return;
		}
	}
	if (c->state == R_EXCHANGE || c->state == R_TUNNEL)
		conn_pump(c);
}

static void backend_gone(struct rconn *c)
{
	if (c->state == R_EXCHANGE && !c->resp_started) {
		log_warn("%s: %s closed before answering", c->r->who, c->node->addr.text);
		reply_and_close(c, 502, "Bad Gateway: the node closed the connection");
		return;
	}
	if (c->state == R_EXCHANGE && !c->resp_done) { /* a body that ends at EOF */
		http_parser_execute(&c->resp, &resp_settings, NULL, 0);
		if (c->resp_done) {
			feed_response(c);
			pump_out(c);
		}
	}
	shutdown(c->cfd, SHUT_WR);
	conn_close(c);
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
	if (revents & EV_READ) {
		ssize_t n = fill(c->bfd, c->bbuf, &c->blen, sizeof c->bbuf);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			backend_gone(c);
			return;
		}
		if (c->state == R_EXCHANGE)
			arm_timer(c, c->r->gw->backend_timeout);
	}
	conn_pump(c);
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, timer);

	(void)loop, (void)revents;
	if (c->state == R_HEAD) {
		if (c->clen > c->coff)
			reply_and_close(c, 408, "Request Timeout");
		else
			conn_close(c); /* an idle keep-alive connection */
		return;
	}
	if (c->state == R_TUNNEL)
		return;
	if (!c->resp_started) {
		log_warn("%s: %s did not answer within %.0fs", c->r->who,
			 c->node ? c->node->addr.text : "node", c->r->gw->backend_timeout);
		reply_and_close(c, 504, "Gateway Timeout");
		return;
	}
	conn_close(c); /* a response that stalled midway */
}

/* ---- connections -------------------------------------------------------------------------- */

static void listen_resume(struct router *r)
{
	if (!r->stopping && r->n_conns < r->gw->max_connections)
		ev_io_start(r->loop, &r->listen_io);
}

static void conn_close(struct rconn *c)
{
	struct router *r = c->r;

	ev_io_stop(r->loop, &c->cio);
	ev_io_stop(r->loop, &c->bio);
	ev_timer_stop(r->loop, &c->timer);
	if (c->state == R_EXCHANGE && c->node && !(c->req_done && c->resp_done))
		c->node->active--;
	close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	TAILQ_REMOVE(&r->conns, c, link);
	free(c->head);
	free(c);
	r->n_conns--;
	if (r->stopping && r->n_conns == 0) {
		log_info("%s: stopped", r->who);
		exit(0);
	}
	listen_resume(r);
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
		struct rconn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			break;
		}
		c->r = r;
		c->cfd = fd;
		c->bfd = -1;
		peer_text(fd, c->peer, sizeof c->peer);
		ev_io_init(&c->cio, client_event, fd, EV_READ);
		ev_io_init(&c->bio, backend_event, -1, EV_READ);
		ev_timer_init(&c->timer, timer_fired, 0, 0);
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

static void subscription_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sub_io);
	char buf[1024], ctl[CMSG_SPACE(sizeof(struct ucred))], key[256];

	(void)revents;
	for (int i = 0; i < 64; i++) {
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
			return;
		buf[n] = '\0';
		if (cm && cm->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(cm), sizeof uc);
		if (!sender_allowed(r, uc.uid)) {
			log_warn("%s: subscription from uid %d (pid %d) refused", r->who, (int)uc.uid, (int)uc.pid);
			continue;
		}
		cmd = sub_parse(buf, key, sizeof key, &addr, &weight, &why);
		if (cmd < 0)
			log_warn("%s: bad subscription packet from pid %d: %s", r->who, (int)uc.pid, why);
		else if (cmd == 1)
			sub_table_add(&r->table, key, &addr, weight, ev_now(loop));
		else
			sub_table_remove(&r->table, key, &addr);
	}
}

static void expire_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct router *r = container_of(w, struct router, expire_timer);

	(void)revents;
	sub_table_expire(&r->table, ev_now(loop));
}

static void stop_signal(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sig_io);
	struct signalfd_siginfo si;
	struct rconn *c, *next;

	(void)revents;
	if (read(r->sig_fd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (si.ssi_signo == SIGINT)
		exit(0);
	r->stopping = true;
	ev_io_stop(loop, &r->listen_io);
	log_info("%s: stopping: %d connections", r->who, r->n_conns);
	for (c = TAILQ_FIRST(&r->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == R_HEAD && c->clen == c->coff)
			conn_close(c); /* idle between requests */
	}
	if (r->n_conns == 0) {
		log_info("%s: stopped", r->who);
		exit(0);
	}
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
	r.loop = ev_loop_new(EVFLAG_AUTO);
	if (!r.loop || router_fds(p, &r.listen_fd, &r.sub_fd) < 0 ||
	    router_signals(&r, p->child.stop_signal) < 0) {
		log_errno("%s: cannot start", r.who);
		return 1;
	}
	fd_set_nonblock(r.listen_fd, 1); /* our own dup: the flag is on a shared description, */
	ev_io_init(&r.listen_io, accept_ready, r.listen_fd, EV_READ); /* only routers use it */
	ev_io_start(r.loop, &r.listen_io);
	if (r.sub_fd >= 0) {
		state_path(&r);
		sub_table_restore(&r.table, ev_now(r.loop));
		ev_io_init(&r.sub_io, subscription_ready, r.sub_fd, EV_READ);
		ev_io_start(r.loop, &r.sub_io);
		ev_timer_init(&r.expire_timer, expire_due, SUB_PERIOD, SUB_PERIOD);
		ev_timer_start(r.loop, &r.expire_timer);
	}
	log_info("%s: routing on %s (%d static nodes)", r.who, r.gw->listen.text,
		 sub_table_count(&r.table));
	ev_run(r.loop, 0);
	return 1;
}
