/* test_health.c — the workers' limits (workers.watchdog, max-rss, max-lifetime, stall)
 * on a real master and hello-worker: a worker that stops pinging is replaced, one
 * that grows past max-rss or outlives max-lifetime is recycled with its replacement
 * ready first (no request fails meanwhile), a request hanging past `stall` gets its
 * worker killed and the next request is served; each act is logged with its figure
 * and counted in the master's metrics. The log file: rotated by size without losing
 * or repeating a line; one that cannot be written or opened is reported and retried,
 * and the vassal serves on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <limits.h>
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

/* Every "replaced by pid N" in the log comes after "(pid N) ready": the replacement
 * was ready before the old worker was asked to stop. */
static void assert_replacements_ready_first(struct vt *v)
{
	char *text = sup_read_file(v->log), *p;
	int n = 0;

	assert_non_null(text);
	for (p = text + v->mark; (p = strstr(p, "replaced by pid ")); p++) {
		char ready[64], *at;
		snprintf(ready, sizeof ready, "(pid %d) ready in", atoi(p + strlen("replaced by pid ")));
		at = strstr(text + v->mark, ready);
		assert_non_null(at);
		assert_true(at < p);
		n++;
	}
	free(text);
	assert_true(n > 0);
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
	sup_proc_free(v->p);
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
	assert_replacements_ready_first(v);
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
	assert_replacements_ready_first(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* A chain reload begins while a recycle is under way (replacements take 300 ms to
 * get ready, the reload is asked as soon as a recycle begins), three times: no
 * request fails, and once recycling stops exactly count workers run, one per id (a
 * recycle's old worker no longer holds its id, so a chain never replaces both it and
 * its replacement). */
static void test_chain_reload_during_a_recycle(void **state)
{
	struct vt *v = *state;
	struct sup_load *l;
	pid_t pids[VT_MAX_PIDS];

	vt_config(v, &(struct vcfg){ .count = 3, .args = ", --ready-delay, \"300\"",
				     .workers = "  max-lifetime: 1s\n" });
	vt_start(v, 3);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	for (int i = 0; i < 3; i++) {
		size_t mark = sup_log_size(v->p);

		assert_int_equal(sup_wait_log(v->p, mark, ": recycling", T_MS), 0);
		assert_int_equal(kill(v->p->pid, SIGUSR2), 0);
		vt_wait_generation(v, mark, v->gen + 1);
		vt_load_progress(l, 20);
	}
	vt_config(v, &(struct vcfg){ .count = 3, .args = ", --ready-delay, \"300\"" });
	vt_reload(v, SIGUSR2);
	vt_workers(v, pids, 3);
	vt_wait_ids(v, v->port, 3);
	vt_load_progress(l, 20);
	vt_load_stop_clean(l, 3);
	assert_true(recycles(v, "max-lifetime") >= 3);
	vt_assert_no_zombies(v);
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

/* One worker always busy for 3 s, but on requests that overlap and each take 0.6 s
 * (< stall): it reports each new oldest request (X_BUSY=1 again), so it is not
 * killed, and every request is answered. */
static void test_stall_spares_overlapping_requests(void **state)
{
	enum { N = 10 };
	struct vt *v = *state;
	struct sup_conn *c[N];

	vt_config(v, &(struct vcfg){ .count = 1, .workers = "  stall: 1s\n" });
	vt_start(v, 1);
	for (int i = 0; i < N + 2; i++) {
		if (i < N) {
			c[i] = sup_conn_open("127.0.0.1", v->port, T_MS);
			assert_non_null(c[i]);
			vt_send(c[i], "GET /slow?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
		}
		if (i >= 2) { /* the one sent 600 ms ago is due */
			struct sup_http r;
			assert_int_equal(sup_conn_read_response(c[i - 2], &r, T_MS), 0);
			assert_int_equal(r.status, 200);
			sup_http_fini(&r);
			sup_conn_close(c[i - 2]);
		}
		pace_ms(300);
	}
	assert_int_equal(sup_count_log(v->p, v->mark, "busy on one request"), 0);
	assert_true(recycles(v, "stall") == 0);
	vt_stop(v, SIGTERM, T_MS);
}

/* ---- the log file ------------------------------------------------------------------ */

/* The value of series in the master's metrics (-1 if absent or unreachable). */
static double metric(struct vt *v, const char *series)
{
	char *text = sup_master_status(v->p->pid, "metrics");
	double n;

	if (!text)
		return -1;
	n = sup_metric(text, series);
	free(text);
	return n;
}

/* Waits until series equals want (bounded). */
static void wait_metric(struct vt *v, const char *series, double want, int ms)
{
	long long deadline = sup_now_ms() + ms;
	double now;

	while ((now = metric(v, series)) != want && sup_now_ms() < deadline)
		sup_poll_pause();
	if (now != want)
		fprintf(stderr, "%s is %g, expected %g\n", series, now, want);
	assert_true(now == want);
}

/* Counts "line 1 SEQ" in PATH, PATH.1 ... PATH.keep into seen[SEQ]; how many files. */
static int count_lines(const char *path, int keep, int *seen, long max)
{
	int files = 0;

	for (int n = 0; n <= keep; n++) {
		char name[PATH_MAX], *text, *p;

		snprintf(name, sizeof name, n ? "%s.%d" : "%s", path, n);
		if (!(text = sup_read_file(name)))
			continue;
		files++;
		for (p = text; (p = strstr(p, ": line 1 ")); p++) {
			long seq = strtol(p + strlen(": line 1 "), NULL, 10);
			if (seq >= 1 && seq <= max)
				seen[seq]++;
		}
		free(text);
	}
	return files;
}

/* A worker logs 10000 numbered lines at ~5000 a second into a log of max-size 64K:
 * the log is rotated several times and every line is in exactly one file. */
static void test_log_rotation_loses_no_line(void **state)
{
	enum { LINES = 10000, KEEP = 40 };
	struct vt *v = *state;
	static int seen[LINES + 1];
	long long deadline;
	int files, missing = 0, twice = 0;
	char top[256];

	snprintf(top, sizeof top, "log:\n  file: vassal.log\n  max-size: 64K\n  keep: %d\n", KEEP);
	vt_config(v, &(struct vcfg){ .count = 1, .args = ", --log-lines, \"10000\"", .top = top });
	v->p = vt_spawn(v);
	deadline = sup_now_ms() + 3 * T_MS;
	do {
		memset(seen, 0, sizeof seen);
		count_lines(v->log, KEEP, seen, LINES);
		if (seen[LINES])
			break;
		sup_poll_pause();
	} while (sup_now_ms() < deadline);
	assert_int_equal(seen[LINES], 1);
	/* a rotation while the files are read (the master's last lines can still cause
	 * one) shows a file twice or none: a count that is not clean is taken again, and
	 * a line really lost or doubled stays so until the deadline */
	deadline = sup_now_ms() + T_MS;
	for (;;) {
		memset(seen, 0, sizeof seen);
		files = count_lines(v->log, KEEP, seen, LINES);
		missing = twice = 0;
		for (int i = 1; i <= LINES; i++)
			missing += seen[i] == 0, twice += seen[i] > 1;
		if ((!missing && !twice) || sup_now_ms() >= deadline)
			break;
		sup_poll_pause();
	}
	fprintf(stderr, "%d files, %d lines missing, %d twice\n", files, missing, twice);
	assert_int_equal(missing, 0);
	assert_int_equal(twice, 0);
	assert_true(files >= 5); /* 10000 lines of ~60 bytes through 64 KiB files */
	assert_true(metric(v, "emperor_vassal_log_rotations_total{vassal=\"v\"}") >= 4);
	assert_true(metric(v, "emperor_vassal_log_lost_lines_total{vassal=\"v\"}") == 0);
	vt_stop(v, SIGTERM, T_MS);
}

/* log.format: json — every line of the vassal's log is one JSON object: the master's
 * own lines and its worker's, whose text-format fields are taken apart. */
static void test_log_format_json(void **state)
{
	enum { LINES = 200 };
	struct vt *v = *state;
	long long deadline = sup_now_ms() + 3 * T_MS;
	int worker_lines = 0, master_lines = 0, objects = 0, lines = 0;
	char *text = NULL, *save = NULL;

	vt_config(v, &(struct vcfg){ .count = 1, .args = ", --log-lines, \"200\"",
				     .top = "log:\n  file: vassal.log\n  format: json\n" });
	v->p = vt_spawn(v);
	while (sup_now_ms() < deadline) {
		free(text);
		text = sup_read_file(v->log);
		if (text && strstr(text, "line 1 200\""))
			break;
		sup_poll_pause();
	}
	assert_non_null(text);
	assert_non_null(strstr(text, "line 1 200\""));
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(l), *msg, *ident;
		lines++;
		if (!o) {
			fprintf(stderr, "not JSON: %s\n", l);
			continue;
		}
		objects++;
		assert_true(json_object_object_get_ex(o, "time", NULL));
		assert_true(json_object_object_get_ex(o, "pid", NULL));
		if (json_object_object_get_ex(o, "message", &msg) &&
		    json_object_object_get_ex(o, "ident", &ident)) {
			const char *m = json_object_get_string(msg), *id = json_object_get_string(ident);
			worker_lines += strncmp(m, "line 1 ", 7) == 0 && strncmp(id, "hello-worker", 12) == 0;
			master_lines += strcmp(id, "vassal v") == 0;
		}
		json_object_put(o);
	}
	free(text);
	fprintf(stderr, "%d lines, %d JSON objects, %d worker lines, %d master lines\n", lines,
		objects, worker_lines, master_lines);
	assert_int_equal(objects, lines);
	assert_int_equal(worker_lines, LINES);
	assert_true(master_lines >= 2); /* "master started", "worker 1 started" ... */
	/* its "stopped" line is JSON too: wait for the exit itself */
	assert_int_equal(kill(v->p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_exit(v->p, T_MS), 0);
	assert_true(WIFEXITED(v->p->status) && WEXITSTATUS(v->p->status) == 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* Stops the master (its log is not ours to read): exit 0, nothing left behind. */
static void stop_quietly(struct vt *v)
{
	assert_int_equal(kill(v->p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_exit(v->p, T_MS), 0);
	assert_true(WIFEXITED(v->p->status) && WEXITSTATUS(v->p->status) == 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* /dev/full as log: lines are lost and counted, the error shows in status and metrics,
 * the vassal serves on. */
static void test_log_on_dev_full_is_reported(void **state)
{
	struct vt *v = *state;
	char *json;

	vt_config(v, &(struct vcfg){ .count = 1, .top = "log: /dev/full\n" });
	v->p = vt_spawn(v);
	wait_metric(v, "emperor_vassal_log_error{vassal=\"v\"}", 1, T_MS);
	vt_wait_ids(v, v->port, 1);
	assert_true(metric(v, "emperor_vassal_log_lost_lines_total{vassal=\"v\"}") > 0);
	json = sup_master_status(v->p->pid, "json");
	assert_non_null(json);
	assert_non_null(strstr(json, "No space left on device"));
	free(json);
	stop_quietly(v);
}

/* A log in a directory that does not exist yet: the vassal runs, the error shows; once
 * the directory is made, the file is opened within the retry period. */
static void test_log_that_cannot_be_opened_is_retried(void **state)
{
	struct vt *v = *state;
	char *sub = sup_path(v->dir, "later"), *file = sup_path(sub, "v.log");

	vt_config(v, &(struct vcfg){ .count = 1, .top = "log: later/v.log\n" });
	v->p = vt_spawn(v);
	assert_int_equal(sup_wait_log(v->p, v->mark, "No such file or directory (retrying", T_MS), 0);
	/* meanwhile its lines come to its previous output, ours */
	assert_int_equal(sup_wait_log(v->p, v->mark, "ready: 1 workers", T_MS), 0);
	vt_wait_ids(v, v->port, 1);
	wait_metric(v, "emperor_vassal_log_error{vassal=\"v\"}", 1, T_MS);
	assert_int_equal(mkdir(sub, 0755), 0);
	wait_metric(v, "emperor_vassal_log_error{vassal=\"v\"}", 0, T_MS);
	assert_int_equal(kill(v->p->pid, SIGUSR1), 0); /* a status dump: a line into the file */
	assert_int_equal(sup_wait_file(file, 0, "status: ", T_MS), 0);
	stop_quietly(v);
	free(sub), free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VT_TEST(test_watchdog_replaces_a_silent_worker),
		VT_TEST(test_max_rss_recycles_without_a_failed_request),
		VT_TEST(test_max_lifetime_recycles_spread_out),
		VT_TEST(test_chain_reload_during_a_recycle),
		VT_TEST(test_stall_kills_a_hung_worker),
		VT_TEST(test_stall_spares_overlapping_requests),
		VT_TEST(test_log_rotation_loses_no_line),
		VT_TEST(test_log_format_json),
		VT_TEST(test_log_on_dev_full_is_reported),
		VT_TEST(test_log_that_cannot_be_opened_is_retried),
	};

	sup_init();
	return cmocka_run_group_tests_name("worker health", tests, NULL, NULL);
}
