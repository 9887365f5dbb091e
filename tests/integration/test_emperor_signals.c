/* test_emperor_signals.c — the emperor's signals and its watch over running vassals,
 * for real: SIGHUP reloads every vassal at most --reload-concurrency at a time;
 * SIGTERM stops them all and exits 0; a SIGKILLed emperor leaves no orphan (each
 * vassal sees EOF on EMPEROR_FD and stops gracefully); a second SIGINT stops at once;
 * SIGUSR2 re-execs the emperor and keeps every vassal; a crash-looping vassal is
 * respawned with a growing delay while its neighbour serves on; a vassal that stops
 * sending its heartbeat is killed and respawned; a crash after a stable run leaves no
 * fd or watcher of the old run behind. Shares emperor_fixture.h with
 * test_emperor.c. */
#include "emperor_fixture.h"

#include <dirent.h>

/* ---- SIGHUP ------------------------------------------------------------------------- */

/* The most vassals between their "reloading (SIGHUP)" and "reloaded (SIGHUP)" lines;
 * *done counts the reloaded ones. */
static int max_reloading(const struct fixture *f, size_t from, int *done)
{
	char *text = log_text(f, from), *save = NULL;
	int now = 0, max = 0;

	*done = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '[')
			continue; /* a vassal's own output */
		if (strstr(line, ": reloading (SIGHUP)") && ++now > max)
			max = now;
		if (strstr(line, ": reloaded (SIGHUP) in ")) {
			now--;
			++*done;
		}
	}
	free(text);
	return max;
}

#define N_SLOW 6

static void test_sighup_reload_concurrency(void **state)
{
	static const char *const args[] = { "--reload-concurrency", "2", NULL };
	struct fixture *f = *state;
	struct vassal_opts o = { .greeting = "slow", .args = ", --ready-delay, \"300\"" };
	int ports[N_SLOW], done, max;
	pid_t workers[N_SLOW];
	size_t m;

	emperor_start(f, args);
	for (int i = 0; i < N_SLOW; i++) {
		char file[32];
		snprintf(file, sizeof file, "s%d.yaml", i);
		o.port = ports[i] = free_port();
		put_file(f->vdir, file, vassal_text(f, &o));
	}
	for (int i = 0; i < N_SLOW; i++)
		workers[i] = wait_serving(ports[i], "slow", T_MS);
	wait_count(f, 0, ": ready after ", N_SLOW, T_MS);

	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_count(f, m, ": reloaded (SIGHUP) in ", N_SLOW, 3 * T_MS);
	max = max_reloading(f, m, &done);
	printf("# SIGHUP, --reload-concurrency 2: at most %d reloading at once\n", max);
	assert_int_equal(done, N_SLOW);
	assert_int_equal(max, 2);
	for (int i = 0; i < N_SLOW; i++)
		assert_true(wait_other_worker(ports[i], workers[i], T_MS) != workers[i]);
	assert_int_equal(count_lines(f, m, ": started (pid "), 0);
	emperor_stop(f);
}

/* ---- stopping --------------------------------------------------------------------------- */

static void test_sigterm_stops_every_vassal(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port();
	pid_t ma, mb;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", pa, "ay");
	put_vassal(f, "b.yaml", pb, "bee");
	wait_vassal(f, "a", pa, "ay");
	wait_vassal(f, "b", pb, "bee");
	ma = started_pid(f, 0, "a");
	mb = started_pid(f, 0, "b");

	emperor_stop(f);
	assert_int_equal(count_lines(f, 0, " a: stopped (exited 0)"), 1);
	assert_int_equal(count_lines(f, 0, " b: stopped (exited 0)"), 1);
	assert_int_equal(count_lines(f, 0, "every vassal has stopped: exiting"), 1);
	assert_false(sup_pid_alive(ma));
	assert_false(sup_pid_alive(mb));
	assert_int_equal(sup_port_refused("127.0.0.1", pa, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", pb, T_MS), 0);
}

/* Reaps pid once it has been orphaned to us (we are a subreaper): its wait status,
 * or -1 if it is not ours to reap within timeout_ms. */
static int reap_orphan(pid_t pid, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	int status;

	while (sup_now_ms() < deadline) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != ECHILD)
			return -1;
		sup_poll_pause(); /* ECHILD: not reparented yet; 0: still running */
	}
	fprintf(stderr, "pid %d: not reaped after %d ms\n", (int)pid, timeout_ms);
	return -1;
}

