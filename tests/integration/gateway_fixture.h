/* gateway_fixture.h — what test_gateway.c and test_router_http.c share: a temp dir
 * where each test writes vassal files and starts their masters (`vassal FILE`, not
 * under an emperor, so that a killed one stays dead, each in its own process group,
 * with a private copy of the binaries), a router vassal and app vassals subscribed to
 * it, clients (HTTP requests, raw byte-exact exchanges, load from two threads), and
 * subscriptions sent by hand. Include after cmocka.h. Helpers are static and may go
 * unused in one of the files. */
#ifndef EMPEROR_GATEWAY_FIXTURE_H
#define EMPEROR_GATEWAY_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/support.h"

/* The subscription datagrams exactly as a vassal sends them (sub_format). */
#include "subscription.h"

#define GW_HELPER static __attribute__((unused))

#define T_MS 10000           /* bound of every wait that should succeed at once */
#define MAX_VASSALS 6
#define PERIOD_MS ((int)(SUB_PERIOD * 1000))

struct vassal {
	char name[32];
	char *cfg, *log, *touch;
	struct sup_proc *p;
	unsigned gen;
};

struct fixture {
	char *dir;
	char *vassal_bin, *hello_bin, *echo_bin;
	char *sock;                  /* dir/router.sock: the subscription server */
	struct vassal v[MAX_VASSALS];
	int n;
};

/* ---- set-up ------------------------------------------------------------------------------ */

GW_HELPER int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = sup_tmpdir();
	assert_non_null(f->dir);
	f->vassal_bin = sup_copy_bin(f->dir, "vassal");
	f->hello_bin = sup_copy_bin(f->dir, "examples/hello-worker");
	f->echo_bin = sup_copy_bin(f->dir, "examples/echo-backend");
	assert_true(f->vassal_bin && f->hello_bin && f->echo_bin);
	f->sock = sup_path(f->dir, "router.sock");
	*state = f;
	return 0;
}

GW_HELPER int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < f->n; i++) {
		if (f->v[i].p && !f->v[i].p->exited)
			sup_kill_group(f->v[i].p, SIGKILL);
		sup_proc_free(f->v[i].p);
		free(f->v[i].cfg), free(f->v[i].log), free(f->v[i].touch);
	}
	sup_wait_no_leftovers(2000); /* after a failure: the next test starts clean */
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", f->dir);
	else
		sup_rmtree(f->dir);
	free(f->dir), free(f->vassal_bin), free(f->hello_bin), free(f->echo_bin), free(f->sock);
	free(f);
	return 0;
}

/* ---- vassals ----------------------------------------------------------------------------- */

/* Writes dir/NAME.yaml (plus a touch-reload file dir/NAME.touch) and starts its master;
 * waits until it reports its `workers` workers ready. */
GW_HELPER struct vassal *start_vassal(struct fixture *f, const char *name, int workers,
				   const char *fmt, ...)
{
	struct vassal *v = &f->v[f->n++];
	char text[4096], file[64], ready[64];
	va_list ap;
	int len;

	assert_true(f->n <= MAX_VASSALS);
	snprintf(v->name, sizeof v->name, "%s", name);
	snprintf(file, sizeof file, "%s.yaml", name);
	v->cfg = sup_path(f->dir, file);
	snprintf(file, sizeof file, "%s.log", name);
	v->log = sup_path(f->dir, file);
	snprintf(file, sizeof file, "%s.touch", name);
	v->touch = sup_path(f->dir, file);
	assert_int_equal(sup_write_file(v->touch, "0\n"), 0);
	va_start(ap, fmt);
	len = vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	assert_true(len > 0 && (size_t)len < sizeof text - 200);
	snprintf(text + len, sizeof text - (size_t)len, "touch-reload: [%s]\n", v->touch);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);

	char *argv[] = { f->vassal_bin, v->cfg, NULL };
	struct sup_spawn_opts o = { .cwd = f->dir, .logpath = v->log, .flags = SUP_SPAWN_NEW_PGROUP };
	v->p = sup_spawn_ex(argv, NULL, &o);
	assert_non_null(v->p);
	v->gen = 1;
	snprintf(ready, sizeof ready, "ready: %d workers, generation 1", workers);
	assert_int_equal(sup_wait_log(v->p, 0, ready, T_MS), 0);
	return v;
}

