/* test_vassal_reload.c — the reload modes of one vassal master run for real under a
 * client that never pauses: graceful and chain reloads by the dozen, `reload:
 * workers`, a chain whose replacement never gets ready, edits of the file (more
 * workers, a new socket, an invalid file, a fixed one), a storm of reload requests
 * and touch-reload. The assertion every time: not one request failed, and the
 * workers end up running the latest valid file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
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

static void assert_same_pids(const pid_t *a, const pid_t *b, int n)
{
	for (int i = 0; i < n; i++)
		assert_true(pid_in(a[i], b, n));
}

static void assert_all_new(const pid_t *now, int n, const pid_t *before, int n_before)
{
	for (int i = 0; i < n; i++)
		assert_false(pid_in(now[i], before, n_before));
}

/* GETs until n answers in a row contain want (the workers run the latest file). */
static void wait_body(struct vt *v, const char *want, int n)
{
	long long deadline = sup_now_ms() + T_MS;
	int in_a_row = 0;

	while (in_a_row < n && sup_now_ms() < deadline) {
		struct sup_http r;

		assert_int_equal(sup_http_get("127.0.0.1", v->port, "/", &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		in_a_row = strstr(r.body, want) ? in_a_row + 1 : 0;
		sup_http_fini(&r);
	}
	assert_int_equal(in_a_row, n);
}

/* The pid in the first "<needle> (pid N)" line after mark. */
static pid_t logged_pid(struct vt *v, size_t mark, const char *needle)
{
	char *text, *at;
	pid_t pid = 0;

	assert_int_equal(sup_wait_log(v->p, mark, needle, T_MS), 0);
	text = sup_read_file(v->log);
	assert_non_null(text);
	at = strstr(text + mark, needle);
	if (at && (at = strstr(at, "(pid ")))
		pid = (pid_t)atoi(at + strlen("(pid "));
	free(text);
	assert_true(pid > 0);
	return pid;
}

/* ---- many reloads under load ------------------------------------------------------ */

/* 10 graceful reloads, then 10 chain reloads (SIGUSR2, then reload: chain and
 * SIGHUP): zero failed requests, a new pair of workers each time. */
static void test_load_through_graceful_and_chain_reloads(void **state)
{
	struct vt *v = *state;
	struct sup_load *l;

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_load_progress(l, 20);
	for (int i = 0; i < 10; i++) {
		vt_reload(v, SIGHUP);
		vt_load_progress(l, 5);
	}
	for (int i = 0; i < 5; i++) {
		vt_reload(v, SIGUSR2);
		vt_load_progress(l, 5);
	}
	vt_config(v, &(struct vcfg){ .count = 2, .reload = "chain" });
	for (int i = 0; i < 5; i++) {
		size_t mark = sup_log_size(v->p);

		vt_reload(v, SIGHUP);
		assert_int_equal(sup_count_log(v->p, mark, "chain reload of generation"), 1);
		vt_load_progress(l, 5);
	}
	vt_load_stop_clean(l, 20);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* reload: workers — every worker replaced, the master stays, no request fails. */
static void test_workers_mode_replaces_every_worker(void **state)
{
	struct vt *v = *state;
	pid_t before[2], now[2];
	struct sup_load *l;

	vt_config(v, &(struct vcfg){ .count = 2, .reload = "workers" });
	vt_start(v, 2);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_workers(v, before, 2);
	for (int i = 0; i < 3; i++) {
		size_t mark = sup_log_size(v->p);

		vt_load_progress(l, 10);
		vt_reload(v, SIGHUP);
		assert_int_equal(sup_count_log(v->p, mark, "workers reload of generation"), 1);
		assert_int_equal(sup_count_log(v->p, mark, "re-exec"), 0);
		vt_workers(v, now, 2);
		assert_all_new(now, 2, before, 2);
		memcpy(before, now, sizeof now);
	}
	vt_load_progress(l, 10);
	vt_load_stop_clean(l, 4); /* one generation at least answers between reloads */
	vt_stop(v, SIGTERM, T_MS);
}

/* ---- a chain whose replacement fails ------------------------------------------------- */

/* SIGUSR2, the file now starting workers that never send READY=1 (then workers that
 * exit at once): the chain fails, the old workers serve on, the replacement is gone.
 * With the file fixed, the next chain reload goes through. */
static void test_chain_with_broken_replacement_keeps_old_workers(void **state)
{
	static const char *const broken[] = { ", --no-ready", ", --fail-start" };
	static const char *const why[] = { "was not ready within 1.0s", "exited 1 before it was ready" };
	struct vt *v = *state;
	struct sup_load *l;
	pid_t old[2], now[2], failed;

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	vt_workers(v, old, 2);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_load_progress(l, 20);
	for (int i = 0; i < 2; i++) {
		size_t mark = sup_log_size(v->p);
		char line[128];

		/* normal start priority: the reason logged must not depend on the machine's
		 * load (an idle replacement may not even reach its exit within 1 s) */
		vt_config(v, &(struct vcfg){ .count = 2, .args = broken[i], .ready_timeout = "1s",
					     .workers = "  start-priority: normal\n" });
		assert_int_equal(kill(v->p->pid, SIGUSR2), 0);
		failed = logged_pid(v, mark, "worker 1 started");
		snprintf(line, sizeof line, "chain reload failed: the new worker 1 %s", why[i]);
		assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
		assert_int_equal(sup_wait_pid_dead(failed, T_MS), 0);
		v->gen++; /* a failed chain still used a generation number */
		vt_load_progress(l, 20);
		vt_workers(v, now, 2);
		assert_same_pids(now, old, 2);
	}
	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_reload(v, SIGUSR2);
	vt_workers(v, now, 2);
	assert_all_new(now, 2, old, 2);
	vt_load_progress(l, 20);
	vt_load_stop_clean(l, 2);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* ---- edits of the file ----------------------------------------------------------------- */

/* 2 -> 4 workers and a second socket, applied by SIGHUP; an invalid file is refused
 * with file:line:col and the running workers stay; the fixed file reloads. */
static void test_config_edits(void **state)
{
	struct vt *v = *state;
	struct vcfg four = { .count = 4, .port2 = sup_free_port() };
	char text[4096], *at, path[PATH_MAX], where[PATH_MAX + 32];
	pid_t running[4], now[4];
	size_t mark;

	assert_true(four.port2 > 0 && four.port2 != v->port);
	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	assert_int_equal(sup_port_refused("127.0.0.1", four.port2, 1000), 0);
	vt_config(v, &four);
	vt_reload(v, SIGHUP);
	vt_wait_ids(v, v->port, 4);
	vt_wait_ids(v, four.port2, 4);
	vt_workers(v, running, 4);

	/* Line 7 is "  count: 4" (after two sockets of 2 lines each and "workers:"). */
	vt_config_text(v, &four, text, sizeof text);
	at = strstr(text, "count: 4");
	assert_non_null(at);
	memcpy(at, "count: X", 8);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
	mark = sup_log_size(v->p);
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "reload (SIGHUP) aborted", T_MS), 0);
	assert_non_null(realpath(v->cfg, path));
	snprintf(where, sizeof where, "%s:7:10: workers.count", path);
	assert_int_equal(sup_count_log(v->p, mark, where), 1);
	vt_workers(v, now, 4);
	assert_same_pids(now, running, 4);
	for (int i = 0; i < 8; i++) {
		struct sup_http r;

		assert_int_equal(sup_http_get("127.0.0.1", v->port, "/", &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		assert_true(pid_in((pid_t)atoi(sup_http_header(&r, "X-Worker-Pid")), running, 4));
		sup_http_fini(&r);
	}

	vt_config(v, &(struct vcfg){ .count = 3 }); /* fixed; and the second socket goes */
	vt_reload(v, SIGHUP);
	vt_wait_ids(v, v->port, 3);
	vt_workers(v, now, 3);
	assert_all_new(now, 3, running, 4);
	assert_int_equal(sup_port_refused("127.0.0.1", four.port2, 1000), 0);
	vt_stop(v, SIGTERM, T_MS);
}

static void edit_greeting(struct vt *v, const char *greeting)
{
	char args[64];

	snprintf(args, sizeof args, ", --greeting, %s", greeting);
	vt_config(v, &(struct vcfg){ .count = 2, .args = args });
}

/* 20 edits, each followed by SIGHUP, 100 ms apart, then one reload right after a
 * worker was respawned: no request fails, and the workers end up on the last edit. */
static void test_reload_storm_ends_on_latest_config(void **state)
{
	struct vt *v = *state;
	struct sup_load *l;
	char greeting[16];
	pid_t w[2];
	size_t mark;

	edit_greeting(v, "g0");
	vt_start(v, 2);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_load_progress(l, 20);
	for (int i = 1; i <= 20; i++) {
		snprintf(greeting, sizeof greeting, "g%d", i);
		edit_greeting(v, greeting);
		assert_int_equal(kill(v->p->pid, SIGHUP), 0);
		pace_ms(100);
	}
	wait_body(v, "g20 from pid", 20);
	vt_load_progress(l, 20);

	/* A worker stopped by hand is respawned; a reload comes right after. */
	vt_workers(v, w, 2);
	mark = sup_log_size(v->p);
	assert_int_equal(kill(w[0], SIGTERM), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "died young", T_MS), 0);
	logged_pid(v, mark, " started");
	edit_greeting(v, "last");
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	wait_body(v, "last from pid", 20);
	vt_load_progress(l, 20);
	vt_load_stop_clean(l, 3);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* ---- touch-reload ------------------------------------------------------------------------ */

/* Runs touch(1) on path, as a user would. */
static void run_touch(struct vt *v, const char *path)
{
	char *argv[] = { "touch", (char *)path, NULL };
	char *log = sup_path(v->dir, "touch.log");
	struct sup_proc *p = sup_spawn(argv, NULL, v->dir, log);

	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
	sup_proc_free(p);
	free(log);
}

/* One change of the file, one reload: after the reload, a status dump (SIGUSR1) is
 * logged once the master has read every inotify event the change made. */
static void assert_one_reload(struct vt *v, size_t mark, pid_t before[2])
{
	size_t after;
	pid_t now[2];

	vt_wait_generation(v, mark, v->gen + 1);
	after = sup_log_size(v->p);
	assert_int_equal(kill(v->p->pid, SIGUSR1), 0);
	assert_int_equal(sup_wait_log(v->p, after, "status: ", T_MS), 0);
	assert_int_equal(sup_count_log(v->p, mark, "reloading (touched "), 1);
	assert_int_equal(sup_count_log(v->p, mark, "queued"), 0);
	vt_workers(v, now, 2);
	assert_all_new(now, 2, before, 2);
	vt_get_ok(v, v->port, NULL);
	memcpy(before, now, sizeof now);
}

/* touch app.version, then a write of it, then a replacement by rename: each one
 * reloads, once. */
static void test_touch_reload(void **state)
{
	struct vt *v = *state;
	char *stamp = sup_path(v->dir, "app.version"), *next = sup_path(v->dir, "next.version");
	pid_t workers[2];
	size_t mark;

	assert_int_equal(sup_write_file(stamp, "1\n"), 0);
	vt_config(v, &(struct vcfg){ .count = 2, .top = "touch-reload: [app.version]\n" });
	vt_start(v, 2);
	vt_workers(v, workers, 2);
	mark = sup_log_size(v->p);
	run_touch(v, stamp);
	assert_one_reload(v, mark, workers);
	mark = sup_log_size(v->p);
	assert_int_equal(sup_write_file(stamp, "2\n"), 0);
	assert_one_reload(v, mark, workers);
	mark = sup_log_size(v->p);
	assert_int_equal(sup_write_file(next, "3\n"), 0);
	assert_int_equal(rename(next, stamp), 0);
	assert_one_reload(v, mark, workers);
	vt_stop(v, SIGTERM, T_MS);
	free(stamp), free(next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VT_TEST(test_load_through_graceful_and_chain_reloads),
		VT_TEST(test_workers_mode_replaces_every_worker),
		VT_TEST(test_chain_with_broken_replacement_keeps_old_workers),
		VT_TEST(test_config_edits),
		VT_TEST(test_reload_storm_ends_on_latest_config),
		VT_TEST(test_touch_reload),
	};

	sup_init();
	return cmocka_run_group_tests_name("vassal reloads", tests, NULL, NULL);
}
