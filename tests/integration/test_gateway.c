/* test_gateway.c — the HTTP router (gateways:) and subscriptions (subscribe:) run for
 * real: vassal masters started on files in a temp dir, the reference worker and the
 * echo backend behind a router vassal, clients on loopback. Routing by Host (exact,
 * unknown, a `to:`-only gateway), graceful reloads of an app and of the router under
 * load with no failed request, a SIGKILLed vassal skipped then expired, the router's
 * own answers (400, 431, 408, 504, 502), keep-alive, chunked bodies, 100-continue and
 * an upgrade tunnelled, who may subscribe, and the node state file written debounced.
 * test_router_http.c has the rest of the router's HTTP; the fixture (vassals, clients,
 * load) is gateway_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway_fixture.h"

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
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER")) /* e.g. "*upgrade*": run only the matching tests */
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
