/* test_emperor.c — the emperor run for real on a temp directory of vassal files:
 * vassal masters and hello-workers serve on loopback while the test acts on the
 * directory as a user would (drop, touch, edit, break, delete, rename, symlink, a
 * ConfigMap swap, editor droppings, fifty files at once, the directory itself going
 * away) and checks the emperor's log, the pids and the HTTP answers. The tests of the
 * emperor's signals, throttle and heartbeat are in test_emperor_signals.c; both share
 * emperor_fixture.h. Every test ends with the emperor stopped by SIGTERM (exit 0) and
 * no process of ours left. */
#include "emperor_fixture.h"

#include <dirent.h>
#include <sys/stat.h>

/* ---- a file appears, is touched, edited, broken, removed, renamed ------------------ */

static void test_drop_serves(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	long long t0;
	pid_t master, worker;
	size_t m;

	emperor_start(f, NULL);
	m = mark(f);
	t0 = sup_now_ms();
	put_vassal_in_place(f, "a.yaml", port, "hello");
	worker = wait_serving(port, "hello", T_MS);
	printf("# drop to first 200: %lld ms\n", sup_now_ms() - t0);
	master = started_pid(f, m, "a");
	wait_line(f, m, " a: ready after ");
	assert_int_equal(sup_pid_ppid(master), f->proc->pid);
	assert_int_equal(sup_pid_ppid(worker), master);
	emperor_stop(f);
}

static void test_touch_reloads_gracefully(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master, old_worker, new_worker;
	struct sup_load_stats s;
	struct sup_load *load;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", port, "hello");
	old_worker = wait_vassal(f, "a", port, "hello");
	master = started_pid(f, 0, "a");
	load = sup_load_start("127.0.0.1", port, "/");
	assert_non_null(load);
	assert_int_equal(sup_load_wait_ok(load, 20, T_MS), 0);

	m = mark(f);
	touch_path(f->vdir, "a.yaml", 0);
	wait_line(f, m, " a: reloading (touched)");
	wait_line(f, m, " a: reloaded (touched) in ");
	new_worker = wait_other_worker(port, old_worker, T_MS);
	assert_int_equal(sup_load_wait_ok(load, load_ok(load) + 20, T_MS), 0);
	sup_load_stop(load, &s);

	assert_int_equal(sup_pid_ppid(new_worker), master);
	assert_int_equal(count_lines(f, m, " a: started (pid "), 0);
	assert_true(sup_pid_alive(master));
	if (s.non200 || s.connect_errors || s.io_errors || s.n_pids != 2) {
		sup_load_print("requests during the reload", &s);
		fail();
	}
	emperor_stop(f);
}

static void test_edit_reloads_new_greeting(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master, worker;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", port, "hello");
	worker = wait_vassal(f, "a", port, "hello");
	master = started_pid(f, 0, "a");

	m = mark(f);
	put_vassal_in_place(f, "a.yaml", port, "bonjour");
	wait_line(f, m, " a: reloaded (changed) in ");
	assert_true(wait_serving(port, "bonjour", T_MS) != worker);
	assert_int_equal(count_lines(f, m, " a: started (pid "), 0);
	assert_true(sup_pid_alive(master));
	emperor_stop(f);
}

static void test_broken_edit_keeps_old_config(void **state)
{
	struct fixture *f = *state;
	int port = free_port(), line = 0, col = 0;
	pid_t worker;
	char *err, *want;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", port, "hello");
	worker = wait_vassal(f, "a", port, "hello");

	m = mark(f);
	put_file(f->vdir, "a.yaml", "sockets: [{name: http, listen: \"127.0.0.1:1\"}]\n"
				    "workers: {count: many, exec: [/bin/true]}\n");
	wait_line(f, m, " a: keeps running its previous config");
	err = log_rest_of_line(f, m, " a: config error: ");
	want = sup_path(f->vdir_real, "a.yaml:");
	assert_non_null(err);
	assert_non_null(want);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    sscanf(err + strlen(want), "%d:%d: ", &line, &col) != 2 || line != 2 || col < 1) {
		fprintf(stderr, "expected \"%sLINE:COL: message\" at line 2, got \"%s\"\n", want, err);
		fail();
	}
	free(err);
	free(want);
	assert_serves(port, "hello", worker);
	assert_int_equal(count_lines(f, m, " a: reloading"), 0);

	m = mark(f);
	put_vassal(f, "a.yaml", port, "fixed");
	wait_line(f, m, " a: reloaded (changed) in ");
	assert_true(wait_serving(port, "fixed", T_MS) != worker);
	emperor_stop(f);
}

