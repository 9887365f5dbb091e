/* test_gateway.c — the HTTP router (gateways:) and subscriptions (subscribe:) run for
 * real: vassal masters started on files in a temp dir, the reference worker and the
 * echo backend behind a router vassal, clients on loopback. Routing by Host (exact,
 * unknown, a `to:`-only gateway), graceful reloads of an app and of the router under
 * load with no failed request, a SIGKILLed vassal skipped then expired, the router's
 * own answers (400, 431, 408, 504, 502), keep-alive, chunked bodies, 100-continue and
 * an upgrade tunnelled, and who may subscribe.
 *
 * Each vassal is a `vassal FILE` master of its own (not under an emperor, so that a
 * killed one stays dead) in its own process group, with a private copy of the binaries
 * (a rebuild of the shared build directory meanwhile changes nothing here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
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

static int setup(void **state)
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

static int teardown(void **state)
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
static struct vassal *start_vassal(struct fixture *f, const char *name, int workers,
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
static struct vassal *start_router(struct fixture *f, int port, const char *more)
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
static struct vassal *start_app(struct fixture *f, const char *name, int port, const char *greeting,
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
static void wait_node(struct vassal *router, size_t mark, const char *key, int port)
{
	char line[160];

	snprintf(line, sizeof line, "node added: %s -> 127.0.0.1:%d ", key, port);
	assert_int_equal(sup_wait_log(router->p, mark, line, T_MS), 0);
}

/* Touches its touch-reload file and waits for the next generation. */
static void reload_vassal(struct vassal *v)
{
	char line[64], content[32];
	size_t mark = sup_log_size(v->p);

	snprintf(content, sizeof content, "%u\n", v->gen);
	assert_int_equal(sup_write_file(v->touch, content), 0);
	snprintf(line, sizeof line, "reload complete: generation %u ready", v->gen + 1);
	assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	v->gen++;
}

static void assert_log_clean(const struct vassal *v)
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
static void stop_vassal(struct vassal *v)
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
static void stop_all(struct fixture *f)
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
static int request(int port, const char *req, struct sup_http *r)
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
static int get_host(int port, const char *host, const char *path, char *body, size_t len)
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
static void expect_greeting(int port, const char *host, const char *greeting)
{
	char body[256];

	assert_int_equal(get_host(port, host, "/", body, sizeof body), 200);
	if (strncmp(body, greeting, strlen(greeting)) != 0 || body[strlen(greeting)] != ' ')
		fail_msg("Host %s: body \"%s\", expected it from \"%s\"", host, body, greeting);
}

/* A raw request on a new connection: the status, and the connection closed after it. */
static void expect_status_close(int port, const char *req, size_t len, int status)
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
static int raw_connect(int port)
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

static void print_bytes(const char *label, const char *buf, size_t len)
{
	fprintf(stderr, "%s (%zu bytes): \"", label, len);
	for (size_t i = 0; i < len && i < 400; i++)
		fprintf(stderr, buf[i] == '\r' ? "\\r" : buf[i] == '\n' ? "\\n" : "%c", buf[i]);
	fprintf(stderr, "%s\"\n", len > 400 ? "..." : "");
}

/* Sends out (may be empty) while receiving exactly elen bytes, which must be expect. */
static void raw_transfer(int fd, const char *out, size_t outlen, const char *expect, size_t elen)
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

static void raw_exchange(int fd, const char *out, const char *expect)
{
	raw_transfer(fd, out, strlen(out), expect, strlen(expect));
}

/* 0 when the peer closes (EOF or reset) with nothing more within T_MS. */
static void raw_expect_eof(int fd)
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

static void loads_start(struct loads *l, int port)
{
	l->fresh = sup_load_start("127.0.0.1", port, "/");
	l->kept = sup_load_start_mode("127.0.0.1", port, "/", SUP_LOAD_KEEPALIVE);
	assert_non_null(l->fresh);
	assert_non_null(l->kept);
	assert_int_equal(sup_load_wait_ok(l->fresh, 50, T_MS), 0);
	assert_int_equal(sup_load_wait_ok(l->kept, 50, T_MS), 0);
}

/* Both loads got n more 200s. */
static void loads_progress(struct loads *l, long n)
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
static long loads_stop(struct loads *l, int *pids)
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

static void send_datagram(const char *path, const char *msg, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof sa.sun_path);
	strcpy(sa.sun_path, path);
	assert_int_equal(sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof sa), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void subscribe_by_hand(const char *sock, const char *key, const char *addr)
{
	char msg[512];
	int len = sub_format(msg, sizeof msg, true, key, addr, 1);

	send_datagram(sock, msg, (size_t)len);
}

/* Waits until path holds exactly text. */
static void wait_file_text(const char *path, const char *text)
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
static int lines_with(const char *path, const char *needle)
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

/* ---- the tests --------------------------------------------------------------------------- */