static void test_sigkill_leaves_no_orphan(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port(), st;
	pid_t masters[2];
	long long t0;

	emperor_start(f, NULL);
	/* a mercy of 10 s: a stop within 8 s shows that nobody needed it */
	put_file(f->vdir, "a.yaml", vassal_text(f, &(struct vassal_opts){ .port = pa, .greeting = "ay",
									   .mercy = "10s" }));
	put_file(f->vdir, "b.yaml", vassal_text(f, &(struct vassal_opts){ .port = pb, .greeting = "bee",
									   .mercy = "10s" }));
	wait_vassal(f, "a", pa, "ay");
	wait_vassal(f, "b", pb, "bee");
	masters[0] = started_pid(f, 0, "a");
	masters[1] = started_pid(f, 0, "b");

	t0 = sup_now_ms();
	assert_int_equal(sup_stop(f->proc, SIGKILL, T_MS), 0);
	for (int i = 0; i < 2; i++) {
		st = reap_orphan(masters[i], T_MS);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("vassal master %d: %s, expected a graceful exit 0", (int)masters[i],
				 st == -1 ? "not reaped" : sup_status_str(st));
	}
	assert_int_equal(sup_wait_no_leftovers(10000), 0);
	printf("# emperor SIGKILLed: every vassal gone after %lld ms\n", sup_now_ms() - t0);
	assert_true(sup_now_ms() - t0 < 8000); /* within the mercy: nobody was killed */
	assert_int_equal(sup_port_refused("127.0.0.1", pa, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", pb, T_MS), 0);
	assert_no_sanitizer_report(f);
}

static void test_second_sigint_stops_at_once(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .port = free_port(), .greeting = "stubborn",
				 .args = ", --ignore-stop", .mercy = "30s" };
	long long t0;
	size_t m;

	emperor_start(f, NULL);
	put_file(f->vdir, "a.yaml", vassal_text(f, &o));
	wait_vassal(f, "a", o.port, "stubborn");

	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGINT), 0);
	wait_line(f, m, " a: stopping (SIGINT), SIGKILL after 30s");
	wait_line(f, m, "SIGTERM ignored (--ignore-stop)");
	t0 = sup_now_ms();
	assert_int_equal(kill(f->proc->pid, SIGINT), 0);
	assert_int_equal(sup_wait_exit(f->proc, T_MS), 0); /* not the 30 s mercy */
	printf("# second SIGINT: the emperor exited after %lld ms\n", sup_now_ms() - t0);
	assert_exited_0(f);
	wait_line(f, m, "second SIGINT");
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", o.port, T_MS), 0);
	assert_no_sanitizer_report(f);
}

/* ---- SIGUSR2 ------------------------------------------------------------------------------ */

static void test_sigusr2_upgrade_keeps_vassals(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port();
	pid_t ma, mb, wa, wb, emperor;
	size_t m;

	emperor_start(f, NULL);
	emperor = f->proc->pid;
	put_vassal(f, "a.yaml", pa, "ay");
	put_vassal(f, "b.yaml", pb, "bee");
	wa = wait_vassal(f, "a", pa, "ay");
	wb = wait_vassal(f, "b", pb, "bee");
	ma = started_pid(f, 0, "a");
	mb = started_pid(f, 0, "b");

	m = mark(f);
	assert_int_equal(kill(emperor, SIGUSR2), 0);
	wait_line(f, m, "upgrade: kept a.yaml (pid ");
	wait_line(f, m, "upgrade: kept b.yaml (pid ");
	wait_line(f, m, " watching ");
	assert_false(f->proc->exited);
	assert_int_equal(sup_pid_ppid(ma), emperor);
	assert_int_equal(sup_pid_ppid(mb), emperor);
	assert_serves(pa, "ay", wa);
	assert_serves(pb, "bee", wb);
	assert_int_equal(count_lines(f, m, ": started (pid "), 0);
	assert_int_equal(count_lines(f, m, "upgrade: unreadable"), 0);

	m = mark(f);
	touch_path(f->vdir, "a.yaml", 0);
	wait_line(f, m, " a: reloaded (touched) in ");
	assert_true(wait_other_worker(pa, wa, T_MS) != wa);
	remove_file(f->vdir, "b.yaml");
	wait_line(f, m, " b: stopped (exited 0)");
	assert_int_equal(sup_port_refused("127.0.0.1", pb, T_MS), 0);
	assert_int_equal(sup_pid_ppid(ma), emperor);
	emperor_stop(f);
}

