/* sup_net.c — loopback networking for tests: listening sockets to hand to a process,
 * probes (accepting? refusing?), and a small HTTP/1.1 client (one-shot GETs and
 * keep-alive connections for pipelining and hand-made requests). Sockets are
 * non-blocking and every wait is a poll() bounded by the caller's deadline. On failure
 * errno says why: ETIMEDOUT, EPROTO (a malformed response), ENODATA (the connection
 * ended before any byte of the response: a keep-alive race), ECONNABORTED (it ended
 * mid-response); the public functions also print it, unless sup_net_quiet() is on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define HEAD_LIMIT (64 * 1024)

struct sup_conn {
	int fd;
	char host[80];  /* the Host header */
	char label[128]; /* for messages: "127.0.0.1:8000" or "unix:/path" */
	char *buf;      /* received and not yet consumed */
	size_t len, cap;
};

static __thread int net_quiet;

void sup_net_quiet(int on)
{
	net_quiet = on;
}

__attribute__((format(printf, 1, 2))) static void net_error(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!net_quiet) {
		va_start(ap, fmt);
		fputs("sup: ", stderr);
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, ": %s\n", strerror(saved));
		va_end(ap);
	}
	errno = saved;
}

static int remaining_ms(long long deadline)
{
	long long left = deadline - sup_now_ms();

	return left > 0 ? (int)left : 0;
}

/* ---- addresses and sockets ------------------------------------------------------- */

static int tcp_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof *in6;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

/* "/path" or "@abstract". */
static int unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(path);

	memset(ss, 0, sizeof *ss);
	if (n == 0 || n >= sizeof un->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@')
		un->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '@'));
	return 0;
}

static int close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0 && close(fd) < 0 && !net_quiet)
		fprintf(stderr, "sup: close(%d): %s\n", fd, strerror(errno));
	errno = saved;
	return -1;
}

/* 1 when fd has events, -1 with ETIMEDOUT at the deadline or on a poll error. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&pfd, 1, remaining_ms(deadline));

		if (n > 0)
			return 1;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* A connected non-blocking socket, or -1 with errno (ECONNREFUSED, ETIMEDOUT ...). */
static int connect_to(const struct sockaddr_storage *ss, socklen_t len, long long deadline)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
	socklen_t elen = sizeof err;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0)
		return close_keep_errno(fd);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return close_keep_errno(fd);
	if (err) {
		errno = err;
		return close_keep_errno(fd);
	}
	return fd;
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (ss->ss_family != AF_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		return close_keep_errno(fd);
	if (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		return close_keep_errno(fd);
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, SOMAXCONN) < 0)
		return close_keep_errno(fd);
	return fd;
}

int sup_listen_tcp(const char *host, int port, int *port_out)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (tcp_addr(host, port, &ss, &len) < 0 || (fd = listen_on(&ss, len)) < 0) {
		net_error("listen on %s:%d", host, port);
		return -1;
	}
	len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		net_error("getsockname");
		return close_keep_errno(fd);
	}
	if (port_out)
		*port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
							  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int sup_listen_unix(const char *path)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (path[0] != '@' && unlink(path) < 0 && errno != ENOENT) {
		net_error("unlink %s", path);
		return -1;
	}
	if (unix_addr(path, &ss, &len) < 0 || (fd = listen_on(&ss, len)) < 0) {
		net_error("listen on unix:%s", path);
		return -1;
	}
	return fd;
}

int sup_free_port(void)
{
	int port = -1, fd = sup_listen_tcp("127.0.0.1", 0, &port);

	if (fd < 0)
		return -1;
	if (close(fd) < 0)
		net_error("close");
	return port;
}

int sup_wait_port(const char *host, int port, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (tcp_addr(host, port, &ss, &len) < 0) {
		net_error("address %s", host);
		return -1;
	}
	while ((fd = connect_to(&ss, len, deadline)) < 0) {
		if (sup_now_ms() >= deadline) {
			net_error("%s:%d not accepting after %d ms", host, port, timeout_ms);
			return -1;
		}
		sup_poll_pause();
	}
	return close(fd);
}

int sup_port_refused(const char *host, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (tcp_addr(host, port, &ss, &len) < 0)
		return -1;
	fd = connect_to(&ss, len, sup_now_ms() + timeout_ms);
	if (fd < 0)
		return errno == ECONNREFUSED ? 0 : -1;
	if (!net_quiet)
		fprintf(stderr, "sup: %s:%d accepted a connection; expected a refusal\n", host, port);
	close_keep_errno(fd);
	return -1;
}

/* ---- connections --------------------------------------------------------------------- */

static struct sup_conn *conn_wrap(int fd, const char *host, const char *label)
{
	struct sup_conn *c = calloc(1, sizeof *c);

