/* router_conn.c — a client connection of the router (router.h), a sequence of
 * exchanges, each through these states:
 *   HEAD      read the request head (max-header-size: 431; malformed, or refused as
 *             RFC 9112 says: 400; slow: 408), parsed by http_head.c; pick a node by
 *             host (none: 404)
 *   CONNECT   non-blocking connect; a refusing node is skipped for a while and the
 *             next is tried (all down: 502)
 *   EXCHANGE  the bytes, both ways (router_stream.c); the backend has backend-timeout
 *             to answer (504). A backend connection that fails before any byte of the
 *             answer (a kept-alive one the backend closed meanwhile, a node dying) is
 *             retried on a new one if no byte of the request body went out and the
 *             method is idempotent; a request that is not idempotent never goes on a
 *             kept-alive connection, so a stale one cannot cost it a 502.
 *   TUNNEL    after a 101 answer to an upgrade request: bytes both ways until both
 *             sides have ended, or neither sent a byte for tunnel-timeout
 *   LINGER    after the router's own error answer, or a last response: our side shut,
 *             the client's remaining bytes read and dropped until its FIN (or a few
 *             seconds), so that closing never resets the answer away */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_head.h"
#include "log.h"
#include "router.h"
#include "util.h"

static void conn_connect(struct rconn *c);

/* ---- watchers and the node --------------------------------------------------------------- */

void rconn_watch(struct rconn *c, ev_io *w, int fd, int events)
{
	if (w->fd == fd && (w->events & (EV_READ | EV_WRITE)) == events && ev_is_active(w))
		return;
	ev_io_stop(c->r->loop, w);
	if (!events || fd < 0)
		return;
	ev_io_set(w, fd, events);
	ev_io_start(c->r->loop, w);
}

void rconn_arm_timer(struct rconn *c, double seconds)
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

void rconn_uncount(struct rconn *c)
{
	if (c->counted && c->node)
		c->node->active--;
	c->counted = false;
}

void rconn_backend_close(struct rconn *c)
{
	rconn_uncount(c);
	rconn_watch(c, &c->bio, -1, 0);
	if (c->bfd >= 0)
		close(c->bfd);
	c->bfd = -1;
	c->reused = false;
	set_node(c, NULL);
}

/* ---- ending a connection ------------------------------------------------------------------ */

/* Our side is done: shut it, then drop what the client still sends until its FIN. */
void rconn_linger(struct rconn *c)
{
	rconn_backend_close(c);
	if (shutdown(c->cfd, SHUT_WR) < 0 && errno != ENOTCONN) /* ENOTCONN: reset already */
		log_errno("%s: shutdown of %s's connection", c->r->who, c->peer);
	c->state = R_LINGER;
	c->clen = c->coff = c->c_fwd = 0;
	rconn_watch(c, &c->cio, c->cfd, EV_READ);
	rconn_arm_timer(c, LINGER_S);
}

