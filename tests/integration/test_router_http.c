/* test_router_http.c — the HTTP router run for real (fixture: gateway_fixture.h),
 * for what RFC 9112 says a server must do (400 for an HTTP/1.1 request without Host,
 * for obs-fold, for a bad chunk size; the absolute form routed by its host), a POST
 * never sent on a kept-alive backend connection that may be stale, the idle timeout
 * of tunnels, the per-client connection limit, the rate-limited log of refused
 * subscribers, and the request counters in the router vassal's metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway_fixture.h"

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
		cmocka_unit_test_setup_teardown(test_rfc9112_musts_and_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_not_on_stale_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tunnel_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_client_limit_and_quiet_refusals, setup, teardown),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER")) /* e.g. "*tunnel*": run only the matching tests */
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
