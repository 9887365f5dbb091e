/* http_head.h — the request head as the router reads it from a client, apart from any
 * socket (tests/unit/test_router.c tests it, tests/fuzz/fuzz_router_head.c fuzzes it).
 * http_head_parse() finds the end of the head in buf[0..len) and parses it with p
 * (Debian's http-parser), which it initialises and leaves where the head ends (a body
 * is parsed on with it; p->data is NULL). What RFC 9112 says a server must refuse is
 * refused: an HTTP/1.1 request without Host, obs-fold (a header line continued on the
 * next), whitespace before the first header, a second Host or Content-Length, a head
 * the parser would end elsewhere than at its empty line. A request in absolute form
 * ("GET http://host/ HTTP/1.1") is routed by the URI's host, its Host header ignored. */
#ifndef EMPEROR_HTTP_HEAD_H
#define EMPEROR_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

struct http_parser;

struct http_head {
	size_t len;                   /* bytes of the head, its empty line included */
	char host[256];               /* what routes it: the absolute URI's host[:port], else
				       * the Host header's value; "" if absent or too long */
	const char *why;              /* malformed: why, for the 400's body and the log */
	bool head_only;               /* a HEAD request: the answer has no body */
	bool keep_alive;              /* the client keeps the connection (not an upgrade) */
	bool complete;                /* no body: the request ended with its head */
	bool idempotent;              /* may be sent again when a backend said nothing */
	/* where things are in the head, for http_head_rewrite() */
	bool absolute;                /* the target is in absolute form */
	size_t target_off, target_len;/* the request target */
	size_t origin_off;            /* absolute: where its "/path?query" starts (at the
				       * target's end when it has none: "/") */
	size_t host_line_off, host_line_len; /* the Host line (or the empty line, length 0) */
};

/* 0 with h->len 0: no complete head yet; 0: a request, h filled; -1: a malformed one
 * (h->len is still its length, h->why says what is wrong). */
int http_head_parse(struct http_parser *p, const char *buf, size_t len, struct http_head *h);
/* The head h that http_head_parse() accepted in head, for the backend: its empty line
 * replaced by X-Forwarded-For: peer and X-Forwarded-Proto: http; an absolute-form
 * request in origin form, with a Host line made from its target in place of the
 * client's. malloc'd, *out_len bytes; NULL with errno. */
char *http_head_rewrite(const struct http_head *h, const char *head, const char *peer,
			size_t *out_len);
/* RFC 9110 §9.2.2: a request that may be sent again when its first attempt got no
 * answer (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). */
bool http_method_idempotent(unsigned method);

#endif