	if (!c) {
		close_keep_errno(fd);
		return NULL;
	}
	c->fd = fd;
	snprintf(c->host, sizeof c->host, "%s", host);
	snprintf(c->label, sizeof c->label, "%s", label);
	return c;
}

struct sup_conn *sup_conn_open(const char *host, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	char hosthdr[80];
	socklen_t len;
	int fd;

	snprintf(hosthdr, sizeof hosthdr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	if (tcp_addr(host, port, &ss, &len) < 0 ||
	    (fd = connect_to(&ss, len, sup_now_ms() + timeout_ms)) < 0) {
		net_error("connect to %s", hosthdr);
		return NULL;
	}
	return conn_wrap(fd, hosthdr, hosthdr);
}

struct sup_conn *sup_conn_open_unix(const char *sockpath, int timeout_ms)
{
	struct sockaddr_storage ss;
	char label[128];
	socklen_t len;
	int fd;

	snprintf(label, sizeof label, "unix:%s", sockpath);
	if (unix_addr(sockpath, &ss, &len) < 0 ||
	    (fd = connect_to(&ss, len, sup_now_ms() + timeout_ms)) < 0) {
		net_error("connect to %s", label);
		return NULL;
	}
	return conn_wrap(fd, "localhost", label);
}

void sup_conn_close(struct sup_conn *c)
{
	if (!c)
		return;
	close_keep_errno(c->fd);
	free(c->buf);
	free(c);
}

static int send_all(struct sup_conn *c, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && wait_fd(c->fd, POLLOUT, deadline) > 0)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int sup_conn_send(struct sup_conn *c, const void *buf, size_t len, int timeout_ms)
{
	if (send_all(c, buf, len, sup_now_ms() + timeout_ms) == 0)
		return 0;
	net_error("send to %s", c->label);
	return -1;
}

/* Receives more bytes into c->buf: 1, 0 at EOF, -1 on error or timeout. */
static int recv_more(struct sup_conn *c, long long deadline)
{
	if (c->cap - c->len < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		char *grown = realloc(c->buf, cap);

		if (!grown)
			return -1;
		c->buf = grown;
		c->cap = cap;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);

		if (n >= 0) {
			c->len += (size_t)n;
			return n > 0;
		}
		if (errno != EINTR && (errno != EAGAIN || wait_fd(c->fd, POLLIN, deadline) < 0))
			return -1;
	}
}

