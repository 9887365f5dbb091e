/* test_hostile.c — the emperor facing hostile input (issue 8), run for real: a file far
 * over the size limit, an alias bomb, a vassal file that is a FIFO or a directory (or
 * becomes one), a thousand files dropped at once, file names with a space, a newline
 * or bytes that are not UTF-8, a program that does not exist, a worker that forks
 * hundreds of sleepers, a vassal whose log device is full, an emperor whose stderr
 * nobody reads. In every case the emperor
 * logs a clear reason, never blocks, and keeps serving: a witness vassal started
 * first still answers from the same worker, and a file dropped afterwards is scanned
 * (the fixture's sentinel). Every test ends with the emperor stopped by SIGTERM (exit
 * 0) and no process of ours left. The fuzzing half of issue 8 is in tests/fuzz/. */
#include "emperor_fixture.h"

#include <stdbool.h>
#include <dirent.h>
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "util.h"

/* The witness: a hello-worker vassal that must serve through every test. */
static int witness_port;
static pid_t witness_pid;

static void start_with_witness(struct fixture *f)
{
	emperor_start(f, NULL);
	witness_port = free_port();
	put_vassal(f, "witness.yaml", witness_port, "witness");
	witness_pid = wait_vassal(f, "witness", witness_port, "witness");
}

/* The emperor is alive, its loop turns (a file dropped now is scanned) and the
 * witness answers from the same worker. */
static void assert_emperor_fine(struct fixture *f)
{
	assert_true(sup_pid_alive(f->proc->pid));
	sentinel(f, mark(f));
	assert_serves(witness_port, "witness", witness_pid);
}

/* needle appears exactly once after `from`, also after another scan. */
static void assert_logged_once(struct fixture *f, size_t from, const char *needle)
{
	wait_line(f, from, needle);
	sentinel(f, from);
	if (count_lines(f, from, needle) != 1)
		fail_msg("\"%s\" logged %d times, expected once", needle,
			 count_lines(f, from, needle));
}

/* Lines after `from` holding both a and b. */
static int count_lines_with(const struct fixture *f, size_t from, const char *a, const char *b)
{
	char *text = log_text(f, from), *save = NULL;
	int n = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, a) && strstr(line, b);
	free(text);
	return n;
}

/* Waits for " NAME: config error: ...REASON" then " NAME: not started: invalid config". */
static void wait_config_error(struct fixture *f, size_t from, const char *name, const char *reason)
{
	long long deadline = sup_now_ms() + T_MS;
	char needle[128];

	snprintf(needle, sizeof needle, " %s: config error: ", name);
	while (count_lines_with(f, from, needle, reason) == 0) {
		if (sup_now_ms() >= deadline) {
			sup_print_tail(f->log, 30);
			fail_msg("no \"%s...%s\" in the emperor's log", needle, reason);
		}
		sup_poll_pause();
	}
	snprintf(needle, sizeof needle, " %s: not started: invalid config", name);
	wait_line(f, from, needle);
}

/* ---- too large, too many nodes ------------------------------------------------------- */

#define HUGE_SIZE (10 * 1024 * 1024)

static void test_huge_file_refused(void **state)
{
	struct fixture *f = *state;
	char *text = malloc(HUGE_SIZE + 1);
	size_t m;

	assert_non_null(text);
	memset(text, '#', HUGE_SIZE);
	for (size_t i = 79; i < HUGE_SIZE; i += 80)
		text[i] = '\n';
	text[HUGE_SIZE] = '\0';
	start_with_witness(f);
	m = mark(f);
	put_file(f->vdir, "huge.yaml", text);
	free(text);
	wait_config_error(f, m, "huge", "file too large: 10485760 bytes (the limit is 1048576)");
	assert_emperor_fine(f);
	emperor_stop(f);
}

/* A billion laughs, and a flow list of 20,000 items without any alias. */
static void test_alias_bomb_refused(void **state)
{
	struct fixture *f = *state;
	char bomb[1024] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
	char *wide = malloc(20000 * 3 + 64);
	size_t m, n = 0;

	for (char c = 'b'; c <= 'j'; c++) {
		size_t len = strlen(bomb);
		snprintf(bomb + len, sizeof bomb - len, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, "
			 "*%c, *%c]\n", c, c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1,
			 c - 1, c - 1, c - 1);
	}
	strcat(bomb, "daemons: [{name: s, exec: [/bin/sleep, '60']}]\n");
	assert_non_null(wide);
	n += (size_t)sprintf(wide, "touch-reload: [");
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(wide + n, "a,");
	strcpy(wide + n, "a]\ndaemons: [{name: s, exec: [/bin/sleep, '60']}]\n");

	start_with_witness(f);
	m = mark(f);
	put_file(f->vdir, "bomb.yaml", bomb);
	put_file(f->vdir, "wide.yaml", wide);
	free(wide);
	wait_config_error(f, m, "bomb", "aliases are not supported");
	wait_config_error(f, m, "wide", "document too large or alias bomb (more than 10000 nodes)");
	assert_emperor_fine(f);
	emperor_stop(f);
}

