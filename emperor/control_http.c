/* control_http.c — the --metrics listener: Prometheus scrapes the same text as
 * `emperorctl metrics`, over HTTP/1.1 parsed by http-parser. Any path answers (point
 * Prometheus at /metrics); GET and HEAD only. One request per connection: the whole
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

struct ctl_http {
	http_parser parser;
	int status;         /* of the answer: 200, or the error the request earned */
	bool complete;      /* the whole request is in */
	bool head_only;     /* HEAD: no body in the answer */
};

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 405: return "Method Not Allowed";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
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

void ctl_http_serve(struct client *cl)
{
	if (cl->http->status != 200) {
		strbuf_printf(&cl->out, "%s\n", reason(cl->http->status));
		ctl_answer(cl, false, NULL);
		return;
	}
	ctl_cmd_metrics(cl);
}

void ctl_http_head(struct client *cl, bool ok, size_t body_len, struct strbuf *head)
{
	struct ctl_http *h = cl->http;
	int status = ok ? 200 : h->status != 200 ? h->status : 500;

	strbuf_printf(head, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		      "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status, reason(status),
		      body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
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

static int bind_metrics(const char *text)
{
	struct cfg_addr addr;
	const char *why = NULL;
	int one = 1, fd;

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
	if ((ctl->http_fd = bind_metrics(addr)) < 0)
		return -1;
	http_parser_set_max_header_size(HTTP_HEAD_MAX);
	ev_io_init(&ctl->http_io, http_ready, ctl->http_fd, EV_READ);
	ev_io_start(ctl->e->loop, &ctl->http_io);
	log_info("metrics on http://%s/metrics", addr);
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