static void test_routes_by_host(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), pb = sup_free_port();
	int pt = sup_free_port(), pg = sup_free_port();
	struct vassal *r = start_router(f, rport, NULL);
	const char *const ka[] = { "a.localhost", NULL }, *const kb[] = { "B.Localhost", NULL };
	char body[256];

	start_app(f, "alpha", pa, "alpha", ka, NULL);
	start_app(f, "bravo", pb, "bravo", kb, NULL);
	wait_node(r, 0, "a.localhost", pa);
	wait_node(r, 0, "b.localhost", pb); /* keys are lowercased */

	for (int i = 0; i < 4; i++) {
		expect_greeting(rport, "a.localhost", "alpha");
		expect_greeting(rport, "b.localhost", "bravo");
	}
	char hostport[64];
	snprintf(hostport, sizeof hostport, "A.LOCALHOST:%d", rport);
	expect_greeting(rport, hostport, "alpha");
	assert_int_equal(get_host(rport, "c.localhost", "/", body, sizeof body), 404);
	assert_int_equal(get_host(rport, "localhost", "/", body, sizeof body), 404);
	assert_int_equal(get_host(rport, "x.a.localhost", "/", body, sizeof body), 404);
	static const char no_host[] = "GET / HTTP/1.0\r\n\r\n";
	expect_status_close(rport, no_host, sizeof no_host - 1, 404);
	expect_greeting(rport, "a.localhost", "alpha");

	/* A gateway with `to:` only: every host goes to the vassal's own socket. */
	start_vassal(f, "tango", 1,
		     "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		     "workers:\n  count: 1\n  exec: [%s, --greeting, tango]\n  ready: notify\n"
		     "gateways:\n  - http:\n      listen: 127.0.0.1:%d\n      to: [http]\n",
		     pt, f->hello_bin, pg);
	assert_int_equal(sup_wait_port("127.0.0.1", pg, T_MS), 0);
	expect_greeting(pg, "anything.example", "tango");
	expect_greeting(pg, "a.localhost", "tango");
	expect_status_close(pg, no_host, sizeof no_host - 1, 200);

	stop_all(f);
	assert_int_equal(access(f->sock, F_OK), -1); /* the stopped router removed its socket */
}

/* Ten graceful reloads of an app through the router, subscriptions kept. */
static void test_app_reloads_under_load(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), pids;
	struct vassal *r = start_router(f, rport, "      backend-timeout: 10s\n");
	const char *const keys[] = { "127.0.0.1", NULL };
	struct vassal *a = start_app(f, "app", pa, "alpha", keys, "unsubscribe-on-reload: false\n");
	struct loads l;

	wait_node(r, 0, "127.0.0.1", pa);
	loads_start(&l, rport);
	for (int i = 0; i < 10; i++) {
		reload_vassal(a);
		loads_progress(&l, 20);
	}
	long failed = loads_stop(&l, &pids);
	assert_int_equal(failed, 0);
	assert_true(pids >= 11); /* the workers of every generation answered */
	assert_int_equal(sup_count_log(r->p, 0, "node removed"), 0);
	stop_all(f);
}

/* A reload whose teardown lasts longer than the expiry (a worker finishing a long
 * request) keeps the node: the vassal goes on announcing itself meanwhile. */
static void test_long_reload_stays_subscribed(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port();
	struct vassal *r = start_router(f, rport, "      backend-timeout: 30s\n");
	const char *const keys[] = { "a.localhost", NULL };
	struct vassal *a = start_app(f, "app", pa, "alpha", keys, "unsubscribe-on-reload: false\n");
	static const char slow_req[] = "GET /slow?ms=17000 HTTP/1.1\r\nHost: a.localhost\r\n\r\n";
	struct sup_conn *slow = sup_conn_open("127.0.0.1", rport, T_MS);
	struct sup_http resp;
	char line[64];

	wait_node(r, 0, "a.localhost", pa);
	assert_non_null(slow);
	assert_int_equal(sup_conn_send(slow, slow_req, sizeof slow_req - 1, T_MS), 0);
	assert_int_equal(sup_wait_log(a->p, 0, "slow request: answering in 17000 ms", T_MS), 0);
	size_t mark = sup_log_size(r->p), a_mark = sup_log_size(a->p);
	assert_int_equal(sup_write_file(a->touch, "1\n"), 0);
	snprintf(line, sizeof line, "reload complete: generation 2 ready");
	assert_int_equal(sup_wait_log(a->p, a_mark, line, 17000 + T_MS), 0);
	assert_int_equal(sup_count_log(r->p, mark, "node expired"), 0);
	assert_int_equal(sup_conn_read_response(slow, &resp, T_MS), 0);
	assert_int_equal(resp.status, 200);
	sup_http_fini(&resp);
	sup_conn_close(slow);
	expect_greeting(rport, "a.localhost", "alpha");
	assert_int_equal(sup_count_log(r->p, mark, "node expired"), 0);
	stop_all(f);
}