/* ---- not a regular file ---------------------------------------------------------------- */

/* mkfifo beside the directory, then rename over `file`: the name is never missing. */
static void fifo_over(struct fixture *f, const char *file)
{
	char *tmp = sup_path(f->dir, "fifo.tmp"), *path = sup_path(f->vdir, file);

	assert_int_equal(mkfifo(tmp, 0644), 0);
	assert_int_equal(rename(tmp, path), 0);
	free(tmp);
	free(path);
}

/* New candidates that are a FIFO and a directory are logged once and never opened
 * (opening a FIFO for reading waits for a writer). A halted vassal's file replaced by a
 * FIFO, then SIGHUP (which starts halted vassals again): refused with the reason, no
 * block. A running vassal's file replaced by a FIFO: logged once, it keeps running. */
static void test_fifo_and_directory_ignored(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *dir = sup_path(f->vdir, "dir.yaml"), *fifo = sup_path(f->vdir, "fifo.yaml");
	pid_t victim;
	size_t m;

	start_with_witness(f);
	m = mark(f);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_logged_once(f, m, "/fifo.yaml: ignored: not a regular file");
	assert_logged_once(f, m, "/dir.yaml: ignored: not a regular file");

	m = mark(f);
	put_file(f->vdir, "halted.yaml", "workers: {exec: []}\n");
	wait_line(f, m, " halted: not started: invalid config");
	fifo_over(f, "halted.yaml");
	assert_logged_once(f, m, "/halted.yaml: ignored: not a regular file");
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_config_error(f, m, "halted", "not a regular file: a FIFO");
	wait_line(f, m, " witness: reloaded (SIGHUP) in ");
	witness_pid = wait_other_worker(witness_port, witness_pid, T_MS);

	m = mark(f);
	put_vassal(f, "victim.yaml", port, "victim");
	wait_line(f, m, " victim: ready after ");
	victim = wait_serving(port, "victim", T_MS);
	fifo_over(f, "victim.yaml");
	assert_logged_once(f, m, "/victim.yaml: ignored: not a regular file");
	assert_serves(port, "victim", victim);
	assert_emperor_fine(f);
	free(dir);
	free(fifo);
	emperor_stop(f);
}

/* ---- a thousand files at once ------------------------------------------------------------ */

/* Under ASan every master is a sanitized process, several times heavier in CPU and
 * memory: on this 2-core machine a thousand took 56 s to be ready, and once their
 * stop did not finish in 60 s (not understood yet: see the closing note of issue 13).
 * The sanitized run checks the same paths with 300; the plain build with 1,000. */
#ifdef __SANITIZE_ADDRESS__
#define THOUSAND 300
#else
#define THOUSAND 1000
#endif

/* Waits until needle appears n times after `from`, polling slowly (the log is long). */
static long long wait_count_slowly(struct fixture *f, size_t from, const char *needle, int n,
				   int timeout_ms)
{
	long long t0 = sup_now_ms();

	while (count_lines(f, from, needle) < n) {
		if (sup_now_ms() - t0 >= timeout_ms) {
			sup_print_tail(f->log, 20);
			fail_msg("\"%s\" %d times of %d after %d ms", needle,
				 count_lines(f, from, needle), n, timeout_ms);
		}
		usleep(50000);
	}
	return sup_now_ms() - t0;
}

/* The emperor's `status --json` through its control socket ("OK\n" then the document),
 * parsed; NULL if it did not answer within T_MS. */
static struct json_object *control_status(const struct fixture *f)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long long deadline = sup_now_ms() + T_MS;
	struct strbuf b = { 0 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct json_object *doc = NULL;
	char buf[65536];
	ssize_t n = 1;

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/control.sock", f->dir);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(send(fd, "status --json\n", 14, MSG_NOSIGNAL), 14);
	while (n > 0 && sup_now_ms() < deadline && poll(&pfd, 1, 100) >= 0)
		if (pfd.revents && (n = recv(fd, buf, sizeof buf, 0)) > 0)
			strbuf_append(&b, buf, (size_t)n);
	close(fd);
	if (n == 0 && b.p && strncmp(b.p, "OK\n", 3) == 0)
		doc = json_tokener_parse(b.p + 3);
	strbuf_free(&b);
	return doc;
}