/* ---- a crash loop beside a healthy vassal --------------------------------------------------- */

/* Milliseconds of the day from a log line's "YYYY-MM-DD HH:MM:SS.mmm" prefix. */
static long line_ms(const char *line)
{
	int h, mi, s, ms;

	if (sscanf(line, "%*d-%*d-%*d %d:%d:%d.%d", &h, &mi, &s, &ms) != 4)
		return -1;
	return ((h * 60L + mi) * 60 + s) * 1000 + ms;
}

struct crash_loop {
	double delays[32];       /* "respawn in Ys" of each death */
	int n_delays;
	long starts_ms[32];      /* time of each "started" line */
	int n_starts;
};

static void parse_crash_loop(const struct fixture *f, size_t from, const char *name,
			     struct crash_loop *cl)
{
	char *text = log_text(f, from), *save = NULL, died[64], started[64];

	snprintf(died, sizeof died, " %s: died (", name);
	snprintf(started, sizeof started, " %s: started (pid ", name);
	memset(cl, 0, sizeof *cl);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *in = strstr(line, "; respawn in ");
		if (strstr(line, died) && in && cl->n_delays < 32)
			cl->delays[cl->n_delays++] = strtod(in + strlen("; respawn in "), NULL);
		if (strstr(line, started) && cl->n_starts < 32)
			cl->starts_ms[cl->n_starts++] = line_ms(line);
	}
	free(text);
}

/* Delays double from --throttle (100ms) to --max-throttle (1s), and each respawn
 * waited (about) its delay. */
static void assert_throttled(const struct crash_loop *cl)
{
	double want = 0.1;

	for (int i = 0; i < cl->n_delays; i++, want = want * 2 < 1 ? want * 2 : 1) {
		printf("# crash loop: death %d, respawn in %.1fs\n", i + 1, cl->delays[i]);
		if (cl->delays[i] < want - 0.01 || cl->delays[i] > want + 0.01)
			fail_msg("death %d: respawn in %.2fs, expected %.2fs", i + 1, cl->delays[i], want);
		if (i + 1 < cl->n_starts) {
			long gap = cl->starts_ms[i + 1] - cl->starts_ms[i];
			if (gap < 0)
				gap += 86400000; /* midnight */
			if (gap < (long)(want * 900) - 5)
				fail_msg("respawn %d came after %ld ms, delay %.1fs", i + 1, gap, want);
		}
	}
	if (cl->n_starts < cl->n_delays || cl->n_starts > cl->n_delays + 1)
		fail_msg("%d starts for %d deaths", cl->n_starts, cl->n_delays);
}

static void test_crash_loop_throttled(void **state)
{
	struct fixture *f = *state;
	int hp = free_port(), bp = free_port();
	struct sup_load_stats s;
	struct sup_load *load;
	struct crash_loop cl;
	pid_t hm, hw;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "healthy.yaml", hp, "fine");
	hw = wait_vassal(f, "healthy", hp, "fine");
	hm = started_pid(f, 0, "healthy");
	load = sup_load_start("127.0.0.1", hp, "/");
	assert_non_null(load);
	f->held_fd = sup_listen_tcp("127.0.0.1", bp, NULL);
	assert_true(f->held_fd >= 0);

	m = mark(f);
	put_vassal(f, "crashy.yaml", bp, "late");
	wait_count(f, m, " crashy: died (exited 1) after ", 1, T_MS);
	wait_count(f, m, "; respawn in 1.0s", 2, T_MS);
	parse_crash_loop(f, m, "crashy", &cl);
	assert_throttled(&cl);
	assert_int_equal(cl.n_delays, 6);

	close(f->held_fd);
	f->held_fd = -1;
	wait_line(f, m, " crashy: ready after ");
	wait_serving(bp, "late", T_MS);

	assert_int_equal(sup_load_wait_ok(load, load_ok(load) + 20, T_MS), 0);
	sup_load_stop(load, &s);
	if (s.non200 || s.connect_errors || s.io_errors || s.n_pids != 1 || s.pids[0] != hw) {
		sup_load_print("the healthy vassal during the crash loop", &s);
		fail();
	}
	assert_int_equal(count_lines(f, m, " healthy: "), 0);
	assert_true(sup_pid_alive(hm));
	emperor_stop(f);
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