static void conn_consume(struct sup_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* ---- responses ------------------------------------------------------------------------ */

static int add_header(struct sup_http *r, const char *line)
{
	const char *colon = strchr(line, ':'), *v;
	struct sup_http_hdr *grown;
	size_t vlen;

	if (!colon)
		return -1;
	grown = realloc(r->hdrs, (size_t)(r->n_hdrs + 1) * sizeof *grown);
	if (!grown)
		return -1;
	r->hdrs = grown;
	v = colon + 1 + strspn(colon + 1, " \t");
	for (vlen = strlen(v); vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'); vlen--)
		;
	r->hdrs[r->n_hdrs].name = strndup(line, (size_t)(colon - line));
	r->hdrs[r->n_hdrs].value = strndup(v, vlen);
	r->n_hdrs++;
	return r->hdrs[r->n_hdrs - 1].name && r->hdrs[r->n_hdrs - 1].value ? 0 : -1;
}

static int parse_head(const char *raw, size_t len, struct sup_http *r)
{
	char *copy = strndup(raw, len), *save = NULL, *line;
	int rc = 0;

	r->head = strndup(raw, len);
	if (!copy || !r->head) {
		free(copy);
		return -1;
	}
	line = strtok_r(copy, "\r\n", &save);
	if (!line || sscanf(line, "HTTP/%*d.%*d %d", &r->status) != 1)
		rc = -1;
	while (rc == 0 && (line = strtok_r(NULL, "\r\n", &save)))
		rc = add_header(r, line);
	free(copy);
	if (rc < 0)
		errno = EPROTO;
	return rc;
}

/* Reads until c->buf holds a whole head; its length in *head_len. */
static int read_head(struct sup_conn *c, long long deadline, size_t *head_len)
{
	const char *end;
	int n;

	while (!(end = memmem(c->buf ? c->buf : "", c->len, "\r\n\r\n", 4))) {
		if (c->len > HEAD_LIMIT) {
			errno = EPROTO;
			return -1;
		}
		n = recv_more(c, deadline);
		if (n < 0 && errno == ECONNRESET && c->len == 0)
			errno = ENODATA;
		if (n == 0)
			errno = c->len ? ECONNABORTED : ENODATA;
		if (n <= 0)
			return -1;
	}
	*head_len = (size_t)(end - c->buf) + 4;
	return 0;
}

/* Body length from Content-Length; SIZE_MAX: read to EOF. */
static int body_length(const struct sup_http *r, size_t *len)
{
	const char *cl = sup_http_header(r, "Content-Length");
	char *end;

	*len = SIZE_MAX;
	if (r->status == 204 || r->status == 304 || r->status / 100 == 1)
		*len = 0;
	if (!cl || *len == 0)
		return 0;
	errno = 0;
	*len = strtoull(cl, &end, 10);
	if (errno || end == cl || *end) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static int read_body(struct sup_conn *c, size_t head_len, struct sup_http *r, long long deadline)
{
	size_t want;
	int n = 1;

	if (body_length(r, &want) < 0)
		return -1;
	while (n > 0 && c->len - head_len < want)
		n = recv_more(c, deadline);
	if (n < 0 || (n == 0 && want != SIZE_MAX)) {
		errno = n == 0 ? ECONNABORTED : errno;
		return -1;
	}
	r->body_len = c->len - head_len < want ? c->len - head_len : want;
	r->body = malloc(r->body_len + 1);
	if (!r->body)
		return -1;
	memcpy(r->body, c->buf + head_len, r->body_len);
	r->body[r->body_len] = '\0';
	conn_consume(c, head_len + r->body_len);
	return 0;
}

static int read_response(struct sup_conn *c, struct sup_http *r, long long deadline)
{
	size_t head_len;

	memset(r, 0, sizeof *r);
	if (read_head(c, deadline, &head_len) < 0 || parse_head(c->buf, head_len, r) < 0 ||
	    read_body(c, head_len, r, deadline) < 0) {
		int saved = errno;

		sup_http_fini(r);
		errno = saved;
		return -1;
	}
	return 0;
}

int sup_conn_read_response(struct sup_conn *c, struct sup_http *out, int timeout_ms)
{
	if (read_response(c, out, sup_now_ms() + timeout_ms) == 0)
		return 0;
	net_error("reading a response from %s", c->label);
	return -1;
}

/* One GET; connection is "keep-alive" or "close". */
static int conn_get(struct sup_conn *c, const char *path, const char *connection,
		    struct sup_http *out, long long deadline)
{
	char req[2048];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: emperor-tests\r\nConnection: %s\r\n\r\n",
			 path, c->host, connection);

	memset(out, 0, sizeof *out);
	if (n < 0 || (size_t)n >= sizeof req) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (send_all(c, req, (size_t)n, deadline) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			errno = ENODATA;
		return -1;
	}
	return read_response(c, out, deadline);
}

int sup_conn_get(struct sup_conn *c, const char *path, struct sup_http *out, int timeout_ms)
{
	if (conn_get(c, path, "keep-alive", out, sup_now_ms() + timeout_ms) == 0)
		return 0;
	net_error("GET %s%s", c->label, path);
	return -1;
}

int sup_conn_wait_closed(struct sup_conn *c, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	int n;

	while ((n = recv_more(c, deadline)) > 0)
		;
	if (n == 0 || errno == ECONNRESET)
		return 0;
	net_error("waiting for %s to close", c->label);
	return -1;
}

int sup_conn_readable(struct sup_conn *c, int timeout_ms)
{
	if (c->len > 0)
		return 1;
	if (wait_fd(c->fd, POLLIN, sup_now_ms() + timeout_ms) > 0)
		return 1;
	return errno == ETIMEDOUT ? 0 : -1;
}

/* ---- one-shot GETs ------------------------------------------------------------------------ */

static int get_close(struct sup_conn *c, const char *path, struct sup_http *out, long long deadline)
{
	int rc;

	if (!c) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	rc = conn_get(c, path, "close", out, deadline);
	if (rc < 0)
		net_error("GET %s%s", c->label, path);
	sup_conn_close(c);
	return rc;
}

int sup_http_get(const char *host, int port, const char *path, struct sup_http *out, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	return get_close(sup_conn_open(host, port, timeout_ms), path, out, deadline);
}

int sup_http_get_unix(const char *sockpath, const char *path, struct sup_http *out, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	return get_close(sup_conn_open_unix(sockpath, timeout_ms), path, out, deadline);
}

const char *sup_http_header(const struct sup_http *r, const char *name)
{
	for (int i = 0; i < r->n_hdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

void sup_http_fini(struct sup_http *r)
{
	for (int i = 0; i < r->n_hdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->hdrs);
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof *r);
}

char *sup_master_status(pid_t master, const char *request)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), len;
	size_t got = 0, cap = 65536;
	char *out = calloc(1, cap), line[64];
	ssize_t n;

	len = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "emperor-vassal/%d", (int)master);
	n = snprintf(line, sizeof line, "%s\n", request);
	if (fd < 0 || !out || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) < 0 ||
	    write(fd, line, (size_t)n) != n) {
		if (fd >= 0)
			close(fd);
		free(out);
		return NULL;
	}
	while (got < cap - 1 && (n = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	return out;
}

double sup_metric(const char *text, const char *series)
{
	size_t len = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, len) == 0 && p[len] == ' ')
			return strtod(p + len + 1, NULL);
	return -1;
}