/* In one answer of the control socket: the burst's vassals (s0000...) with a process,
 * and those recorded without one yet (queued to start). */
static void burst_counts(const struct fixture *f, int *started, int *queued)
{
	struct json_object *doc = control_status(f), *list, *v, *name, *pid;

	*started = *queued = 0;
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "vassals", &list));
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		v = json_object_array_get_idx(list, i);
		if (!json_object_object_get_ex(v, "name", &name) || !json_object_object_get_ex(v, "pid", &pid) ||
		    strspn(json_object_get_string(name), "s0123456789") != 5)
			continue;
		if (json_object_get_int(pid) > 0)
			(*started)++;
		else
			(*queued)++;
	}
	json_object_put(doc);
}

/* Vassals with one daemon each (sleep), written to a staging directory and renamed
 * into the watched one while the emperor is stopped, so that one scan finds them all:
 * all start, none dies, the witness serves. The emperor starts 16 per loop iteration
 * and takes its I/O in between, so its control socket answers while the burst is
 * still starting: one answer shows the whole burst recorded, part of it started and
 * the rest queued (started in one go, every answer would show none or all of it
 * started). Then all are removed at once and all stop. */
static void test_thousand_files_at_once(void **state)
{
	struct fixture *f = *state;
	char *stage = sup_path(f->dir, "stage");
	long long ready_ms, stop_ms;
	size_t m;

	assert_int_equal(mkdir(stage, 0755), 0);
	for (int i = 0; i < THOUSAND; i++) {
		char name[32];
		snprintf(name, sizeof name, "s%04d.yaml", i);
		put_text_at(stage, name, "daemons: [{name: s, exec: [/bin/sleep, '3600']}]\n");
	}
	start_with_witness(f);
	m = mark(f);
	f->stopped[f->n_stopped++] = f->proc->pid; /* the teardown's SIGCONT if we fail */
	assert_int_equal(kill(f->proc->pid, SIGSTOP), 0);
	for (int i = 0; i < THOUSAND; i++) {
		char name[32], *from, *to;
		snprintf(name, sizeof name, "s%04d.yaml", i);
		from = sup_path(stage, name);
		to = sup_path(f->vdir, name);
		assert_int_equal(rename(from, to), 0);
		free(from);
		free(to);
	}
	assert_int_equal(kill(f->proc->pid, SIGCONT), 0);
	f->n_stopped = 0;
	long long t0 = sup_now_ms();
	int started = 0, queued = 0;
	while (!(started > 0 && started + queued == THOUSAND && queued > 0) && started < THOUSAND &&
	       sup_now_ms() - t0 < 60000)
		burst_counts(f, &started, &queued);
	printf("# the control socket answered %lld ms after the burst with %d of %d started, %d "
	       "queued\n", sup_now_ms() - t0, started, THOUSAND, queued);
	assert_true(started > 0 && queued > 0 && started + queued == THOUSAND);
	ready_ms = wait_count_slowly(f, m, ": ready after ", THOUSAND, 60000);
	printf("# %d files dropped at once: all ready after %lld ms\n", THOUSAND, ready_ms);
	assert_int_equal(count_lines(f, m, ": started (pid "), THOUSAND);
	assert_int_equal(count_lines(f, m, ": died ("), 0);
	assert_emperor_fine(f);

	m = mark(f);
	for (int i = 0; i < THOUSAND; i++) {
		char name[32];
		snprintf(name, sizeof name, "s%04d.yaml", i);
		remove_file(f->vdir, name);
	}
	stop_ms = wait_count_slowly(f, m, ": stopped (exited 0)", THOUSAND, 60000);
	printf("# %d files removed at once: all stopped after %lld ms\n", THOUSAND, stop_ms);
	assert_emperor_fine(f);
	free(stage);
	emperor_stop(f);
}

/* ---- file names ------------------------------------------------------------------------- */

/* A space, a newline and bytes that are not UTF-8: each vassal serves, its name shows
 * escaped in every line, and no raw newline or stray byte of a name reaches the log. */