/* With unsubscribe-on-reload, a reloading vassal leaves the key; its twin serves. */
static void test_unsubscribe_on_reload_twin_serves(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), p1 = sup_free_port(), p2 = sup_free_port(), pids;
	struct vassal *r = start_router(f, rport, "      backend-timeout: 10s\n");
	const char *const keys[] = { "127.0.0.1", NULL };
	struct vassal *a1 = start_app(f, "one", p1, "one", keys, "unsubscribe-on-reload: true\n");
	struct loads l;
	char line[128];

	start_app(f, "two", p2, "two", keys, "unsubscribe-on-reload: true\n");
	wait_node(r, 0, "127.0.0.1", p1);
	wait_node(r, 0, "127.0.0.1", p2);
	loads_start(&l, rport);
	for (int i = 0; i < 10; i++) {
		size_t mark = sup_log_size(r->p), a1_mark = sup_log_size(a1->p);
		struct sup_conn *slow[4];
		/* Requests in flight to the vassal while it unsubscribes: they finish. */
		for (int k = 0; k < 4; k++) {
			static const char req[] = "GET /slow?ms=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
			slow[k] = sup_conn_open("127.0.0.1", rport, T_MS);
			assert_non_null(slow[k]);
			assert_int_equal(sup_conn_send(slow[k], req, sizeof req - 1, T_MS), 0);
		}
		assert_int_equal(sup_wait_log(a1->p, a1_mark, "slow request: answering in 300 ms", T_MS), 0);
		reload_vassal(a1);
		for (int k = 0; k < 4; k++) {
			struct sup_http resp;
			assert_int_equal(sup_conn_read_response(slow[k], &resp, T_MS), 0);
			assert_int_equal(resp.status, 200);
			sup_http_fini(&resp);
			sup_conn_close(slow[k]);
		}
		wait_node(r, mark, "127.0.0.1", p1); /* back after its reload */
		loads_progress(&l, 20);
	}
	long failed = loads_stop(&l, &pids);
	assert_int_equal(failed, 0);
	snprintf(line, sizeof line, "node removed: 127.0.0.1 -> 127.0.0.1:%d (unsubscribed)", p1);
	assert_int_equal(sup_count_log(r->p, 0, line), 10);
	stop_all(f);
}

/* Five graceful reloads of the router vassal itself: its sockets survive and the new
 * router restores its nodes from router.sock.nodes (the app announces itself only
 * every SUB_PERIOD: without the file, requests would get 404 meanwhile). */
static void test_router_reloads_under_load(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), pids;
	struct vassal *r = start_router(f, rport, "      backend-timeout: 10s\n");
	const char *const keys[] = { "127.0.0.1", NULL };
	char *nodes = sup_path(f->dir, "router.sock.nodes"), line[128];
	struct loads l;

	start_app(f, "app", pa, "alpha", keys, NULL);
	wait_node(r, 0, "127.0.0.1", pa);
	snprintf(line, sizeof line, "127.0.0.1 127.0.0.1:%d 1\n", pa);
	wait_file_text(nodes, line); /* written within SUB_SAVE_INTERVAL */
	loads_start(&l, rport);
	for (int i = 0; i < 5; i++) {
		size_t mark = sup_log_size(r->p);
		reload_vassal(r);
		assert_int_equal(sup_wait_log(r->p, mark, "gateway 1: 1 nodes restored from", T_MS), 0);
		loads_progress(&l, 100);
	}
	long failed = loads_stop(&l, &pids);
	assert_int_equal(failed, 0);
	assert_int_equal(sup_count_log(r->p, 0, "nodes restored from"), 5);
	free(nodes);
	stop_all(f);
}

/* A vassal SIGKILLed with its workers: refused at once and skipped, expired within
 * SUB_EXPIRE_PERIODS periods; its twin takes the traffic. */
static void test_killed_vassal_skipped_then_expired(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), p1 = sup_free_port(), p2 = sup_free_port(), pids;
	struct vassal *r = start_router(f, rport, "      backend-timeout: 10s\n");
	const char *const keys[] = { "127.0.0.1", NULL };
	struct vassal *a1 = start_app(f, "one", p1, "one", keys, NULL);
	struct loads l;
	char line[160];

	start_app(f, "two", p2, "two", keys, NULL);
	wait_node(r, 0, "127.0.0.1", p1);
	wait_node(r, 0, "127.0.0.1", p2);
	loads_start(&l, rport);

	size_t mark = sup_log_size(r->p);
	long long killed_at = sup_now_ms();
	assert_int_equal(sup_kill_group(a1->p, SIGKILL), 0); /* workers follow: PDEATHSIG */
	assert_int_equal(sup_wait_exit(a1->p, T_MS), 0);
	assert_int_equal(sup_wait_port("127.0.0.1", p2, T_MS), 0);
	long long deadline = sup_now_ms() + T_MS;
	while (sup_port_refused("127.0.0.1", p1, T_MS) != 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	loads_progress(&l, 50);
	snprintf(line, sizeof line, "node 127.0.0.1:%d refused (Connection refused)", p1);
	assert_int_equal(sup_wait_log(r->p, mark, line, T_MS), 0);
	expect_greeting(rport, "127.0.0.1", "two");

	/* Its last announcement came at most one period before the kill. */
	snprintf(line, sizeof line, "node expired: 127.0.0.1 -> 127.0.0.1:%d", p1);
	assert_int_equal(sup_wait_log(r->p, mark, line, SUB_EXPIRE_PERIODS * PERIOD_MS + T_MS), 0);
	long long took = sup_now_ms() - killed_at;
	fprintf(stderr, "expired %lld ms after the kill\n", took);
	assert_true(took >= (SUB_EXPIRE_PERIODS - 1) * PERIOD_MS - 500);
	assert_true(took <= SUB_EXPIRE_PERIODS * PERIOD_MS + 2000);
	loads_progress(&l, 20);
	long failed = loads_stop(&l, &pids);
	assert_true(failed <= 2); /* at most the request each load had in flight at the kill */
	stop_all(f);
}

