/* control_http.c — the --metrics listener, HTTP/1.1 parsed by http-parser, read-only:
 * GET and HEAD only, three routes: /metrics (Prometheus scrapes the same text as
 * `emperorctl metrics`), / (the status page) and /status.json (its data; both in
 * control_page.c); any other path is 404. One request per connection: the whole
 * request is read (answering with part of it unread would reset the connection under
 * the client), then the answer, then the close. The clients themselves, their caps
 * and deadlines are control.c's. */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control_int.h"
#include "emperor.h"
#include "log.h"
#include "parse.h"

#define HTTP_HEAD_MAX 8192 /* a longer request head is refused (400) */
#define HTTP_URL_MAX 1024  /* a longer request target is 414 */

struct ctl_http {
	http_parser parser;
	int status;         /* of the answer: 200, or the error the request earned */
	bool complete;      /* the whole request is in */
	bool head_only;     /* HEAD: no body in the answer */
	const char *type;   /* Content-Type of a 200 */
	bool page;          /* the page's own headers (no caching, no framing, CSP) */
	char url[HTTP_URL_MAX];
	size_t url_len;
};

static const char prom_type[] = "text/plain; version=0.0.4; charset=utf-8";

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct ctl_http *h = p->data;

	if (h->url_len + len >= sizeof h->url) {
		h->status = 414;
		return 0;
	}
	memcpy(h->url + h->url_len, at, len);
	h->url_len += len;
	h->url[h->url_len] = '\0';
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct ctl_http *h = p->data;

	h->head_only = p->method == HTTP_HEAD;
	if (p->method != HTTP_GET && p->method != HTTP_HEAD)
		h->status = 405;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct ctl_http *h = p->data;

	h->complete = true;
	http_parser_pause(p, 1); /* one request per connection: what follows is ignored */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

int ctl_http_init(struct client *cl)
{
	if (!(cl->http = calloc(1, sizeof *cl->http)))
		return -1;
	http_parser_init(&cl->http->parser, HTTP_REQUEST);
	cl->http->parser.data = cl->http;
	cl->http->status = 200;
	cl->http->type = prom_type;
	return 0;
}

void ctl_http_free(struct client *cl)
{
	free(cl->http);
	cl->http = NULL;
}

bool ctl_http_read(struct client *cl, const char *buf, size_t n)
{
	struct ctl_http *h = cl->http;
	enum http_errno err;

	http_parser_execute(&h->parser, &settings, buf, n);
	err = HTTP_PARSER_ERRNO(&h->parser);
	if (err != HPE_OK && err != HPE_PAUSED) {
		h->status = 400;
		return true;
	}
	return h->complete;
}

void ctl_http_set_type(struct client *cl, const char *content_type)
{
	cl->http->type = content_type;
}

void ctl_http_serve(struct client *cl)
{
	struct ctl_http *h = cl->http;
	char *query = strchr(h->url, '?');
	size_t len;
	const char *page;

	if (query)
		*query++ = '\0';
	if (h->status == 200 && strcmp(h->url, "/metrics") == 0) {
		ctl_cmd_metrics(cl);
	} else if (h->status == 200 && strcmp(h->url, "/status.json") == 0) {
		ctl_page_status(cl, query);
	} else if (h->status == 200 && (strcmp(h->url, "/") == 0 || strcmp(h->url, "/index.html") == 0)) {
		page = ctl_page_html(&len);
		h->type = "text/html; charset=utf-8";
		h->page = true;
		strbuf_append(&cl->out, page, len);
		ctl_answer(cl, true, NULL);
	} else {
		if (h->status == 200)
			h->status = 404;
		strbuf_printf(&cl->out, "%s\n", reason(h->status));
		ctl_answer(cl, false, NULL);
	}
}

void ctl_http_head(struct client *cl, bool ok, size_t body_len, struct strbuf *head)
{
	struct ctl_http *h = cl->http;
	int status = ok ? 200 : h->status != 200 ? h->status : 500;

	strbuf_printf(head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s"
		      "Connection: close\r\n\r\n", status, reason(status),
		      ok ? h->type : "text/plain; charset=utf-8", body_len,
		      status == 405 ? "Allow: GET, HEAD\r\n" : "",
		      h->page ? "X-Frame-Options: DENY\r\nContent-Security-Policy: default-src 'none'; "
				"script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
				"img-src 'self'; frame-ancestors 'none'\r\n" : "");
	if (h->head_only) { /* the same head, no body */
		strbuf_free(&cl->out);
		strbuf_free(&cl->notes);
	}
}

void ctl_http_busy(const char *why, char *answer, size_t size)
{
	snprintf(answer, size, "HTTP/1.1 503 %s\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s\n",
		 reason(503), strlen(why) + 1, why);
}

/* ---- the listener ------------------------------------------------------------------ */

/* A bare port or ":PORT" is loopback: serving other hosts is asked for by address. */
static int bind_metrics(const char *given, char *text, size_t len)
{
	struct cfg_addr addr;
	const char *why = NULL;
	int one = 1, fd;

	if (given[0] == ':' || (given[0] && strspn(given, "0123456789") == strlen(given)))
		snprintf(text, len, "127.0.0.1:%s", given + (given[0] == ':'));
	else
		snprintf(text, len, "%s", given);
	if (parse_addr(text, &addr, &why) < 0) {
		log_warn("--metrics %s: %s", text, why);
		return -1;
	}
	fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&addr.ss, addr.len) < 0 || listen(fd, 64) < 0) {
		log_errno("--metrics %s", text);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void http_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	ctl_accept(container_of(w, struct control, http_io), w->fd, true);
}

int ctl_http_open(struct control *ctl, const char *addr)
{
	char text[300];

	if ((ctl->http_fd = bind_metrics(addr, text, sizeof text)) < 0)
		return -1;
	http_parser_set_max_header_size(HTTP_HEAD_MAX);
	ev_io_init(&ctl->http_io, http_ready, ctl->http_fd, EV_READ);
	ev_io_start(ctl->e->loop, &ctl->http_io);
	log_info("status page on http://%s/ (metrics at /metrics)", text);
	return 0;
}

void ctl_http_close(struct control *ctl)
{
	if (ctl->http_fd < 0)
		return;
	ev_io_stop(ctl->e->loop, &ctl->http_io);
	close(ctl->http_fd);
	ctl->http_fd = -1;
}