static void test_odd_file_names(void **state)
{
	static const char *const files[] = { "with space.yaml", "new\nline.yaml",
					      "bad\xff\xfe.yaml" };
	static const char *const shown[] = { " with space: ready after ", " new\\nline: ready after ",
					     " bad\\xFF\\xFE: ready after " };
	struct fixture *f = *state;
	int ports[3];
	char *log;

	start_with_witness(f);
	for (int i = 0; i < 3; i++) {
		ports[i] = free_port();
		put_vassal(f, files[i], ports[i], "odd");
	}
	for (int i = 0; i < 3; i++) {
		wait_line(f, 0, shown[i]);
		wait_serving(ports[i], "odd", T_MS);
	}
	assert_emperor_fine(f);
	log = log_text(f, 0);
	assert_null(strstr(log, "new\nline"));
	assert_null(strchr(log, '\xff'));
	assert_non_null(strstr(log, "[new\\nline] ")); /* the master's own lines, prefixed */
	assert_non_null(strstr(log, " vassal bad\\xFF\\xFE["));
	free(log);
	emperor_stop(f);
}

/* ---- programs that misbehave -------------------------------------------------------------- */

/* The worker's program does not exist: the master logs the path and errno on each
 * attempt, with a backoff (100 ms doubling: the 4th attempt comes 0.7 s after the first),
 * and the emperor does not restart the master. */
static void test_missing_binary_throttled(void **state)
{
	static const char needle[] =
		"worker 1: cannot start /nonexistent/hostile-app: No such file or directory";
	struct fixture *f = *state;
	long long first;
	size_t m;

	start_with_witness(f);
	m = mark(f);
	put_file(f->vdir, "missing.yaml",
		 "workers: {exec: [/nonexistent/hostile-app, --flag], ready: exec}\n");
	wait_line(f, m, needle);
	first = sup_now_ms();
	wait_count(f, m, needle, 4, T_MS);
	if (sup_now_ms() - first < 500)
		fail_msg("4 exec failures within %lld ms: not throttled", sup_now_ms() - first);
	assert_int_equal(count_lines(f, m, " missing: started (pid "), 1);
	assert_int_equal(count_lines(f, m, " missing: died ("), 0);
	assert_emperor_fine(f);
	emperor_stop(f);
}

/* Live processes of ours whose command line starts with prefix. */
static int count_cmdline(const char *prefix)
{
	pid_t pids[4096];
	int n = sup_tagged_pids(pids, (int)ARRAY_SIZE(pids)), found = 0;

	for (int i = 0; i < n; i++) {
		char *cmd = sup_pid_cmdline(pids[i]);
		found += cmd && starts_with(cmd, prefix);
		free(cmd);
	}
	return found;
}

/* A worker that starts 500 sleepers (and one that leaves its process group), then
 * exits; respawned once a second. Its group is killed when it exits, the escaped
 * sleeper when the vassal stops: nothing of it is left. */
static void test_fork_bomb_contained(void **state)
{
	struct fixture *f = *state;
	long long deadline;
	int most = 0;
	size_t m;

	start_with_witness(f);
	m = mark(f);
	put_file(f->vdir, "bomb.yaml",
		 "workers:\n"
		 "  exec: [/bin/sh, -c, 'i=0; while [ $i -lt 500 ]; do /bin/sleep 3601 & "
		 "i=$((i+1)); done; setsid /bin/sleep 3602 & exit 0']\n"
		 "  ready: exec\n"
		 "  respawn-delay: 1s\n");
	/* the first round, until its group is killed: 500 forks of a shell take seconds
	 * on a loaded 2-core machine (326 in 10 s seen beside other test runs) */
	deadline = sup_now_ms() + 3 * T_MS;
	while (count_lines(f, m, "worker 1: killed what was left of its process group ") == 0) {
		int n = count_cmdline("/bin/sleep 3601");
		most = n > most ? n : most;
		if (sup_now_ms() >= deadline)
			fail_msg("the bomb's worker never exited (%d sleepers seen)", most);
		usleep(20000);
	}
	printf("# fork bomb: %d sleepers at once\n", most);
	assert_true(most >= 100);
	assert_emperor_fine(f);

	m = mark(f);
	remove_file(f->vdir, "bomb.yaml");
	wait_line(f, m, " bomb: stopped (exited 0)");
	deadline = sup_now_ms() + T_MS;
	while (count_cmdline("/bin/sleep 360") > 0) {
		if (sup_now_ms() >= deadline)
			fail_msg("%d sleepers of the bomb left", count_cmdline("/bin/sleep 360"));
		sup_poll_pause();
	}
	assert_emperor_fine(f);
	emperor_stop(f);
}

/* log: /dev/full: every line the master writes fails (ENOSPC). It starts, serves,
 * reloads and stops like any other; the emperor is not disturbed. */