void rconn_reply_error(struct rconn *c, int status, const char *reason)
{
	char msg[384];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s\n", status, reason, strlen(reason) + 1, reason);

	if (n < 0 || (size_t)n >= sizeof msg)
		n = snprintf(msg, sizeof msg, "HTTP/1.1 %d Error\r\nContent-Length: 0\r\n"
			     "Connection: close\r\n\r\n", status);
	/* counted before it is sent: a scrape after the client saw its answer counts it */
	if (!c->answered)
		router_count(c->r, c->key, status);
	c->answered = true;
	if (send(c->cfd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		log_errno("%s: reply %d to %s", c->r->who, status, c->peer);
	rconn_linger(c);
}

/* ---- the head ------------------------------------------------------------------------------ */

static void start_exchange(struct rconn *c, const struct http_head *h)
{
	c->reqp.data = c;
	memcpy(c->host, h->host, sizeof c->host);
	c->key[0] = '\0';
	c->answered = false;
	c->req_done = h->complete;
	c->head_only = h->head_only;
	c->client_keepalive = h->keep_alive;
	c->idempotent = h->idempotent;
	free(c->head);
	c->head_len = c->head_off = 0;
	c->head = http_head_rewrite(h, c->cbuf, c->peer, &c->head_len);
	if (!c->head) {
		log_errno("%s: request from %s", c->r->who, c->peer);
		rconn_reply_error(c, 500, "Internal Server Error");
		return;
	}
	c->coff += h->len;
	c->n_tried = c->attempts = 0;
	c->body_sent = false;
	conn_connect(c);
}

void rconn_read_head(struct rconn *c)
{
	size_t max = c->r->gw->max_header_size;
	struct http_head h;
	char why[160];
	int rc;

	if (c->coff > 0) { /* what a pipelining client sent after the last request */
		memmove(c->cbuf, c->cbuf + c->coff, c->clen - c->coff);
		c->clen -= c->coff;
		c->coff = 0;
	}
	rc = http_head_parse(&c->reqp, c->cbuf, c->clen, &h);
	if (h.len > max || (!h.len && c->clen >= max)) {
		rconn_reply_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	if (!h.len)
		return;
	if (rc < 0) {
		snprintf(why, sizeof why, "Bad Request: %s", h.why ? h.why : "malformed");
		rconn_reply_error(c, 400, why);
	} else {
		start_exchange(c, &h);
	}
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
	rconn_backend_close(c);
	conn_connect(c);
}

void rconn_backend_failed(struct rconn *c, int err)
{
	bool retry = !c->body_sent && c->idempotent && c->attempts < MAX_ATTEMPTS;

	log_warn("%s: %s %s before answering (%s)%s", c->r->who, c->node->addr.text,
		 c->reused ? "closed a kept-alive connection" : "closed the connection",
		 err ? strerror(err) : "EOF", retry ? ": sending the request again" : "");
	if (!c->reused)
		skip_node(c); /* a fresh connection dropped: try the others first */
	rconn_backend_close(c);
	if (!retry) {
		rconn_reply_error(c, 502, "Bad Gateway: the node closed the connection");
		return;
	}
	c->head_off = 0;
	conn_connect(c);
}

/* Keeps the kept-alive backend connection for this request, or closes it: a request
 * that may not be sent twice gets a fresh connection, which cannot be stale. */
static bool reuse_backend(struct rconn *c, const struct sub_key *k)
{
	if (c->bfd < 0)
		return false;
	if (c->idempotent && node_in_key(c->node, k))
		return true;
	rconn_backend_close(c);
	return false;
}

static void conn_connect(struct rconn *c)
{
	struct sub_key *k = sub_table_lookup(&c->r->table, c->host);
	struct sub_node *n;

	if (!k) {
		rconn_reply_error(c, 404, "No such host here");
		return;
	}
	snprintf(c->key, sizeof c->key, "%s", k->key);
	if (reuse_backend(c, k)) {
		c->reused = true;
		rconn_exchange_begins(c); /* keep-alive to the same node */
		return;
	}
	n = c->attempts < MAX_ATTEMPTS ? sub_pick(&c->r->table, k, ev_now(c->r->loop), c->tried,
						  c->n_tried) : NULL;
	if (!n) {
		rconn_reply_error(c, 502, "Bad Gateway: no node answers");
		return;
	}
	set_node(c, n);
	c->attempts++;
	c->bfd = socket(n->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->bfd < 0) {
		log_errno("%s: socket for %s", c->r->who, n->addr.text);
		rconn_reply_error(c, 502, "Bad Gateway");
		return;
	}
	if (connect(c->bfd, (struct sockaddr *)&n->addr.ss, n->addr.len) == 0) {
		rconn_exchange_begins(c);
	} else if (errno == EINPROGRESS) {
		c->state = R_CONNECT;
		rconn_watch(c, &c->cio, -1, 0);
		rconn_watch(c, &c->bio, c->bfd, EV_WRITE);
		rconn_arm_timer(c, c->r->gw->backend_timeout);
	} else {
		connect_failed(c, errno);
	}
}

/* The non-blocking connect ended: SO_ERROR says how. */
static void connect_done(struct rconn *c)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno; /* not knowing is failing: the node is tried no further */
	if (err)
		connect_failed(c, err);
	else
		rconn_exchange_begins(c);
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
		rconn_close(c);
		return;
	}
	c->c_eof = true; /* a half-close: the answer still goes back */
	rconn_pump(c);
}

/* Progress re-arms the deadline: the backend's while an upload goes on, a tunnel's. */
static void progress(struct rconn *c)
{
	if (c->state == R_TUNNEL)
		rconn_arm_timer(c, c->r->gw->tunnel_timeout);
	else if (c->state == R_EXCHANGE)
		rconn_arm_timer(c, c->r->gw->backend_timeout);
}

static void client_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, cio);

	(void)loop;
	if (c->state == R_LINGER) {
		c->clen = 0; /* dropped */
		ssize_t n = fill(c->cfd, c->cbuf, &c->clen, c->ccap);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			rconn_close(c);
		return;
	}
	if ((revents & EV_READ) && c->clen < c->ccap) {
		ssize_t n = fill(c->cfd, c->cbuf, &c->clen, c->ccap);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			client_ended(c, n < 0);
			return;
		}
		if (n > 0 && (c->state == R_TUNNEL || (c->state == R_EXCHANGE && !c->req_done)))
			progress(c);
		if (c->state == R_HEAD) {
			rconn_read_head(c);
			return;
		}
	}
	if (c->state == R_EXCHANGE || c->state == R_TUNNEL)
		rconn_pump(c);
}

