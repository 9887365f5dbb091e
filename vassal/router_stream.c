/* router_stream.c — an exchange's bytes (router.h): the rewritten head goes out, then
 * the request body and the response are streamed both ways as they arrive, never
 * buffered whole (one buffer per direction; reading stops while the other side cannot
 * take more). http-parser finds where each message ends, so keep-alive works on both
 * sides, chunked bodies and 100-continue pass through; a request body it refuses (a
 * bad chunk size) is answered 400 if no byte of the answer went out yet. After a 101
 * answer to an upgrade request, the connection is a tunnel: bytes both ways, each
 * end's FIN passed on as a shutdown, until both ends have ended. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "router.h"
#include "util.h"

/* What pump_out() could do. */
enum pump { PUMP_CLIENT_FAILED = -2, PUMP_BACKEND_FAILED = -1, PUMP_BLOCKED = 0, PUMP_DONE = 1 };

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
	if (!c->answered && (p->status_code >= 200 || p->status_code == 101)) {
		c->answered = true;
		router_count(c->r, c->key, p->status_code);
	}
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
const http_parser_settings rconn_resp_settings = {
	.on_headers_complete = on_resp_headers, .on_message_complete = on_resp_complete,
};

/* bfd is connected (or kept alive): the exchange starts with the head going out. */
void rconn_exchange_begins(struct rconn *c)
{
	c->state = R_EXCHANGE;
	c->node->active++;
	c->counted = true;
	http_parser_init(&c->resp, HTTP_RESPONSE);
	c->resp.data = c;
	c->blen = c->boff = c->b_fwd = 0;
	c->resp_started = c->resp_done = c->b_any = c->c_sent = c->b_eof = false;
	rconn_arm_timer(c, c->r->gw->backend_timeout);
	rconn_pump(c);
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
 * -1 when the connection was closed (or answered 400). */
static int feed_request(struct rconn *c)
{
	char why[160];

	if (c->c_fwd || c->coff == c->clen)
		return 0;
	if (c->state == R_TUNNEL) {
		c->c_fwd = c->clen - c->coff;
		return 0;
	}
	if (c->req_done)
		return 0;
	size_t n = http_parser_execute(&c->reqp, &req_settings, c->cbuf + c->coff, c->clen - c->coff);
	enum http_errno err = HTTP_PARSER_ERRNO(&c->reqp);
	if (err == HPE_OK || err == HPE_PAUSED) {
		c->c_fwd = n;
		return 0;
	}
	log_warn("%s: bad request body from %s: %s", c->r->who, c->peer, http_errno_description(err));
	if (c->c_sent || c->resp_started) {
		rconn_close(c); /* the answer is on its way: it cannot become a 400 */
		return -1;
	}
	snprintf(why, sizeof why, "Bad Request: %s", http_errno_description(err));
	rconn_reply_error(c, 400, why);
	return -1;
}

static void tunnel_begins(struct rconn *c)
{
	c->state = R_TUNNEL;
	rconn_arm_timer(c, c->r->gw->tunnel_timeout); /* re-armed by every byte, either way */
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
	size_t n = http_parser_execute(&c->resp, &rconn_resp_settings, c->bbuf + c->boff, c->blen - c->boff);
	if (HTTP_PARSER_ERRNO(&c->resp) != HPE_OK && HTTP_PARSER_ERRNO(&c->resp) != HPE_PAUSED) {
		log_warn("%s: bad response from %s: %s", c->r->who, c->node->addr.text,
			 http_errno_description(HTTP_PARSER_ERRNO(&c->resp)));
		if (c->c_sent)
			rconn_close(c);
		else
			rconn_reply_error(c, 502, "Bad Gateway: bad response");
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

	rconn_uncount(c);
	c->served++;
	if (!keepalive || c->boff != c->blen || c->b_eof)
		rconn_backend_close(c);
	if (!c->client_keepalive || !keepalive || c->r->stopping || c->c_eof) {
		rconn_linger(c);
		return;
	}
	c->state = R_HEAD;
	c->answered = false; /* the next head's refusal (400, 408, 431) is counted */
	c->key[0] = '\0';
	rconn_arm_timer(c, c->r->gw->header_timeout);
	rconn_watch(c, &c->bio, c->bfd, EV_READ); /* a kept backend connection: notice its close */
	rconn_watch(c, &c->cio, c->cfd, EV_READ);
	rconn_read_head(c);
}

/* Passes a FIN on; a peer that has reset meanwhile (ENOTCONN) is no news. */
static void pass_fin(struct rconn *c, int fd, bool *shut)
{
	if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
		log_errno("%s: shutdown in a tunnel of %s", c->r->who, c->peer);
	*shut = true;
}

/* A tunnel passes each end's FIN on once what came before it has gone; it is over
 * when both have. Returns -1 when it closed the connection. */
static int tunnel_ends(struct rconn *c)
{
	if (c->c_eof && !c->b_shut && c->c_fwd == 0 && c->coff == c->clen)
		pass_fin(c, c->bfd, &c->b_shut);
	if (c->b_eof && !c->c_shut && c->b_fwd == 0 && c->boff == c->blen)
		pass_fin(c, c->cfd, &c->c_shut);
	if (c->b_shut && c->c_shut) {
		rconn_close(c);
		return -1;
	}
	return 0;
}

static void pump_failed(struct rconn *c, enum pump failure)
{
	if (failure == PUMP_BACKEND_FAILED && c->state == R_EXCHANGE && !c->b_any) {
		rconn_backend_failed(c, errno);
		return;
	}
	rconn_close(c);
}

void rconn_pump(struct rconn *c)
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
	rconn_watch(c, &c->cio, c->cfd, (want_c ? EV_READ : 0) | (c->b_fwd ? EV_WRITE : 0));
	rconn_watch(c, &c->bio, c->bfd, (want_b ? EV_READ : 0) |
					(c->c_fwd || c->head_off < c->head_len ? EV_WRITE : 0));
}

void rconn_backend_ended(struct rconn *c, int err)
{
	if (c->state == R_EXCHANGE && !c->b_any) {
		rconn_backend_failed(c, err);
		return;
	}
	c->b_eof = true;
	if (c->state == R_EXCHANGE && !c->resp_done) { /* a body that ends at EOF, or cut */
		http_parser_execute(&c->resp, &rconn_resp_settings, NULL, 0);
		if (!c->resp_done) {
			log_warn("%s: %s closed in the middle of a response", c->r->who,
				 c->node->addr.text);
			rconn_close(c);
			return;
		}
	}
	rconn_pump(c);
}
