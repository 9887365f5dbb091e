/* test_health.c — the workers' limits (workers.watchdog, max-rss, max-lifetime, stall)
 * on a real master and hello-worker: a worker that stops pinging is replaced, one
 * that grows past max-rss or outlives max-lifetime is recycled with its replacement
 * ready first (no request fails meanwhile), a request hanging past `stall` gets its
 * worker killed and the next request is served; each act is logged with its figure
 * and counted in the master's metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "vassal_fixture.h"

/* The rate at which a test sends requests; never a stand-in for waiting on an event. */
static void pace_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The pid "(pid N)" on the first line after mark that contains needle; 0 if none. */
static pid_t pid_on_line(struct vt *v, size_t mark, const char *needle)
{
	char *text = sup_read_file(v->log), *at;
	pid_t pid = 0;

	assert_non_null(text);
	at = strstr(text + mark, needle);
	if (at) {
		while (at > text && at[-1] != '\n')
			at--;
		at = strstr(at, "(pid ");
		pid = at ? (pid_t)atoi(at + 5) : 0;
	}
	free(text);
	return pid;
}

/* GETs until a worker other than old answers (each answer 200). */
static void wait_other_pid(struct vt *v, pid_t old)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t now = old;

	while (now == old && sup_now_ms() < deadline) {
		struct sup_http r;
		const char *h;

		assert_int_equal(sup_http_get("127.0.0.1", v->port, "/", &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		h = sup_http_header(&r, "X-Worker-Pid");
		assert_non_null(h);
		now = (pid_t)atoi(h);
		sup_http_fini(&r);
	}
	assert_true(now != old);
}

/* The time of day (seconds) of the first log line after mark containing needle. */
static double line_time(struct vt *v, size_t mark, const char *needle)
{
	char *text = sup_read_file(v->log), *at;
	int h = 0, m = 0;
	double sec = -1;

	assert_non_null(text);
	at = strstr(text + mark, needle);
	assert_non_null(at);
	while (at > text && at[-1] != '\n')
		at--;
	/* "2026-12-03 17:46:15.771 ..." */
	assert_int_equal(sscanf(at, "%*d-%*d-%*d %d:%d:%lf", &h, &m, &sec), 3);
	free(text);
	return h * 3600 + m * 60 + sec;
}

static double recycles(struct vt *v, const char *reason)
{
	char series[128], *text = sup_master_status(v->p->pid, "metrics");
	double n;

	assert_non_null(text);
	snprintf(series, sizeof series, "emperor_vassal_worker_recycles_total{vassal=\"v\",reason=\"%s\"}",
		 reason);
	n = sup_metric(text, series);
	free(text);
	return n;
}

/* One GET / per ms for ms_total: every answer 200. */
static void get_loop(struct vt *v, long period_ms, long total_ms)
{
	long long end = sup_now_ms() + total_ms;

	while (sup_now_ms() < end) {
		vt_get_ok(v, v->port, NULL);
		pace_ms(period_ms);
	}
}

/* A worker that never sends WATCHDOG=1 gets its stop signal one watchdog period after
 * READY=1 (not before) and a replacement; pinging workers are left alone. */
static void test_watchdog_replaces_a_silent_worker(void **state)
{
	struct vt *v = *state;
	pid_t first;

	vt_config(v, &(struct vcfg){ .count = 1, .args = ", --no-watchdog",
				     .workers = "  watchdog: 1s\n", .mercy = "1s" });
	vt_start(v, 1);
	first = pid_on_line(v, v->mark, "worker 1 started");
	assert_true(first > 0);
	assert_int_equal(sup_wait_log(v->p, v->mark, "sent no WATCHDOG=1 for", T_MS), 0);
	/* not before READY=1 + one period */
	assert_true(line_time(v, v->mark, "sent no WATCHDOG=1 for") -
		    line_time(v, v->mark, "worker 1 (pid") >= 1.0);
	assert_int_equal(pid_on_line(v, v->mark, "sent no WATCHDOG=1 for"), first);
	/* watchdog 1s + its tick (0.25s) + mercy 1s, with slack for a loaded machine */
	assert_int_equal(sup_wait_pid_dead(first, 4000), 0);
	wait_other_pid(v, first);
	vt_get_ok(v, v->port, NULL);
	assert_true(recycles(v, "watchdog") >= 1);
	vt_stop(v, SIGTERM, T_MS);

	/* the same with workers that ping: nobody is stopped over 2.5 periods */
	vt_config(v, &(struct vcfg){ .count = 2, .workers = "  watchdog: 1s\n" });
	vt_start(v, 2);
	get_loop(v, 50, 2500);
	assert_int_equal(sup_count_log(v->p, v->mark, "sent no WATCHDOG=1"), 0);
	assert_int_equal(recycles(v, "watchdog"), 0);
	vt_stop(v, SIGTERM, T_MS);
}

/* Workers that grow 4 MiB per request pass max-rss: each is recycled, its
 * replacement ready first, and a request loop sees no failure. */
static void test_max_rss_recycles_without_a_failed_request(void **state)
{
	struct vt *v = *state;
	long long end = sup_now_ms() + T_MS;

	vt_config(v, &(struct vcfg){ .count = 2, .args = ", --grow-on-request, \"4\"",
				     .workers = "  max-rss: 48M\n" });
	vt_start(v, 2);
	/* paced, not a load thread: a burst would grow them faster than a tick */
	while (sup_count_log(v->p, v->mark, "replaced by pid") < 2 && sup_now_ms() < end) {
		vt_get_ok(v, v->port, NULL);
		pace_ms(20);
	}
	assert_true(sup_count_log(v->p, v->mark, "replaced by pid") >= 2);
	assert_true(sup_count_log(v->p, v->mark, "> max-rss 48 MiB: recycling") >= 2);
	assert_true(recycles(v, "max-rss") >= 2);
	vt_get_ok(v, v->port, NULL);
	vt_stop(v, SIGTERM, T_MS);
}

/* max-lifetime 2s with 4 workers under load: each recycle completes before the next
 * begins (never all at once), and not one request fails. */
static void test_max_lifetime_recycles_spread_out(void **state)
{
	struct vt *v = *state;
	struct sup_load *l;
	long long end;
	char *text, *p;
	int begun = 0;

	vt_config(v, &(struct vcfg){ .count = 4, .workers = "  max-lifetime: 2s\n" });
	vt_start(v, 4);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	end = sup_now_ms() + 3 * T_MS;
	while (sup_count_log(v->p, v->mark, "replaced by pid") < 6 && sup_now_ms() < end)
		sup_poll_pause();
	vt_load_stop_clean(l, 5);
	assert_true(sup_count_log(v->p, v->mark, "replaced by pid") >= 6);
	/* in the log: "recycling" and "replaced by" alternate */
	text = sup_read_file(v->log);
	assert_non_null(text);
	for (p = text + v->mark; (p = strpbrk(p, "r")); p++) {
		if (strncmp(p, "recycling", 9) == 0)
			assert_int_equal(begun++, 0);
		else if (strncmp(p, "replaced by pid", 15) == 0)
			begun = 0;
	}
	free(text);
	assert_true(recycles(v, "max-lifetime") >= 6);
	vt_stop(v, SIGTERM, T_MS);
}

/* A request unanswered past `stall` (/slow) gets its worker killed; the next
 * request is served. */
static void test_stall_kills_a_hung_worker(void **state)
{
	struct vt *v = *state;
	struct sup_conn *c;
	pid_t killed;

	vt_config(v, &(struct vcfg){ .count = 2, .workers = "  stall: 1s\n" });
	vt_start(v, 2);
	c = sup_conn_open("127.0.0.1", v->port, T_MS);
	assert_non_null(c);
	vt_send(c, "GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(sup_wait_log(v->p, v->mark, "busy on one request for", T_MS), 0);
	killed = pid_on_line(v, v->mark, "busy on one request for");
	assert_true(killed > 0);
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	sup_conn_close(c);
	assert_int_equal(sup_wait_pid_dead(killed, T_MS), 0);
	vt_get_ok(v, v->port, NULL);
	vt_wait_ids(v, v->port, 2);
	assert_true(recycles(v, "stall") >= 1);
	vt_stop(v, SIGTERM, T_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VT_TEST(test_watchdog_replaces_a_silent_worker),
		VT_TEST(test_max_rss_recycles_without_a_failed_request),
		VT_TEST(test_max_lifetime_recycles_spread_out),
		VT_TEST(test_stall_kills_a_hung_worker),
	};

	sup_init();
	return cmocka_run_group_tests_name("worker health", tests, NULL, NULL);
}