static void backend_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, bio);

	(void)loop;
	if (c->state == R_CONNECT) {
		connect_done(c);
		return;
	}
	if (c->state != R_EXCHANGE && c->state != R_TUNNEL) {
		rconn_backend_close(c); /* an idle kept connection closed (or spoke out of turn) */
		return;
	}
	if (revents & EV_READ) {
		ssize_t n = fill(c->bfd, c->bbuf, &c->blen, sizeof c->bbuf);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			rconn_backend_ended(c, n < 0 ? errno : 0);
			return;
		}
		c->b_any |= n > 0;
		if (n > 0)
			progress(c);
	}
	rconn_pump(c);
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rconn *c = container_of(w, struct rconn, timer);

	(void)loop, (void)revents;
	switch (c->state) {
	case R_HEAD:
		if (c->clen > c->coff)
			rconn_reply_error(c, 408, "Request Timeout");
		else
			rconn_close(c); /* an idle keep-alive connection */
		break;
	case R_CONNECT:
		connect_failed(c, ETIMEDOUT);
		break;
	case R_EXCHANGE:
		log_warn("%s: %s did not answer within %.0fs", c->r->who, c->node->addr.text,
			 c->r->gw->backend_timeout);
		if (c->c_sent)
			rconn_close(c); /* a response that stalled midway */
		else
			rconn_reply_error(c, 504, "Gateway Timeout");
		break;
	case R_TUNNEL:
		log_info("%s: tunnel %s <-> %s idle for %.0fs: closed", c->r->who, c->peer,
			 c->node ? c->node->addr.text : "?", c->r->gw->tunnel_timeout);
		rconn_close(c);
		break;
	case R_LINGER:
		rconn_close(c);
		break;
	}
}

/* ---- a connection's start and end --------------------------------------------------------- */

void rconn_close(struct rconn *c)
{
	struct router *r = c->r;
	struct peer_count *pc = c->peer_count;

	rconn_backend_close(c);
	ev_io_stop(r->loop, &c->cio);
	ev_timer_stop(r->loop, &c->timer);
	close(c->cfd);
	TAILQ_REMOVE(&r->conns, c, link);
	free(c->head);
	free(c);
	router_conn_gone(r, pc);
}

bool rconn_idle(const struct rconn *c)
{
	return c->state == R_HEAD && c->clen == c->coff && c->served > 0;
}

struct rconn *rconn_new(struct router *r, int fd, const char *peer)
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
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	ev_io_init(&c->cio, client_event, fd, EV_READ);
	ev_io_init(&c->bio, backend_event, -1, EV_READ);
	ev_timer_init(&c->timer, timer_fired, 0, 0);
	return c;
}