static void test_heartbeat_missed_respawns(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .port = free_port(), .greeting = "beat", .keys = "heartbeat: 1s\n" };
	pid_t old_master, old_worker, new_master;
	size_t m;

	emperor_start(f, NULL);
	put_file(f->vdir, "hb.yaml", vassal_text(f, &o));
	old_worker = wait_vassal(f, "hb", o.port, "beat");
	old_master = started_pid(f, 0, "hb");

	m = mark(f);
	assert_int_equal(kill(old_master, SIGSTOP), 0);
	f->stopped[f->n_stopped++] = old_master;
	wait_line(f, m, " hb: no heartbeat for 1.0s: reloading it");
	wait_line(f, m, " hb: still no heartbeat after 1.0s more: killing it");
	wait_line(f, m, " hb: died (killed by SIGKILL)");
	new_master = started_pid(f, m, "hb");
	assert_true(new_master != old_master);
	assert_true(wait_serving(o.port, "beat", T_MS) != old_worker);
	assert_int_equal(sup_wait_pid_dead(old_master, T_MS), 0);
	assert_int_equal(sup_wait_pid_dead(old_worker, T_MS), 0);
	wait_line(f, m, " hb: ready after ");
	emperor_stop(f);
}

/* ---- a crash after a stable run ----------------------------------------------------------- */

/* utime + stime of pid in clock ticks, from /proc/PID/stat (fields 14 and 15). */
static long long cpu_ticks(pid_t pid)
{
	char path[64], *text, *after;
	unsigned long long utime, stime;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	text = sup_read_file(path);
	assert_non_null(text);
	after = strrchr(text, ')'); /* the command name may hold spaces */
	assert_non_null(after);
	if (sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		   &stime) != 2)
		fail_msg("%s: unreadable", path);
	free(text);
	return (long long)(utime + stime);
}

/* Waits until the emperor holds want fds again; fails with the count it has. */
static void wait_fds(pid_t pid, int want)
{
	long long deadline = sup_now_ms() + T_MS;
	int n;

	while ((n = sup_count_fds(pid)) != want && sup_now_ms() < deadline)
		sup_poll_pause();
	if (n != want)
		fail_msg("the emperor holds %d fds, %d before the crashes", n, want);
}

/* A master that had stayed up past --throttle-reset is respawned at once, while its
 * dying workers still hold the old output pipe. That pipe and its watcher went with
 * the old run: the emperor used to keep them (one fd leaked per crash, its watcher
 * re-initialised while active), and then spun on the pipe's hang-up at most of a
 * core. Three such crashes: its CPU time stays near zero afterwards and it holds as
 * many fds as before. */
static void test_crash_after_stable_run_releases_everything(void **state)
{
	static const char *const args[] = { "--throttle-reset", "200ms", NULL };
	struct fixture *f = *state;
	int port = free_port(), fds;
	long long ticks, window_ms = 1000, tck = sysconf(_SC_CLK_TCK);
	size_t m = 0;

	emperor_start(f, args);
	put_vassal(f, "long.yaml", port, "steady");
	wait_vassal(f, "long", port, "steady");
	fds = sup_count_fds(f->proc->pid);
	assert_true(fds > 0);
	for (int i = 0; i < 3; i++) {
		pid_t master = started_pid(f, m, "long");
		long long up_at;
		wait_line(f, m, " long: ready after ");
		up_at = sup_now_ms();
		while (sup_now_ms() < up_at + 300) /* past --throttle-reset: a stable run */
			sup_poll_pause();
		m = mark(f);
		assert_int_equal(kill(master, SIGKILL), 0);
		wait_line(f, m, " long: died (killed by SIGKILL) after ");
		wait_line(f, m, "; respawn in 0.0s");
	}
	wait_line(f, m, " long: ready after ");
	wait_serving(port, "steady", T_MS);
	wait_fds(f->proc->pid, fds);
	ticks = cpu_ticks(f->proc->pid);
	for (long long end = sup_now_ms() + window_ms; sup_now_ms() < end;)
		sup_poll_pause(); /* the window over which the emperor's CPU time is measured */
	ticks = cpu_ticks(f->proc->pid) - ticks;
	if (ticks * 1000 > tck * window_ms / 10) /* more than 10 % of a core */
		fail_msg("the emperor used %lld ticks (%ld/s) of CPU in %lld ms of idleness", ticks,
			 (long)tck, window_ms);
	emperor_stop(f);
}