/* A router vassal: one gateway on port with the subscription server f->sock. */
GW_HELPER struct vassal *start_router(struct fixture *f, int port, const char *more)
{
	struct vassal *r = start_vassal(f, "router", 0,
					"gateways:\n  - http:\n      listen: 127.0.0.1:%d\n"
					"      subscription-server: unix:%s\n%s",
					port, f->sock, more ? more : "");

	assert_int_equal(sup_wait_log(r->p, 0, "gateway 1: routing on", T_MS), 0);
	return r;
}

/* An app vassal: hello-worker x2 on 127.0.0.1:port saying greeting, subscribed to the
 * router under each of keys (a NULL-terminated list). */
GW_HELPER struct vassal *start_app(struct fixture *f, const char *name, int port, const char *greeting,
				const char *const keys[], const char *more)
{
	char subs[1024] = "";
	size_t used = 0;

	for (int i = 0; keys[i]; i++)
		used += (size_t)snprintf(subs + used, sizeof subs - used,
					 "  - server: unix:%s\n    key: %s\n    socket: http\n", f->sock, keys[i]);
	return start_vassal(f, name, 2,
			    "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
			    "workers:\n  count: 2\n  exec: [%s, --greeting, %s]\n  ready: notify\n"
			    "  reload-mercy: 30s\nsubscribe:\n%s%s",
			    port, f->hello_bin, greeting, subs, more ? more : "");
}

/* Waits until the router's log says key -> 127.0.0.1:port was added (after mark). */
GW_HELPER void wait_node(struct vassal *router, size_t mark, const char *key, int port)
{
	char line[160];

	snprintf(line, sizeof line, "node added: %s -> 127.0.0.1:%d ", key, port);
	assert_int_equal(sup_wait_log(router->p, mark, line, T_MS), 0);
}

/* Touches its touch-reload file and waits for the next generation. */
GW_HELPER void reload_vassal(struct vassal *v)
{
	char line[64], content[32];
	size_t mark = sup_log_size(v->p);

	snprintf(content, sizeof content, "%u\n", v->gen);
	assert_int_equal(sup_write_file(v->touch, content), 0);
	snprintf(line, sizeof line, "reload complete: generation %u ready", v->gen + 1);
	assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	v->gen++;
}

GW_HELPER void assert_log_clean(const struct vassal *v)
{
	static const char *const bad[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					   "runtime error", NULL };

	for (int i = 0; bad[i]; i++)
		if (sup_count_file(v->log, 0, bad[i]) > 0) {
			fprintf(stderr, "%s: \"%s\" found\n", v->log, bad[i]);
			sup_print_tail(v->log, 80);
			fail();
		}
}

/* SIGTERM, exit 0, a clean log. */
GW_HELPER void stop_vassal(struct vassal *v)
{
	assert_int_equal(kill(v->p->pid, SIGTERM), 0);
	if (sup_wait_exit(v->p, 3 * T_MS) < 0) {
		sup_print_tail(v->log, 40);
		fail();
	}
	if (!WIFEXITED(v->p->status) || WEXITSTATUS(v->p->status) != 0) {
		fprintf(stderr, "vassal %s: %s, expected exit 0\n", v->name, sup_status_str(v->p->status));
		sup_print_tail(v->log, 40);
		fail();
	}
	assert_log_clean(v);
}