static void test_log_on_full_device(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .greeting = "full", .keys = "log: /dev/full\n" };
	pid_t first, second;
	size_t m;

	start_with_witness(f);
	m = mark(f);
	o.port = free_port();
	put_file(f->vdir, "full.yaml", vassal_text(f, &o));
	wait_line(f, m, " full: ready after ");
	first = wait_serving(o.port, "full", T_MS);
	touch_path(f->vdir, "full.yaml", 0);
	wait_line(f, m, " full: reloaded (touched) in ");
	second = wait_other_worker(o.port, first, T_MS);
	assert_serves(o.port, "full", second);
	assert_int_equal(count_lines(f, m, " full: started (pid "), 1);
	assert_int_equal(count_lines(f, m, " full: died ("), 0);
	assert_int_equal(count_lines(f, m, "[full] "), 0); /* its lines went to its log */
	assert_emperor_fine(f);
	emperor_stop(f);
}

/* ---- a stderr nobody reads --------------------------------------------------------------- */

/* Reads what the FIFO has into *text (grown) until needle is in it; -1 on timeout. */
static int fifo_wait(int fd, char **text, size_t *len, const char *needle, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	char buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			*text = realloc(*text, *len + (size_t)n + 1);
			assert_non_null(*text);
			memcpy(*text + *len, buf, (size_t)n);
			*len += (size_t)n;
			(*text)[*len] = '\0';
			continue;
		}
		if (*text && strstr(*text, needle))
			return 0;
		if (sup_now_ms() >= deadline)
			return -1;
		sup_poll_pause();
	}
}

/* The emperor's stderr is a pipe that nobody reads for a while (a stalled journald).
 * A vassal writes far more than the pipe and the emperor's queue hold: the emperor
 * keeps reading it (the vassal is never stalled), its loop turns (emperorctl answers,
 * a new vassal starts and serves), and once the pipe is read again one line says how
 * many vassal lines were dropped. */
static void test_stderr_nobody_reads(void **state)
{
	struct fixture *f = *state;
	char *fifo = sup_path(f->dir, "stderr.fifo"), *flooded = sup_path(f->dir, "flooded");
	char *control = sup_path(f->dir, "control.sock"), *text = NULL, *status, vassal[1024];
	char *argv[] = { f->emperor, "--control", control, f->vdir, NULL };
	int port = free_port(), rfd;
	size_t len = 0;
	unsigned long long dropped = 0;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rfd >= 0);
	f->proc = sup_spawn(argv, NULL, NULL, fifo);
	assert_non_null(f->proc);
	assert_int_equal(fifo_wait(rfd, &text, &len, " watching ", T_MS), 0);

	snprintf(vassal, sizeof vassal,
		 "workers: {count: 1, ready: exec, exec: [sh, -c, \"i=0; while [ $i -lt 30000 ]; "
		 "do echo flood line $i, padded to fifty bytes or so; i=$((i+1)); done; "
		 ": > %s; exec sleep 300\"]}\nstop-mercy: 1s\n", flooded);
	put_file(f->vdir, "chatty.yaml", vassal);
	for (long long end = sup_now_ms() + 20000; access(flooded, F_OK) < 0;) {
		if (sup_now_ms() >= end)
			fail_msg("the vassal could not write its 1.6 MB: the emperor stopped reading it");
		sup_poll_pause();
	}
	status = emperorctl(f, NULL, "status", 3000);
	if (!status || !strstr(status, "chatty"))
		fail_msg("emperorctl status: no answer naming chatty within 3 s");
	free(status);
	put_vassal(f, "late.yaml", port, "late");
	wait_serving(port, "late", T_MS);

	assert_int_equal(fifo_wait(rfd, &text, &len, " lines of vassal output", T_MS), 0);
	const char *at = strstr(text, "dropped ");
	assert_non_null(at);
	assert_int_equal(sscanf(at, "dropped %llu lines", &dropped), 1);
	assert_true(dropped > 0);

	assert_int_equal(kill(f->proc->pid, SIGTERM), 0);
	assert_int_equal(fifo_wait(rfd, &text, &len, "every vassal has stopped: exiting", T_MS), 0);
	assert_int_equal(sup_wait_exit(f->proc, T_MS), 0);
	close(rfd);
	free(f->log);
	f->log = sup_path(f->dir, "stderr.txt"); /* what came through, for the checks */
	assert_int_equal(sup_write_file(f->log, text), 0);
	assert_exited_0(f);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
	assert_no_sanitizer_report(f);
	free(text), free(fifo), free(flooded), free(control);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_huge_file_refused),
		TEST(test_alias_bomb_refused),
		TEST(test_fifo_and_directory_ignored),
		TEST(test_thousand_files_at_once),
		TEST(test_odd_file_names),
		TEST(test_missing_binary_throttled),
		TEST(test_fork_bomb_contained),
		TEST(test_log_on_full_device),
		TEST(test_stderr_nobody_reads),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