/* ---- a failed upgrade ----------------------------------------------------------------------- */

/* Every fd of pid above 2 is close-on-exec (O_CLOEXEC in /proc/PID/fdinfo/N). */
static void assert_all_cloexec(pid_t pid)
{
	char path[320], *text;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d))) {
		unsigned long flags = 0;
		const char *at;
		if (de->d_name[0] == '.' || atoi(de->d_name) <= 2)
			continue;
		snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
		text = sup_read_file(path);
		if (!text)
			continue; /* closed meanwhile */
		at = strstr(text, "flags:");
		if (!at || sscanf(at, "flags: %lo", &flags) != 1)
			fail_msg("%s: no flags", path);
		free(text);
		if (!(flags & O_CLOEXEC)) {
			closedir(d);
			fail_msg("the emperor's fd %s is not close-on-exec after a failed upgrade",
				 de->d_name);
		}
	}
	closedir(d);
}

/* SIGUSR2 while the emperor's binary is gone: the exec fails, the emperor goes on as
 * it was: every fd it opened close-on-exec again (a vassal started later must not
 * inherit another's channel or output pipe), no fd more, its signals and vassals as
 * before. */
static void test_sigusr2_failed_exec_puts_everything_back(void **state)
{
	struct fixture *f = *state;
	char *vassal_bin = sup_bin("vassal");
	const char *args[] = { "--vassal", vassal_bin, NULL };
	int pa = free_port(), pb = free_port(), fds;
	pid_t wa;
	size_t m;

	free(f->emperor);
	f->emperor = sup_copy_bin(f->dir, "emperor");
	assert_non_null(f->emperor);
	emperor_start(f, args);
	put_vassal(f, "a.yaml", pa, "ay");
	wa = wait_vassal(f, "a", pa, "ay");
	fds = sup_count_fds(f->proc->pid);
	assert_int_equal(unlink(f->emperor), 0);

	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGUSR2), 0);
	wait_line(f, m, "upgrade: execv "); /* logged once everything is put back */
	assert_all_cloexec(f->proc->pid);
	assert_int_equal(sup_count_fds(f->proc->pid), fds);
	assert_serves(pa, "ay", wa);
	put_vassal(f, "b.yaml", pb, "bee"); /* the loop, its signals and spawns go on */
	wait_serving(pb, "bee", T_MS);
	touch_path(f->vdir, "a.yaml", 0);
	wait_line(f, m, " a: reloaded (touched) in ");
	free(vassal_bin);
	emperor_stop(f);
}

/* ---- an edit resets the throttle ------------------------------------------------------------ */

/* A vassal crash-looping on a port someone else holds: its delay grew to 0.8s. An
 * edit of its file may be the fix: it starts at once, and if it dies again its delay
 * starts over from --throttle. */
static void test_edit_resets_the_throttle(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *rest;
	size_t m;

	emperor_start(f, NULL);
	f->held_fd = sup_listen_tcp("127.0.0.1", port, NULL);
	assert_true(f->held_fd >= 0);
	m = mark(f);
	put_vassal(f, "crashy.yaml", port, "one");
	wait_line(f, m, " crashy: died (exited 1) after ");
	wait_line(f, m, "; respawn in 0.8s");

	m = mark(f);
	put_vassal(f, "crashy.yaml", port, "two");
	wait_line(f, m, " crashy: started (pid ");
	wait_line(f, m, " crashy: died (exited 1) after ");
	rest = log_rest_of_line(f, m, "; respawn in ");
	assert_non_null(rest);
	if (strtod(rest, NULL) > 0.11)
		fail_msg("after the edit: respawn in %s, expected 0.1s (--throttle)", rest);
	free(rest);
	close(f->held_fd);
	f->held_fd = -1;
	wait_line(f, m, " crashy: ready after ");
	wait_serving(port, "two", T_MS);
	emperor_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_sighup_reload_concurrency),
		TEST(test_sigterm_stops_every_vassal),
		TEST(test_sigkill_leaves_no_orphan),
		TEST(test_second_sigint_stops_at_once),
		TEST(test_sigusr2_upgrade_keeps_vassals),
		TEST(test_crash_loop_throttled),
		TEST(test_heartbeat_missed_respawns),
		TEST(test_crash_after_stable_run_releases_everything),
		TEST(test_sigusr2_failed_exec_puts_everything_back),
		TEST(test_edit_resets_the_throttle),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