/* Stops every vassal still running, the last started first; nothing may be left. */
GW_HELPER void stop_all(struct fixture *f)
{
	for (int i = f->n - 1; i >= 0; i--)
		if (f->v[i].p && !f->v[i].p->exited)
			stop_vassal(&f->v[i]);
		else if (f->v[i].p)
			assert_log_clean(&f->v[i]);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* ---- clients ----------------------------------------------------------------------------- */

/* Sends req on a new connection to port and reads one response. */
GW_HELPER int request(int port, const char *req, struct sup_http *r)
{
	struct sup_conn *c = sup_conn_open("127.0.0.1", port, T_MS);
	int rc;

	memset(r, 0, sizeof *r);
	if (!c)
		return -1;
	rc = sup_conn_send(c, req, strlen(req), T_MS);
	if (rc == 0)
		rc = sup_conn_read_response(c, r, T_MS);
	sup_conn_close(c);
	return rc;
}

/* GET path with Host: host; the status, and the body in body (if not NULL). */
GW_HELPER int get_host(int port, const char *host, const char *path, char *body, size_t len)
{
	char req[512];
	struct sup_http r;
	int status;

	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
	assert_int_equal(request(port, req, &r), 0);
	status = r.status;
	if (body)
		snprintf(body, len, "%s", r.body ? r.body : "");
	sup_http_fini(&r);
	return status;
}

/* A 200 from host whose body starts with greeting. */
GW_HELPER void expect_greeting(int port, const char *host, const char *greeting)
{
	char body[256];

	assert_int_equal(get_host(port, host, "/", body, sizeof body), 200);
	if (strncmp(body, greeting, strlen(greeting)) != 0 || body[strlen(greeting)] != ' ')
		fail_msg("Host %s: body \"%s\", expected it from \"%s\"", host, body, greeting);
}

/* A raw request on a new connection: the status, and the connection closed after it. */
GW_HELPER void expect_status_close(int port, const char *req, size_t len, int status)
{
	struct sup_conn *c = sup_conn_open("127.0.0.1", port, T_MS);
	struct sup_http r;

	assert_non_null(c);
	assert_int_equal(sup_conn_send(c, req, len, T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	if (r.status != status)
		fail_msg("expected %d, got %d: %s", status, r.status, r.head);
	assert_string_equal(sup_http_header(&r, "Connection"), "close");
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	sup_http_fini(&r);
	sup_conn_close(c);
}

/* Raw connections for byte-exact exchanges (chunked, 100-continue, upgrade). */
GW_HELPER int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t elen = sizeof err;

	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		assert_int_equal(errno, EINPROGRESS);
		assert_int_equal(poll(&pfd, 1, T_MS), 1);
		assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
		assert_int_equal(err, 0);
	}
	return fd;
}

GW_HELPER void print_bytes(const char *label, const char *buf, size_t len)
{
	fprintf(stderr, "%s (%zu bytes): \"", label, len);
	for (size_t i = 0; i < len && i < 400; i++)
		fprintf(stderr, buf[i] == '\r' ? "\\r" : buf[i] == '\n' ? "\\n" : "%c", buf[i]);
	fprintf(stderr, "%s\"\n", len > 400 ? "..." : "");
}

/* Sends out (may be empty) while receiving exactly elen bytes, which must be expect. */
GW_HELPER void raw_transfer(int fd, const char *out, size_t outlen, const char *expect, size_t elen)
{
	char *got = malloc(elen + 1);
	size_t sent = 0, recvd = 0;
	long long deadline = sup_now_ms() + T_MS;

	assert_non_null(got);
	while (sent < outlen || recvd < elen) {
		struct pollfd pfd = { .fd = fd, .events = (short)((sent < outlen ? POLLOUT : 0) |
								  (recvd < elen ? POLLIN : 0)) };
		long long left = deadline - sup_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if ((pfd.revents & POLLOUT) && sent < outlen) {
			ssize_t n = send(fd, out + sent, outlen - sent, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN)
				break;
			sent += n > 0 ? (size_t)n : 0;
		}
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && recvd < elen) {
			ssize_t n = recv(fd, got + recvd, elen - recvd, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
			recvd += n > 0 ? (size_t)n : 0;
		}
	}
	if (sent < outlen || recvd != elen || memcmp(got, expect, elen) != 0) {
		fprintf(stderr, "sent %zu of %zu bytes\n", sent, outlen);
		print_bytes("expected", expect, elen);
		print_bytes("received", got, recvd);
		free(got);
		fail();
	}
	free(got);
}

GW_HELPER void raw_exchange(int fd, const char *out, const char *expect)
{
	raw_transfer(fd, out, strlen(out), expect, strlen(expect));
}

/* 0 when the peer closes (EOF or reset) with nothing more within T_MS. */
GW_HELPER void raw_expect_eof(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char byte;

	assert_int_equal(poll(&pfd, 1, T_MS), 1);
	ssize_t n = recv(fd, &byte, 1, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

/* ---- load -------------------------------------------------------------------------------- */

/* GETs through the router from two threads: a new connection per request, and one
 * keep-alive connection. Their Host is 127.0.0.1:port, so apps subscribe "127.0.0.1". */
struct loads {
	struct sup_load *fresh, *kept;
};

GW_HELPER void loads_start(struct loads *l, int port)
{
	l->fresh = sup_load_start("127.0.0.1", port, "/");
	l->kept = sup_load_start_mode("127.0.0.1", port, "/", SUP_LOAD_KEEPALIVE);
	assert_non_null(l->fresh);
	assert_non_null(l->kept);
	assert_int_equal(sup_load_wait_ok(l->fresh, 50, T_MS), 0);
	assert_int_equal(sup_load_wait_ok(l->kept, 50, T_MS), 0);
}

/* Both loads got n more 200s. */
GW_HELPER void loads_progress(struct loads *l, long n)
{
	struct sup_load_stats a, b;

	sup_load_snapshot(l->fresh, &a);
	sup_load_snapshot(l->kept, &b);
	assert_int_equal(sup_load_wait_ok(l->fresh, a.ok + n, T_MS), 0);
	assert_int_equal(sup_load_wait_ok(l->kept, b.ok + n, T_MS), 0);
}

/* Stops both; returns the failed requests (connect, I/O, non-200), and the distinct
 * worker pids seen in *pids. A keep-alive connection closed by the server between
 * two requests is retried by the client and not a failure (the keep-alive race). */
GW_HELPER long loads_stop(struct loads *l, int *pids)
{
	struct sup_load_stats a, b;

	sup_load_stop(l->fresh, &a);
	sup_load_stop(l->kept, &b);
	sup_load_print("new connection per request", &a);
	sup_load_print("keep-alive", &b);
	assert_true(a.ok > 0 && b.ok > 0);
	if (pids)
		*pids = a.n_pids > b.n_pids ? a.n_pids : b.n_pids;
	return a.non200 + a.connect_errors + a.io_errors + b.non200 + b.connect_errors + b.io_errors;
}

/* ---- subscriptions by hand --------------------------------------------------------------- */

GW_HELPER void send_datagram(const char *path, const char *msg, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof sa.sun_path);
	strcpy(sa.sun_path, path);
	assert_int_equal(sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof sa), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

GW_HELPER void subscribe_by_hand(const char *sock, const char *key, const char *addr)
{
	char msg[512];
	int len = sub_format(msg, sizeof msg, true, key, addr, 1);

	send_datagram(sock, msg, (size_t)len);
}

/* Waits until path holds exactly text. */
GW_HELPER void wait_file_text(const char *path, const char *text)
{
	long long deadline = sup_now_ms() + T_MS;
	char *got = NULL;

	do {
		free(got);
		got = sup_read_file(path);
		if (got && strcmp(got, text) == 0)
			break;
		sup_poll_pause();
	} while (sup_now_ms() < deadline);
	if (!got || strcmp(got, text) != 0)
		fail_msg("%s: \"%.200s\", expected \"%.200s\"", path, got ? got : "(absent)", text);
	free(got);
}

/* Lines of path holding needle. */
GW_HELPER int lines_with(const char *path, const char *needle)
{
	char *text = sup_read_file(path);
	int n = 0;

	for (char *p = text; p && *p;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		n += strstr(p, needle) != NULL;
		p = nl ? nl + 1 : NULL;
	}
	free(text);
	return n;
}

#endif