static void test_delete_stops(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master, worker;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", port, "hello");
	worker = wait_vassal(f, "a", port, "hello");
	master = started_pid(f, 0, "a");

	m = mark(f);
	remove_file(f->vdir, "a.yaml");
	wait_line(f, m, " a: stopping (file removed)");
	wait_line(f, m, " a: stopped (exited 0)");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_int_equal(sup_wait_pid_dead(worker, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	emperor_stop(f);
}

static void test_rename_hands_over_the_port(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *from, *to;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", port, "hello");
	wait_vassal(f, "a", port, "hello");

	m = mark(f);
	from = sup_path(f->vdir, "a.yaml");
	to = sup_path(f->vdir, "b.yaml");
	assert_int_equal(rename(from, to), 0);
	free(from);
	free(to);
	wait_line(f, m, " a: stopping (file removed)");
	wait_line(f, m, " b: ready after ");
	wait_serving(port, "hello", T_MS);
	assert_true(log_offset(f, m, " a: stopped (exited 0)") <
		    log_offset(f, m, " b: started (pid "));
	assert_int_equal(count_lines(f, m, "in use"), 0);
	assert_int_equal(count_lines(f, m, ": died ("), 0);
	assert_int_equal(count_lines(f, m, " b: started (pid "), 1);
	emperor_stop(f);
}

/* ---- symlinks ------------------------------------------------------------------------ */

static void test_symlink_followed(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *elsewhere = sup_path(f->dir, "elsewhere");
	pid_t worker;
	size_t m;

	assert_int_equal(mkdir(elsewhere, 0755), 0);
	put_vassal_at(f, elsewhere, "x.yaml", port, "linked");
	emperor_start(f, NULL);
	m = mark(f);
	make_symlink("../elsewhere/x.yaml", f->vdir, "x.yaml");
	worker = wait_serving(port, "linked", T_MS);
	wait_line(f, m, " x: ready after ");

	m = mark(f);
	put_vassal_at(f, elsewhere, "x.yaml", port, "relinked");
	touch_path(f->vdir, "x.yaml", AT_SYMLINK_NOFOLLOW);
	wait_line(f, m, " x: reloaded (changed) in ");
	assert_true(wait_serving(port, "relinked", T_MS) != worker);
	free(elsewhere);
	emperor_stop(f);
}

/* Kubernetes mounts a ConfigMap as ..TIMESTAMP/ files, ..data -> ..TIMESTAMP and a
 * top-level symlink per key through ..data; an update writes a new ..TIMESTAMP/,
 * points ..data_tmp at it, renames ..data_tmp over ..data and removes the old one. */
static void configmap_version(struct fixture *f, const char *version, int pa, const char *ga,
			      int pb)
{
	char *dir = sup_path(f->vdir, version);

	assert_int_equal(mkdir(dir, 0755), 0);
	put_vassal_at(f, dir, "a.yaml", pa, ga);
	put_vassal_at(f, dir, "b.yaml", pb, "bee");
	free(dir);
}

static void test_configmap_swap_reloads_only_changed(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port();
	pid_t wa, wb;
	char *tmp, *data, *old;
	size_t m;

	configmap_version(f, "..2026_a", pa, "ay", pb);
	make_symlink("..2026_a", f->vdir, "..data");
	make_symlink("..data/a.yaml", f->vdir, "a.yaml");
	make_symlink("..data/b.yaml", f->vdir, "b.yaml");
	emperor_start(f, NULL);
	wa = wait_vassal(f, "a", pa, "ay");
	wb = wait_vassal(f, "b", pb, "bee");

	m = mark(f);
	configmap_version(f, "..2026_b", pa, "ay-two", pb);
	make_symlink("..2026_b", f->vdir, "..data_tmp");
	tmp = sup_path(f->vdir, "..data_tmp");
	data = sup_path(f->vdir, "..data");
	assert_int_equal(rename(tmp, data), 0);
	free(tmp);
	free(data);
	wait_line(f, m, " a: reloaded (changed) in ");
	if (get_pid(pa, NULL, 0, T_MS) == wa)
		fail_msg("a reloaded but its old worker %d still answers", (int)wa);
	if (poll_serving(pa, "ay-two", T_MS) < 0)
		fail_msg("a reloaded its old config: a vassal master that resolved a.yaml "
			 "through ..data at start re-reads ..2026_a/a.yaml");
	old = sup_path(f->vdir, "..2026_a");
	sup_rmtree(old);
	free(old);
	sentinel(f, m);

	assert_serves(pb, "bee", wb);
	assert_int_equal(count_lines(f, m, " b: "), 0);
	assert_int_equal(count_lines(f, m, " a: reloading"), 1);
	assert_int_equal(count_lines(f, m, "ignored"), 0);
	emperor_stop(f);
}

/* ---- what is not a vassal ------------------------------------------------------------ */

static void test_editor_droppings_ignored(void **state)
{
	static const char *const droppings[] = {
		".a.yaml.swp", "a.yaml~", "#a.yaml#", "a.yaml.tmp", "4913", ".hidden.yaml",
	};
	struct fixture *f = *state;
	int ports[ARRAY_SIZE(droppings)], port = free_port();
	size_t m;

	emperor_start(f, NULL);
	m = mark(f);
	for (size_t i = 0; i < ARRAY_SIZE(droppings); i++) {
		ports[i] = free_port();
		put_vassal_in_place(f, droppings[i], ports[i], "dropping");
	}
	put_vassal(f, "real.yaml", port, "real");
	wait_serving(port, "real", T_MS);
	sentinel(f, m);

	assert_int_equal(count_lines(f, m, ": started (pid "), 1);
	assert_int_equal(count_lines(f, m, " real: started (pid "), 1);
	assert_int_equal(count_lines_except(f, m, "config error", "zz-sentinel-"), 0);
	assert_int_equal(count_lines(f, m, "ignored"), 0);
	for (size_t i = 0; i < ARRAY_SIZE(droppings); i++)
		assert_int_equal(sup_port_refused("127.0.0.1", ports[i], T_MS), 0);
	emperor_stop(f);
}

static void test_invalid_new_file_not_started(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *err;
	size_t m;

	emperor_start(f, NULL);
	m = mark(f);
	put_file(f->vdir, "bad.yaml", "sockets: [{name: http, listen: nowhere}]\n");
	wait_line(f, m, " bad: not started: invalid config");
	err = log_rest_of_line(f, m, " bad: config error: ");
	assert_non_null(err);
	assert_non_null(strstr(err, "/bad.yaml:1:"));
	free(err);
	assert_int_equal(count_lines(f, m, " bad: started"), 0);

	m = mark(f);
	put_vassal(f, "bad.yaml", port, "good");
	wait_line(f, m, " bad: ready after ");
	wait_serving(port, "good", T_MS);
	emperor_stop(f);
}

/* ---- many at once ---------------------------------------------------------------------- */

#define MANY 50

static void test_fifty_files_at_once(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .greeting = "many", .ready = "exec" };
	char *stage = sup_path(f->dir, "stage");
	int ports[MANY];
	long long t0, deadline;
	size_t m;

	assert_int_equal(mkdir(stage, 0755), 0);
	for (int i = 0; i < MANY; i++) {
		char name[32];
		snprintf(name, sizeof name, "v%02d.yaml", i);
		o.port = ports[i] = free_port();
		put_text_at(stage, name, vassal_text(f, &o));
	}
	emperor_start(f, NULL);
	m = mark(f);
	t0 = sup_now_ms();
	for (int i = 0; i < MANY; i++) {
		char name[32], *from, *to;
		snprintf(name, sizeof name, "v%02d.yaml", i);
		from = sup_path(stage, name);
		to = sup_path(f->vdir, name);
		assert_int_equal(rename(from, to), 0);
		free(from);
		free(to);
	}
	deadline = t0 + 30000;
	for (int i = 0; i < MANY; i++)
		wait_serving(ports[i], "many", (int)(deadline - sup_now_ms()));
	printf("# %d files dropped at once: all serving after %lld ms\n", MANY, sup_now_ms() - t0);
	assert_int_equal(count_lines(f, m, ": started (pid "), MANY);
	assert_int_equal(count_lines(f, m, ": died ("), 0);
	free(stage);
	emperor_stop(f);
}

/* ---- the directory itself ------------------------------------------------------------ */

/* The inotify watches pid holds (a line per watch in the fdinfo of its inotify fds). */
static int inotify_watches(pid_t pid)
{
	char path[320], target[64], *info;
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		ssize_t len;
		snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)pid, de->d_name);
		len = readlink(path, target, sizeof target - 1);
		if (len < 0 || (target[len] = '\0', strcmp(target, "anon_inode:inotify") != 0))
			continue;
		snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
		info = sup_read_file(path);
		for (char *p = info; p && (p = strstr(p, "inotify wd:")); p++)
			n++;
		free(info);
	}
	closedir(d);
	return n;
}

