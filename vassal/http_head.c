/* http_head.c — the request head a client sent the router, parsed by http-parser
 * and checked as RFC 9112 says a server must (see http_head.h); and the head rewritten
 * for the backend with X-Forwarded-For/-Proto. No socket here. */
#include "http_head.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool http_method_idempotent(unsigned method)
{
	return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS ||
	       method == HTTP_TRACE || method == HTTP_PUT || method == HTTP_DELETE;
}

struct head_parse {            /* p->data while http_head_parse() runs */
	struct http_head *h;
	const char *buf;             /* what is parsed: offsets are into it */
	bool in_host, headers_done;
	int hosts, host_values;      /* Host fields, pieces of their values */
};

static int head_url(http_parser *p, const char *at, size_t len)
{
	struct head_parse *hp = p->data;

	if (!hp->h->target_len)
		hp->h->target_off = (size_t)(at - hp->buf);
	hp->h->target_len += len; /* the pieces are contiguous: one buffer */
	return 0;
}

static int head_field(http_parser *p, const char *at, size_t len)
{
	struct head_parse *hp = p->data;

	hp->in_host = len == 4 && strncasecmp(at, "host", 4) == 0;
	hp->hosts += hp->in_host;
	if (hp->in_host)
		hp->h->host_line_off = (size_t)(at - hp->buf);
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
	.on_url = head_url, .on_header_field = head_field, .on_header_value = head_value,
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

/* obs-fold (RFC 9112 §5.2) and whitespace before the first header (§2.2): a line of
 * the head, after the request line, that starts with a space or a tab. */
static bool has_folded_line(const char *buf, size_t len)
{
	for (const char *nl = memchr(buf, '\n', len); nl && nl + 1 < buf + len;
	     nl = memchr(nl + 1, '\n', (size_t)(buf + len - nl - 1)))
		if (nl[1] == ' ' || nl[1] == '\t')
			return true;
	return false;
}

/* An absolute-form target ("http://host:port/path?q"): its host[:port] into out, and
 * where its origin form ("/path?q") starts in h. 1 when it is one, 0 when not
 * (origin-form "/path"), -1 when it is one without a host. */
static int absolute_host(struct http_head *h, const char *url, size_t len, char *out,
			 size_t outlen)
{
	struct http_parser_url u;
	const char *scheme_end = memchr(url, ':', len);

	if (!scheme_end || len < 3 || url[0] == '/' || (size_t)(scheme_end - url) + 3 > len ||
	    strncmp(scheme_end, "://", 3) != 0)
		return 0;
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)))
		return -1;
	h->absolute = true;
	h->origin_off = h->target_off + h->target_len; /* no path: "/" */
	if (u.field_set & (1 << UF_PATH))
		h->origin_off = h->target_off + u.field_data[UF_PATH].off;
	else if (u.field_set & (1 << UF_QUERY)) /* "http://h?q": "/?q" */
		h->origin_off = h->target_off + u.field_data[UF_QUERY].off - 1;
	const char *host = url + u.field_data[UF_HOST].off;
	int hlen = u.field_data[UF_HOST].len;
	bool v6 = memchr(host, ':', (size_t)hlen) != NULL; /* the parser drops the brackets */
	int n = snprintf(out, outlen, "%s%.*s%s", v6 ? "[" : "", hlen, host, v6 ? "]" : "");
	if (n > 0 && (size_t)n < outlen && (u.field_set & (1 << UF_PORT)))
		n += snprintf(out + n, outlen - (size_t)n, ":%.*s", (int)u.field_data[UF_PORT].len,
			      url + u.field_data[UF_PORT].off);
	if (n < 0 || (size_t)n >= outlen)
		out[0] = '\0'; /* too long: no host, as for a Host header */
	return 1;
}

/* The checks RFC 9112 makes a server's, once the parser accepted the head. */
static int head_check(http_parser *p, const char *buf, struct head_parse *hp)
{
	struct http_head *h = hp->h;
	bool http11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
	int absolute;

	if (hp->hosts > 1 || hp->host_values > 1)
		h->why = "more than one Host header";
	else if (has_folded_line(buf, h->len))
		h->why = "a header line continued on the next (obs-fold) or starting with a space";
	else if (http11 && hp->hosts == 0)
		h->why = "an HTTP/1.1 request without a Host header";
	if (h->why)
		return -1;
	if (hp->hosts) { /* the whole line, its CRLF included: the rewrite may replace it */
		const char *nl = memchr(buf + h->host_line_off, '\n', h->len - h->host_line_off);
		h->host_line_len = (size_t)(nl - buf) + 1 - h->host_line_off;
	} else {
		h->host_line_off = h->len - (buf[h->len - 2] == '\r' ? 2 : 1); /* the empty line */
	}
	absolute = absolute_host(h, buf + h->target_off, h->target_len, h->host, sizeof h->host);
	if (absolute < 0) {
		h->why = "an absolute request target without a host";
		return -1;
	}
	h->head_only = p->method == HTTP_HEAD;
	h->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	h->idempotent = http_method_idempotent(p->method);
	return 0;
}

int http_head_parse(http_parser *p, const char *buf, size_t len, struct http_head *h)
{
	struct head_parse hp = { .h = h, .buf = buf };
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
	 * any header. */
	if (err != HPE_OK && err != HPE_PAUSED) {
		h->why = http_errno_description(err);
		return -1;
	}
	if (!hp.headers_done || n != h->len) {
		h->why = "the head does not end at its empty line";
		return -1;
	}
	return head_check(p, buf, &hp);
}

/* An absolute-form request goes out in origin form with a Host made from its target
 * (RFC 9112 §3.2.2: what a proxy forwarding it must do): not every backend takes the
 * absolute form, and none may see a Host that differs from what routed it. */
static void put_absolute(FILE *f, const struct http_head *h, const char *head, size_t body)
{
	size_t target_end = h->target_off + h->target_len;
	size_t host_end = h->host_line_off + h->host_line_len;

	fwrite(head, 1, h->target_off, f);
	if (h->origin_off >= target_end || head[h->origin_off] != '/')
		fputc('/', f); /* no path: "/", or "/?query" */
	if (h->origin_off < target_end)
		fwrite(head + h->origin_off, 1, target_end - h->origin_off, f);
	fwrite(head + target_end, 1, h->host_line_off - target_end, f);
	fwrite(head + host_end, 1, body > host_end ? body - host_end : 0, f);
	fprintf(f, "Host: %s\r\n", h->host);
}

char *http_head_rewrite(const struct http_head *h, const char *head, const char *peer,
			size_t *out_len)
{
	size_t body = h->len - (head[h->len - 2] == '\r' ? 2 : 1); /* drop the empty line */
	char *out = NULL;
	FILE *f;

	if (strlen(peer) > 64) {
		errno = EINVAL;
		return NULL;
	}
	if (!(f = open_memstream(&out, out_len)))
		return NULL;
	if (h->absolute)
		put_absolute(f, h, head, body);
	else
		fwrite(head, 1, body, f);
	fprintf(f, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n\r\n", peer);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