static void test_router_error_answers(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), silent_port, dead_port = sup_free_port();
	struct vassal *r = start_router(f, rport, "      header-timeout: 1s\n      backend-timeout: 1s\n"
						 "      max-header-size: 1K\n");
	const char *const keys[] = { "a.localhost", NULL };
	int silent = sup_listen_tcp("127.0.0.1", 0, &silent_port);
	char addr[64], big[4096];
	struct sup_http resp;

	assert_true(silent >= 0);
	start_app(f, "alpha", pa, "alpha", keys, NULL);
	wait_node(r, 0, "a.localhost", pa);

	/* Malformed. */
	expect_status_close(rport, "garbage\r\n\r\n", 11, 400);
	expect_greeting(rport, "a.localhost", "alpha");
	static const char bad_cl[] = "GET / HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: x\r\n\r\n";
	expect_status_close(rport, bad_cl, sizeof bad_cl - 1, 400);
	expect_greeting(rport, "a.localhost", "alpha");

	/* Heads over max-header-size (1K): complete in one piece, and never ending. */
	int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a.localhost\r\nX-Big: ");
	memset(big + n, 'b', 2000);
	memcpy(big + n + 2000, "\r\n\r\n", 4);
	expect_status_close(rport, big, (size_t)n + 2004, 431);
	expect_greeting(rport, "a.localhost", "alpha");
	memset(big + n, 'b', sizeof big - (size_t)n);
	expect_status_close(rport, big, sizeof big, 431);
	expect_greeting(rport, "a.localhost", "alpha");

	/* Half a head, then nothing: 408 after header-timeout, and closed. */
	long long t0 = sup_now_ms();
	struct sup_conn *c = sup_conn_open("127.0.0.1", rport, T_MS);
	assert_non_null(c);
	assert_int_equal(sup_conn_send(c, "GET / HTTP/1.1\r\nHost: a.loc", 27, T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &resp, T_MS), 0);
	assert_int_equal(resp.status, 408);
	assert_true(sup_now_ms() - t0 >= 900);
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	sup_http_fini(&resp);
	sup_conn_close(c);
	expect_greeting(rport, "a.localhost", "alpha");

	/* A node that accepts and never answers: 504 after backend-timeout. */
	size_t mark = sup_log_size(r->p);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", silent_port);
	subscribe_by_hand(f->sock, "slow.localhost", addr);
	wait_node(r, mark, "slow.localhost", silent_port);
	t0 = sup_now_ms();
	assert_int_equal(get_host(rport, "slow.localhost", "/", NULL, 0), 504);
	assert_true(sup_now_ms() - t0 >= 900);
	int accepted = accept4(silent, NULL, NULL, SOCK_CLOEXEC); /* the router did connect */
	assert_true(accepted >= 0);
	char got[1024] = "";
	assert_true(recv(accepted, got, sizeof got - 1, MSG_DONTWAIT) > 0);
	assert_non_null(strstr(got, "GET / HTTP/1.1\r\nHost: slow.localhost\r\n"));
	assert_non_null(strstr(got, "X-Forwarded-For: 127.0.0.1\r\n"));
	assert_int_equal(close(accepted), 0);
	expect_greeting(rport, "a.localhost", "alpha");

	/* Every node down (nothing listens there): 502, and the refusal logged. */
	mark = sup_log_size(r->p);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", dead_port);
	subscribe_by_hand(f->sock, "down.localhost", addr);
	wait_node(r, mark, "down.localhost", dead_port);
	assert_int_equal(get_host(rport, "down.localhost", "/", NULL, 0), 502);
	assert_int_equal(get_host(rport, "down.localhost", "/", NULL, 0), 502); /* skipped now */
	snprintf(addr, sizeof addr, "node 127.0.0.1:%d refused", dead_port);
	assert_int_equal(sup_count_log(r->p, mark, addr), 1);
	expect_greeting(rport, "a.localhost", "alpha");

	assert_int_equal(close(silent), 0);
	stop_all(f);
}