/* A new directory renamed into place where the watched one was. */
static void dir_comes_back(struct fixture *f, const char *const files[], const int ports[],
			   const char *const greetings[])
{
	char *fresh = sup_path(f->dir, "fresh");

	assert_int_equal(mkdir(fresh, 0755), 0);
	for (int i = 0; files[i]; i++)
		put_vassal_at(f, fresh, files[i], ports[i], greetings[i]);
	assert_int_equal(rename(fresh, f->vdir), 0);
	free(fresh);
}

/* The directory is renamed away (and deleted there), then a new one is renamed into
 * place: while it is gone every vassal keeps running; when it is back, the scan takes
 * it as a change of its files: a (same content, new inode) runs on untouched, b
 * (absent) stops, d (new content) reloads, c (new) starts. Then the directory is
 * removed where it is, files first (rm -rf), while vassal masters still have it as
 * their cwd, and comes back again: what is in it serves, what is not is stopped. The
 * emperor watches the directory and its parent, nothing more. */
static void test_dir_removed_and_back(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port(), pc = free_port(), pd = free_port();
	char *gone = sup_path(f->dir, "gone");
	pid_t wa, wb, wd;
	size_t m;

	emperor_start(f, NULL);
	put_vassal(f, "a.yaml", pa, "ay");
	put_vassal(f, "b.yaml", pb, "bee");
	put_vassal(f, "d.yaml", pd, "dee");
	wa = wait_vassal(f, "a", pa, "ay");
	wb = wait_vassal(f, "b", pb, "bee");
	wd = wait_vassal(f, "d", pd, "dee");

	m = mark(f);
	assert_int_equal(rename(f->vdir, gone), 0);
	wait_line(f, m, "was removed or renamed: vassals keep running");
	sup_rmtree(gone);
	assert_serves(pa, "ay", wa);
	assert_serves(pb, "bee", wb);
	assert_serves(pd, "dee", wd);
	dir_comes_back(f, (const char *[]){ "a.yaml", "c.yaml", "d.yaml", NULL },
		       (int[]){ pa, pc, pd }, (const char *[]){ "ay", "sea", "dee-two" });
	wait_line(f, m, "is back: rescanning");
	wait_line(f, m, " b: stopped (exited 0)");
	wait_line(f, m, " d: reloaded (changed) in ");
	wait_serving(pc, "sea", T_MS);
	assert_true(wait_serving(pd, "dee-two", T_MS) != wd);
	assert_int_equal(sup_port_refused("127.0.0.1", pb, T_MS), 0);
	assert_serves(pa, "ay", wa);
	assert_int_equal(count_lines(f, m, " a: "), 0);
	assert_int_equal(count_lines(f, m, ": died ("), 0);

	m = mark(f);
	sup_rmtree(f->vdir);
	wait_line(f, m, "was removed or renamed: vassals keep running");
	dir_comes_back(f, (const char *[]){ "a.yaml", "c.yaml", NULL }, (int[]){ pa, pc },
		       (const char *[]){ "ay", "sea" });
	wait_line(f, m, "is back: rescanning");
	wait_line(f, m, " d: stopped (exited 0)");
	wait_serving(pa, "ay", T_MS);
	wait_serving(pc, "sea", T_MS);
	assert_int_equal(sup_port_refused("127.0.0.1", pd, T_MS), 0);
	assert_int_equal(inotify_watches(f->proc->pid), 2);

	m = mark(f);
	put_vassal(f, "c.yaml", pc, "sea-two");
	wait_line(f, m, " c: reloaded (changed) in ");
	wait_serving(pc, "sea-two", T_MS);
	free(gone);
	emperor_stop(f);
}

/* A second touch while the first reload runs is merged into it (one more reload
 * follows in the master); "reloaded in N ms" counts from the first touch. The worker
 * ignores its stop signal, so the reload lasts its 2s reload-mercy; the second touch
 * comes 1s in. */
static void test_merged_touches_timed_from_first(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .port = free_port(), .greeting = "slow", .args = ", --ignore-stop",
				 .mercy = "2s" };
	long long first;
	char *rest;
	size_t m;

	emperor_start(f, NULL);
	put_file(f->vdir, "slow.yaml", vassal_text(f, &o));
	wait_vassal(f, "slow", o.port, "slow");

	m = mark(f);
	touch_path(f->vdir, "slow.yaml", 0);
	wait_line(f, m, " slow: reloading (touched)");
	first = sup_now_ms();
	while (sup_now_ms() < first + 1000) /* 1s into a reload that lasts 2s */
		sup_poll_pause();
	assert_int_equal(count_lines(f, m, " slow: reloaded ("), 0);
	touch_path(f->vdir, "slow.yaml", 0);
	wait_count(f, m, " slow: reloading (touched)", 2, T_MS);
	wait_line(f, m, " slow: reloaded (touched) in ");
	long one = log_offset(f, m, " slow: reloading (touched)");
	long two = one + 1 + log_offset(f, m + (size_t)one + 1, " slow: reloading (touched)");
	if (log_offset(f, m, " slow: reloaded (touched) in ") < two)
		fail_msg("the second touch came after the reload had ended: not merged");
	rest = log_rest_of_line(f, m, " slow: reloaded (touched) in ");
	assert_non_null(rest);
	if (atol(rest) < 1800)
		fail_msg("reloaded in %ld ms, but the first touch was about 2000 ms before", atol(rest));
	free(rest);
	emperor_stop(f);
}