static void test_keepalive_chunked_continue_upgrade(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pe = sup_free_port(), fd;
	struct vassal *r = start_router(f, rport, NULL);

	start_vassal(f, "echo", 1,
		     "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		     "workers:\n  count: 1\n  exec: [%s]\n  ready: notify\n"
		     "subscribe:\n  - server: unix:%s\n    key: e.localhost\n    socket: http\n",
		     pe, f->echo_bin, f->sock);
	wait_node(r, 0, "e.localhost", pe);

	/* Keep-alive: requests one after the other, then three pipelined, in order. */
	fd = raw_connect(rport);
	static const char *const paths[] = { "/one", "/two", "/three" };
	char req[256], want[256], all_req[768] = "", all_want[768] = "";
	for (int i = 0; i < 3; i++) {
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: e.localhost\r\n\r\n", paths[i]);
		snprintf(want, sizeof want, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\necho GET %s\n",
			 strlen(paths[i]) + 10, paths[i]);
		raw_exchange(fd, req, want);
		strcat(all_req, req);
		strcat(all_want, want);
	}
	raw_exchange(fd, all_req, all_want);

	/* A chunked request streamed: each chunk comes back before the next is sent,
	 * framing, extension and trailer byte for byte; then the connection goes on. */
	raw_exchange(fd, "POST /c HTTP/1.1\r\nHost: e.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
	raw_exchange(fd, "7;x=y\r\n, world\r\n", "7;x=y\r\n, world\r\n");
	raw_exchange(fd, "0\r\nTrailer: t\r\n\r\n", "0\r\nTrailer: t\r\n\r\n");
	raw_exchange(fd, "GET /after HTTP/1.1\r\nHost: e.localhost\r\n\r\n",
		     "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\necho GET /after\n");

	/* A big chunked body (more than every buffer on the way) sent while reading. */
	size_t body_len = 0, chunk = 10000, chunks = 60;
	char *body = malloc(chunks * (chunk + 16) + 8);
	assert_non_null(body);
	for (size_t i = 0; i < chunks; i++) {
		body_len += (size_t)sprintf(body + body_len, "%zx\r\n", chunk);
		for (size_t k = 0; k < chunk; k++)
			body[body_len++] = (char)('a' + (i + k) % 26);
		body_len += (size_t)sprintf(body + body_len, "\r\n");
	}
	body_len += (size_t)sprintf(body + body_len, "0\r\n\r\n");
	static const char big_head[] = "POST /big HTTP/1.1\r\nHost: e.localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char big_resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	raw_transfer(fd, big_head, sizeof big_head - 1, "", 0);
	raw_transfer(fd, body, body_len, big_resp, sizeof big_resp - 1);
	raw_transfer(fd, "", 0, body, body_len);
	free(body);

	/* Expect: 100-continue: the 100 comes before the body is sent, then the answer. */
	raw_exchange(fd, "POST /e HTTP/1.1\r\nHost: e.localhost\r\nContent-Length: 5\r\n"
			 "Expect: 100-continue\r\n\r\n",
		     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
	raw_exchange(fd, "howdy", "howdy");
	raw_exchange(fd, "GET /last HTTP/1.1\r\nHost: e.localhost\r\nConnection: close\r\n\r\n",
		     "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\necho GET /last\n");
	raw_expect_eof(fd);
	assert_int_equal(close(fd), 0);

	/* Upgrade: the 101, then bytes both ways, including some sent with the head. */
	fd = raw_connect(rport);
	raw_exchange(fd, "GET /ws HTTP/1.1\r\nHost: e.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly",
		     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly");
	raw_exchange(fd, "ping", "ping");
	raw_exchange(fd, "GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"); /* not HTTP any more */
	char *blob = malloc(300000);
	assert_non_null(blob);
	for (size_t i = 0; i < 300000; i++)
		blob[i] = (char)(i * 7);
	raw_transfer(fd, blob, 300000, blob, 300000);
	free(blob);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	raw_expect_eof(fd);
	assert_int_equal(close(fd), 0);

	stop_all(f);
}

/* Only the uids in `subscribers` may subscribe; a bad packet is logged and ignored. */
static void test_subscription_security(void **state)
{
	struct fixture *f = *state;
	int p1 = sup_free_port(), p2 = sup_free_port(), pa = sup_free_port();
	uid_t stranger = getuid() == 12345 ? 12346 : 12345;
	char *sock2 = sup_path(f->dir, "open.sock"), addr[64], line[128];
	struct vassal *r = start_vassal(f, "router", 0,
					"gateways:\n"
					"  - http:\n      listen: 127.0.0.1:%d\n      subscription-server: unix:%s\n"
					"      subscribers: [%d]\n"
					"  - http:\n      listen: 127.0.0.1:%d\n      subscription-server: unix:%s\n",
					p1, f->sock, (int)stranger, p2, sock2);
	const char *const keys[] = { "a.localhost", NULL };

	assert_int_equal(sup_wait_log(r->p, 0, "gateway 2: routing on", T_MS), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pa);

	/* Gateway 1 takes datagrams from uid `stranger` only: ours are refused. */
	start_app(f, "alpha", pa, "alpha", keys, NULL);
	snprintf(line, sizeof line, "gateway 1: subscription from uid %d", (int)getuid());
	assert_int_equal(sup_wait_log(r->p, 0, line, T_MS), 0);
	assert_int_equal(sup_wait_log(r->p, 0, "refused", T_MS), 0);
	size_t mark = sup_log_size(r->p);
	subscribe_by_hand(f->sock, "a.localhost", addr);
	assert_int_equal(sup_wait_log(r->p, mark, "refused", T_MS), 0);
	assert_int_equal(get_host(p1, "a.localhost", "/", NULL, 0), 404);
	assert_int_equal(sup_count_log(r->p, 0, "gateway 1: node added"), 0);

	/* Gateway 2 (default: its own uid and root): bad packets logged, then a good one. */
	mark = sup_log_size(r->p);
	send_datagram(sock2, "hello\n", 6);
	assert_int_equal(sup_wait_log(r->p, mark, "gateway 2: bad subscription packet from pid", T_MS), 0);
	assert_int_equal(sup_wait_log(r->p, mark, "expected 'subscribe' or 'unsubscribe'", T_MS), 0);
	static const char bad_addr[] = "subscribe\nkey=a.localhost\naddress=localhost:80\n";
	send_datagram(sock2, bad_addr, sizeof bad_addr - 1);
	static const char bad_key[] = "subscribe\nkey=a b\naddress=127.0.0.1:1\n";
	send_datagram(sock2, bad_key, sizeof bad_key - 1);
	send_datagram(sock2, "", 0);
	subscribe_by_hand(sock2, "a.localhost", addr);
	wait_node(r, mark, "a.localhost", pa);
	assert_int_equal(sup_count_log(r->p, mark, "gateway 2: bad subscription packet"), 4);
	expect_greeting(p2, "a.localhost", "alpha");
	assert_int_equal(get_host(p1, "a.localhost", "/", NULL, 0), 404);

	free(sock2);
	stop_all(f);
}

/* A burst of 200 subscriptions is written to the state file a few times, not once per
 * datagram (it was one fsync'ed write per change, in the router's loop); all of it
 * is there, and a change just before a reload is written at the router's exit. */
static void test_state_file_debounced(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), ino, renames = 0;
	struct vassal *r = start_router(f, rport, NULL);
	char *nodes = sup_path(f->dir, "router.sock.nodes"), addr[32], buf[4096];
	long long deadline;
	ssize_t n;

	ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	assert_true(ino >= 0);
	/* IN_CREATE too (of the temporary file): identical events in a row would be
	 * merged into one by the kernel. */
	assert_true(inotify_add_watch(ino, f->dir, IN_CREATE | IN_MOVED_TO) >= 0);
	for (int i = 0; i < 200; i++) {
		snprintf(addr, sizeof addr, "127.0.0.1:%d", 20000 + i);
		subscribe_by_hand(f->sock, "burst.localhost", addr);
	}
	deadline = sup_now_ms() + T_MS;
	while (lines_with(nodes, "burst.localhost") != 200 && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_int_equal(lines_with(nodes, "burst.localhost"), 200);
	while ((n = read(ino, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			renames += (ev->mask & IN_MOVED_TO) && ev->len &&
				   strcmp(ev->name, "router.sock.nodes") == 0;
			p += sizeof *ev + ev->len;
		}
	close(ino);
	printf("200 subscriptions: the state file written %d times\n", renames);
	assert_true(renames >= 1 && renames <= 20);

	/* The last change before a reload is not lost: the new router restores it. */
	size_t mark = sup_log_size(r->p);
	subscribe_by_hand(f->sock, "last.localhost", "127.0.0.1:20999");
	assert_int_equal(sup_wait_log(r->p, mark, "node added: last.localhost", T_MS), 0);
	reload_vassal(r);
	assert_int_equal(sup_wait_log(r->p, mark, "gateway 1: 201 nodes restored from", T_MS), 0);
	stop_all(f);
	free(nodes);
}

/* ---- RFC 9112, stale keep-alive, tunnels, limits, counters (issue 13) --------------------- */

/* The router vassal's counter sample (its master's metrics), or -1. */
static double router_metric(struct vassal *r, const char *labels_fmt, ...)
{
	char series[256], *text;
	va_list ap;
	double v;

	va_start(ap, labels_fmt);
	vsnprintf(series, sizeof series, labels_fmt, ap);
	va_end(ap);
	text = sup_master_status(r->p->pid, "metrics");
	assert_non_null(text);
	v = sup_metric(text, series);
	free(text);
	return v;
}

#define REQS(cls) "emperor_gateway_requests_total{vassal=\"router\",gateway=\"1\",class=\"" cls "\"}"

/* What RFC 9112 says a server must refuse gets a 400 (not a 404, not forwarded); an
 * absolute-form target routes by its host; a bad chunk size is a 400 before the
 * close; the answers are counted in the router vassal's metrics. */
static void test_rfc9112_musts_and_counters(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), pe = sup_free_port();
	struct vassal *r = start_router(f, rport, NULL);
	const char *const keys[] = { "a.localhost", NULL };
	struct sup_http resp;

	start_app(f, "alpha", pa, "alpha", keys, NULL);
	start_vassal(f, "echo", 1,
		     "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		     "workers:\n  count: 1\n  exec: [%s]\n  ready: notify\n"
		     "subscribe:\n  - server: unix:%s\n    key: e.localhost\n    socket: http\n",
		     pe, f->echo_bin, f->sock);
	wait_node(r, 0, "a.localhost", pa);
	wait_node(r, 0, "e.localhost", pe);

	static const char no_host[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
	expect_status_close(rport, no_host, sizeof no_host - 1, 400);
	static const char folded[] = "GET / HTTP/1.1\r\nHost: a.localhost\r\nX-A: one\r\n two\r\n\r\n";
	expect_status_close(rport, folded, sizeof folded - 1, 400);
	static const char bad_chunk[] = "POST / HTTP/1.1\r\nHost: e.localhost\r\n"
					"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n";
	expect_status_close(rport, bad_chunk, sizeof bad_chunk - 1, 400);
	assert_int_equal(request(rport, "GET http://a.localhost/ HTTP/1.1\r\nHost: nowhere.localhost\r\n"
				 "Connection: close\r\n\r\n", &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_true(strncmp(resp.body, "alpha ", 6) == 0);
	sup_http_fini(&resp);
	assert_int_equal(get_host(rport, "nowhere.localhost", "/", NULL, 0), 404);
	/* A refusal after an answered request on a keep-alive connection counts too. */
	int fd = raw_connect(rport);
	raw_exchange(fd, "GET /k HTTP/1.1\r\nHost: e.localhost\r\n\r\n",
		     "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\necho GET /k\n");
	raw_transfer(fd, "garbage\r\n\r\n", 11, "HTTP/1.1 400 ", 13);
	close(fd);

	assert_true(router_metric(r, REQS("4xx")) == 5);
	assert_true(router_metric(r, REQS("2xx")) == 2);
	assert_true(router_metric(r, REQS("5xx")) == 0);
	assert_true(router_metric(r, "emperor_gateway_key_requests_total{vassal=\"router\","
				  "gateway=\"1\",key=\"a.localhost\",class=\"2xx\"}") == 1);
	assert_true(router_metric(r, "emperor_gateway_key_requests_total{vassal=\"router\","
				  "gateway=\"1\",key=\"e.localhost\",class=\"4xx\"}") == 1);
	assert_true(router_metric(r, "emperor_gateway_key_requests_total{vassal=\"router\","
				  "gateway=\"1\",key=\"e.localhost\",class=\"2xx\"}") == 1);
	stop_all(f);
}

/* Reads from fd until buf holds a whole request with a Content-Length body of
 * body_len bytes (bounded); 0 when it came, -1 at EOF or timeout. */
static int read_request(int fd, char *buf, size_t cap, size_t body_len)
{
	size_t got = 0;
	long long deadline = sup_now_ms() + T_MS;

	buf[0] = '\0';
	while (sup_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *end = strstr(buf, "\r\n\r\n");
		if (end && (size_t)(buf + got - end - 4) >= body_len)
			return 0;
		if (poll(&pfd, 1, (int)(deadline - sup_now_ms())) <= 0)
			return -1;
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
	}
	return -1;
}

/* A POST after a GET on a keep-alive client connection goes to the backend on a fresh
 * connection: the kept one may have gone stale (here the backend drops it when the
 * request arrives), which was answered 502 for a request that cannot be sent twice. */
static void test_post_not_on_stale_keepalive(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), bport, fd, b1, b2 = -1;
	struct vassal *r = start_router(f, rport, NULL);
	int backend = sup_listen_tcp("127.0.0.1", 0, &bport);
	char addr[64], buf[4096];
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

	assert_true(backend >= 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", bport);
	subscribe_by_hand(f->sock, "ka.localhost", addr);
	wait_node(r, 0, "ka.localhost", bport);

	fd = raw_connect(rport);
	raw_transfer(fd, "GET /1 HTTP/1.1\r\nHost: ka.localhost\r\n\r\n", 39, "", 0);
	struct pollfd lp = { .fd = backend, .events = POLLIN };
	assert_int_equal(poll(&lp, 1, T_MS), 1);
	b1 = accept4(backend, NULL, NULL, SOCK_CLOEXEC);
	assert_true(b1 >= 0);
	assert_int_equal(read_request(b1, buf, sizeof buf, 0), 0);
	assert_int_equal(send(b1, ok, sizeof ok - 1, MSG_NOSIGNAL), (ssize_t)sizeof ok - 1);
	raw_transfer(fd, "", 0, ok, sizeof ok - 1); /* the backend connection is kept */

	static const char post[] = "POST /2 HTTP/1.1\r\nHost: ka.localhost\r\nContent-Length: 5\r\n\r\nhello";
	raw_transfer(fd, post, sizeof post - 1, "", 0);
	long long deadline = sup_now_ms() + T_MS;
	while (b2 < 0 && sup_now_ms() < deadline) {
		struct pollfd pfd[2] = { { .fd = backend, .events = POLLIN }, { .fd = b1, .events = POLLIN } };
		assert_true(poll(pfd, b1 >= 0 ? 2 : 1, (int)(deadline - sup_now_ms())) > 0);
		if (b1 >= 0 && pfd[1].revents) { /* on the kept connection: drop it, as stale */
			ssize_t n = recv(b1, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0)
				fprintf(stderr, "the POST came on the kept-alive connection\n");
			close(b1);
			b1 = -1;
		}
		if (pfd[0].revents)
			b2 = accept4(backend, NULL, NULL, SOCK_CLOEXEC);
	}
	assert_true(b2 >= 0);
	assert_int_equal(read_request(b2, buf, sizeof buf, 5), 0);
	assert_non_null(strstr(buf, "POST /2 HTTP/1.1\r\n"));
	assert_int_equal(send(b2, ok, sizeof ok - 1, MSG_NOSIGNAL), (ssize_t)sizeof ok - 1);
	raw_transfer(fd, "", 0, ok, sizeof ok - 1);
	assert_true(router_metric(r, REQS("5xx")) == 0);
	close(fd);
	close(b2);
	if (b1 >= 0)
		close(b1);
	close(backend);
	stop_all(f);
}

/* An upgraded connection that carries nothing either way for tunnel-timeout is closed;
 * one that does stays. */
static void test_tunnel_idle_timeout(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pe = sup_free_port(), fd;
	struct vassal *r = start_router(f, rport, "      tunnel-timeout: 1s\n");
	struct pollfd pfd;

	start_vassal(f, "echo", 1,
		     "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		     "workers:\n  count: 1\n  exec: [%s]\n  ready: notify\n"
		     "subscribe:\n  - server: unix:%s\n    key: e.localhost\n    socket: http\n",
		     pe, f->echo_bin, f->sock);
	wait_node(r, 0, "e.localhost", pe);
	fd = raw_connect(rport);
	raw_exchange(fd, "GET /ws HTTP/1.1\r\nHost: e.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
		     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
	/* Busy for twice the timeout: a byte every 400 ms keeps it open. */
	for (int i = 0; i < 5; i++) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&pfd, 1, 400), 0); /* nothing, and not closed */
		raw_exchange(fd, "x", "x");
	}
	/* Idle: closed after about a second. */
	long long t0 = sup_now_ms();
	raw_expect_eof(fd);
	long long idle = sup_now_ms() - t0;
	printf("idle tunnel closed after %lld ms (tunnel-timeout: 1s)\n", idle);
	assert_true(idle >= 900 && idle < 5000);
	assert_int_equal(sup_wait_log(r->p, 0, "idle for 1s: closed", T_MS), 0);
	close(fd);
	stop_all(f);
}

/* max-connections-per-client: past it, a client's next connection gets a 429 and is
 * closed, the others keep working; a refused subscriber floods the log no more than
 * a line a second. */
static void test_per_client_limit_and_quiet_refusals(void **state)
{
	struct fixture *f = *state;
	int rport = sup_free_port(), pa = sup_free_port(), fds[3];
	struct vassal *r = start_router(f, rport, "      max-connections-per-client: 3\n"
						 "      subscribers: [12345]\n");
	char addr[64];

	static const char get[] = "GET / HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n";

	for (int i = 0; i < 3; i++)
		fds[i] = raw_connect(rport);
	int fourth = raw_connect(rport); /* answered at once, before any request */
	static const char too_many[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
				       "Content-Length: 35\r\nConnection: close\r\n\r\n"
				       "Too many connections from you now\n";
	raw_transfer(fourth, "", 0, too_many, sizeof too_many - 1);
	raw_expect_eof(fourth);
	close(fourth);
	assert_int_equal(sup_wait_log(r->p, 0, "(max-connections-per-client): refused", T_MS), 0);
	close(fds[0]);
	/* The slot comes back once the router has seen the close: 404 (no node), not 429
	 * (nor a reset, when the 429 raced the request). */
	long long deadline = sup_now_ms() + T_MS;
	int status = 0;
	while (sup_now_ms() < deadline && status != 404) {
		struct sup_http resp;
		status = request(rport, get, &resp) == 0 ? resp.status : -1;
		sup_http_fini(&resp);
		if (status != 404)
			sup_poll_pause();
	}
	assert_int_equal(status, 404);
	close(fds[1]);
	close(fds[2]);

	/* 200 refused datagrams (we are not uid 12345) within a second or so: a few lines. */
	size_t mark = sup_log_size(r->p);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pa);
	for (int i = 0; i < 200; i++)
		subscribe_by_hand(f->sock, "a.localhost", addr);
	assert_int_equal(sup_wait_log(r->p, mark, "refused", T_MS), 0);
	int lines = sup_count_log(r->p, mark, "subscription from uid");
	printf("200 refused subscriptions: %d log lines\n", lines);
	assert_true(lines >= 1 && lines <= 5);
	stop_all(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes_by_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_reloads_under_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_reload_stays_subscribed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsubscribe_on_reload_twin_serves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_router_reloads_under_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_vassal_skipped_then_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_router_error_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_chunked_continue_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscription_security, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file_debounced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rfc9112_musts_and_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_not_on_stale_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunnel_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_client_limit_and_quiet_refusals, setup, teardown),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER")) /* e.g. "*upgrade*": run only the matching tests */
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