/* --debug: every transition of a vassal's machine is one debug line; without it, none. */
static void test_debug_logs_transitions(void **state)
{
	static const char *const args[] = { "--debug", NULL };
	struct fixture *f = *state;
	int port = free_port();
	size_t m;

	emperor_start(f, args);
	put_vassal(f, "a.yaml", port, "dbg");
	wait_vassal(f, "a", port, "dbg");
	wait_line(f, 0, "debug: a: queued -> starting (spawned)");
	wait_line(f, 0, "debug: a: starting -> ready (READY=1)");
	m = mark(f);
	touch_path(f->vdir, "a.yaml", 0);
	wait_line(f, m, "debug: a: ready -> reloading (changed)");
	wait_line(f, m, "debug: a: reloading -> ready (READY=1)");
	remove_file(f->vdir, "a.yaml");
	wait_line(f, m, "debug: a: ready -> stopping (stop)");
	wait_line(f, m, "debug: a: stopping -> gone (exit-0)");
	assert_int_equal(count_lines(f, 0, "cannot happen"), 0);
	emperor_stop(f);
}

/* A vassal's output reaches the emperor's stderr line by line, prefixed: a line
 * written in two parts (a pause between them) comes out whole; a line longer than the
 * line buffer (4 KiB) comes out in prefixed pieces, each one write(2) of at most
 * PIPE_BUF bytes (atomic on a pipe), that add up to it. */
static void test_output_lines_whole_and_prefixed(void **state)
{
	struct fixture *f = *state;
	char text[1024], *log, *save = NULL;
	size_t xs = 0;
	int pieces = 0;

	emperor_start(f, NULL);
	snprintf(text, sizeof text,
		 "workers: {count: 1, ready: exec, exec: [sh, -c, \"printf 'first half, '; "
		 "sleep 0.2; echo second half; i=0; while [ $i -lt 100 ]; do "
		 "printf %%s xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; "
		 "echo; echo done writing; exec sleep 300\"]}\nstop-mercy: 1s\n");
	put_file(f->vdir, "out.yaml", text);
	wait_line(f, 0, "[out] done writing");
	wait_line(f, 0, "[out] first half, second half\n");
	log = log_text(f, 0);
	for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "[out] x", 7) == 0) {
			pieces++;
			xs += strspn(line + 6, "x");
			assert_true(strlen(line) + 1 <= PIPE_BUF);
			assert_int_equal(line[6 + strspn(line + 6, "x")], '\0');
		}
	free(log);
	assert_true(pieces >= 2);
	assert_int_equal(xs, 5000);
	emperor_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_drop_serves),
		TEST(test_touch_reloads_gracefully),
		TEST(test_edit_reloads_new_greeting),
		TEST(test_broken_edit_keeps_old_config),
		TEST(test_delete_stops),
		TEST(test_rename_hands_over_the_port),
		TEST(test_symlink_followed),
		TEST(test_configmap_swap_reloads_only_changed),
		TEST(test_editor_droppings_ignored),
		TEST(test_fifty_files_at_once),
		TEST(test_dir_removed_and_back),
		TEST(test_merged_touches_timed_from_first),
		TEST(test_debug_logs_transitions),
		TEST(test_output_lines_whole_and_prefixed),
		TEST(test_invalid_new_file_not_started),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
