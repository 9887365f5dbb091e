/* emperor_fixture.h — what the emperor tests share (test_emperor, test_emperor_signals, test_hostile): a temp
 * directory with a vassals.d/ in it, the emperor started on it with a short throttle
 * (its stdout and stderr in a log file), vassal files for hello-workers on loopback
 * ports, waits on the emperor's log lines and on HTTP answers, and the end of every
 * test: SIGTERM, exit 0, no process left, no sanitizer report in the log. Included by
 * exactly those two files; the helpers are static, some unused by one of them. */
#ifndef EMPEROR_TEST_EMPEROR_FIXTURE_H
#define EMPEROR_TEST_EMPEROR_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/support.h"

#define T_MS 10000          /* bound of every wait that should succeed at once */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define HELPER static __attribute__((unused))

struct fixture {
	char *dir;               /* the test's temp directory */
	char *vdir;              /* dir/vassals.d, watched by the emperor */
	char *vdir_real;         /* its realpath, as the emperor names files */
	char *log;               /* the emperor's stdout and stderr */
	char *worker;            /* examples/hello-worker */
	char *emperor;
	struct sup_proc *proc;   /* the emperor */
	pid_t stopped[8];        /* SIGSTOPped by the test: SIGCONT in teardown */
	int n_stopped;
	int held_fd;             /* a listener the test holds on a vassal's port */
};

/* ---- set-up ------------------------------------------------------------------------ */

HELPER int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char real[PATH_MAX];

	assert_non_null(f);
	f->dir = sup_tmpdir();
	assert_non_null(f->dir);
	f->vdir = sup_path(f->dir, "vassals.d");
	assert_int_equal(mkdir(f->vdir, 0755), 0);
	assert_non_null(realpath(f->vdir, real));
	f->vdir_real = strdup(real);
	f->log = sup_path(f->dir, "emperor.log");
	f->worker = sup_bin("examples/hello-worker");
	f->emperor = sup_bin("emperor");
	assert_int_equal(access(f->worker, X_OK), 0);
	assert_int_equal(access(f->emperor, X_OK), 0);
	f->held_fd = -1;
	*state = f;
	return 0;
}

HELPER int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < f->n_stopped; i++)
		kill(f->stopped[i], SIGCONT);
	if (f->held_fd >= 0)
		close(f->held_fd);
	if (f->proc && !f->proc->exited) /* the test failed on the way */
		sup_print_tail(f->log, 60);
	sup_proc_free(f->proc); /* SIGKILL: its vassals see EOF and stop */
	if (sup_wait_no_leftovers(10000) < 0)
		fprintf(stderr, "teardown: leftovers killed\n");
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", f->dir);
	else
		sup_rmtree(f->dir);
	free(f->dir), free(f->vdir), free(f->vdir_real), free(f->log);
	free(f->worker), free(f->emperor), free(f);
	return 0;
}

/* A free loopback port below the ephemeral range (so that no client socket of ours
 * holds it), never handed out twice in a run. */
HELPER int free_port(void)
{
	static int used[1024], n_used;

	if (n_used == 0) /* two test binaries at once draw different ports */
		srandom((unsigned)getpid() ^ (unsigned)sup_now_ms());
	for (int tries = 0; tries < 1000; tries++) {
		int port = 20000 + (int)(random() % 12000), fd, dup = 0;
		for (int i = 0; i < n_used; i++)
			dup |= used[i] == port;
		if (dup)
			continue;
		sup_net_quiet(1);
		fd = sup_listen_tcp("127.0.0.1", port, NULL);
		sup_net_quiet(0);
		if (fd < 0)
			continue;
		close(fd);
		if (n_used < (int)ARRAY_SIZE(used))
			used[n_used++] = port;
		return port;
	}
	fail_msg("no free port");
	return -1;
}

/* ---- vassal files ---------------------------------------------------------------------- */

struct vassal_opts {
	int port;
	const char *greeting;
	const char *args;        /* more exec items, e.g. ", --ignore-stop"; NULL: none */
	const char *ready;       /* NULL: notify */
	const char *mercy;       /* reload-mercy and stop-mercy; NULL: 2s and 3s */
	const char *keys;        /* more top-level lines; NULL: none */
};

/* A static buffer: one hello-worker on 127.0.0.1:port. */
HELPER const char *vassal_text(const struct fixture *f, const struct vassal_opts *o)
{
	static char text[2048];

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [%s, --greeting, %s%s], ready: %s, reload-mercy: %s}\n"
		 "stop-mercy: %s\n%s",
		 o->port, f->worker, o->greeting, o->args ? o->args : "", o->ready ? o->ready : "notify",
		 o->mercy ? o->mercy : "2s", o->mercy ? o->mercy : "3s", o->keys ? o->keys : "");
	return text;
}

/* Written beside, then renamed over dir/file: nobody sees it half-written. */
HELPER void put_text_at(const char *dir, const char *file, const char *text)
{
	char *path = sup_path(dir, file);

	assert_int_equal(sup_write_file_atomic(path, text), 0);
	free(path);
}

HELPER void put_file(const char *dir, const char *file, const char *text)
{
	put_text_at(dir, file, text);
}

HELPER void put_vassal_at(const struct fixture *f, const char *dir, const char *file, int port,
			  const char *greeting)
{
	struct vassal_opts o = { .port = port, .greeting = greeting };

	put_text_at(dir, file, vassal_text(f, &o));
}

HELPER void put_vassal(const struct fixture *f, const char *file, int port, const char *greeting)
{
	put_vassal_at(f, f->vdir, file, port, greeting);
}

/* Rewritten in place (open O_TRUNC, write, close), as most editors and shells do. */
HELPER void put_vassal_in_place(const struct fixture *f, const char *file, int port,
				const char *greeting)
{
	struct vassal_opts o = { .port = port, .greeting = greeting };
	char *path = sup_path(f->vdir, file);

	assert_int_equal(sup_write_file(path, vassal_text(f, &o)), 0);
	free(path);
}

HELPER void remove_file(const char *dir, const char *file)
{
	char *path = sup_path(dir, file);

	assert_int_equal(unlink(path), 0);
	free(path);
}

HELPER void make_symlink(const char *target, const char *dir, const char *file)
{
	char *path = sup_path(dir, file);

	assert_int_equal(symlink(target, path), 0);
	free(path);
}

/* touch(1) (or touch -h with AT_SYMLINK_NOFOLLOW): a later mtime, even within the
 * file system's timestamp granularity. */
HELPER void touch_path(const char *dir, const char *file, int flags)
{
	char *path = sup_path(dir, file);
	struct timespec ts[2];
	struct stat st;

	assert_int_equal(fstatat(AT_FDCWD, path, &st, flags), 0);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts[0]), 0);
	if (ts[0].tv_sec < st.st_mtim.tv_sec ||
	    (ts[0].tv_sec == st.st_mtim.tv_sec && ts[0].tv_nsec <= st.st_mtim.tv_nsec + 10000000)) {
		ts[0] = st.st_mtim;
		ts[0].tv_sec += 1;
	}
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, flags), 0);
	free(path);
}

/* ---- the emperor and its log --------------------------------------------------------- */

/* Starts the emperor on vdir and waits until its first scan is done. */
HELPER void emperor_start(struct fixture *f, const char *const extra[])
{
	char *argv[26], *control = sup_path(f->dir, "control.sock");
	int n = 0;

	argv[n++] = f->emperor;
	argv[n++] = "--throttle";
	argv[n++] = "100ms";
	argv[n++] = "--max-throttle";
	argv[n++] = "1s";
	argv[n++] = "--control"; /* in the test's directory: nothing lands in /run */
	argv[n++] = control;
	for (int i = 0; extra && extra[i] && n < 24; i++)
		argv[n++] = (char *)extra[i];
	argv[n++] = f->vdir;
	argv[n] = NULL;
	f->proc = sup_spawn(argv, NULL, NULL, f->log);
	free(control);
	assert_non_null(f->proc);
	assert_int_equal(sup_wait_log(f->proc, 0, " watching ", T_MS), 0);
}

HELPER size_t mark(const struct fixture *f)
{
	return sup_log_size(f->proc);
}

HELPER void wait_line(struct fixture *f, size_t from, const char *needle)
{
	if (sup_wait_log(f->proc, from, needle, T_MS) < 0)
		fail_msg("no \"%s\" in the emperor's log", needle);
}

HELPER int count_lines(struct fixture *f, size_t from, const char *needle)
{
	return sup_count_log(f->proc, from, needle);
}

/* The log from `from` on, malloc'd. */
HELPER char *log_text(const struct fixture *f, size_t from)
{
	char *all = sup_read_file(f->log), *tail;
	size_t len;

	assert_non_null(all);
	len = strlen(all);
	tail = strdup(all + (from < len ? from : len));
	free(all);
	assert_non_null(tail);
	return tail;
}

/* Lines after `from` holding needle but not except. */
HELPER int count_lines_except(const struct fixture *f, size_t from, const char *needle,
			      const char *except)
{
	char *text = log_text(f, from), *save = NULL;
	int n = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, needle) && !strstr(line, except);
	free(text);
	return n;
}

/* Offset (from `from`) of the first needle; fails the test if absent. */
HELPER long log_offset(const struct fixture *f, size_t from, const char *needle)
{
	char *text = log_text(f, from), *at = strstr(text, needle);
	long off = at ? at - text : -1;

	free(text);
	if (off < 0)
		fail_msg("no \"%s\" in the emperor's log", needle);
	return off;
}

/* What follows the first needle on its line, malloc'd; NULL if absent. */
HELPER char *log_rest_of_line(const struct fixture *f, size_t from, const char *needle)
{
	char *text = log_text(f, from), *at = strstr(text, needle), *rest = NULL;

	if (at) {
		at += strlen(needle);
		rest = strndup(at, strcspn(at, "\n"));
	}
	free(text);
	return rest;
}

/* Waits for "NAME: started (pid P)" after `from`; P. */
HELPER pid_t started_pid(struct fixture *f, size_t from, const char *name)
{
	char needle[128], *rest;
	long pid;

	snprintf(needle, sizeof needle, " %s: started (pid ", name);
	wait_line(f, from, needle);
	rest = log_rest_of_line(f, from, needle);
	assert_non_null(rest);
	pid = strtol(rest, NULL, 10);
	free(rest);
	assert_true(pid > 1);
	return (pid_t)pid;
}

/* Waits until needle appears n times after `from`. */
HELPER void wait_count(struct fixture *f, size_t from, const char *needle, int n, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (count_lines(f, from, needle) < n) {
		if (sup_now_ms() >= deadline) {
			sup_print_tail(f->log, 40);
			fail_msg("\"%s\" %d times of %d after %d ms", needle,
				 count_lines(f, from, needle), n, timeout_ms);
		}
		sup_poll_pause();
	}
}

/* A file no vassal can be made of: once its "not started" line is logged, every
 * change made to the directory before it has been scanned too. */
HELPER void sentinel(struct fixture *f, size_t from)
{
	static int serial;
	char file[64], needle[96];

	snprintf(file, sizeof file, "zz-sentinel-%d.yaml", ++serial);
	snprintf(needle, sizeof needle, " zz-sentinel-%d: not started", serial);
	put_file(f->vdir, file, "not: [a, vassal\n");
	wait_line(f, from, needle);
}

/* A sanitizer report in the log, from the emperor or from a vassal ("[name] ..."
 * lines). Leak reports count from the emperor only: a vassal master that exits on an
 * error (the crash loop's cannot-bind) leaves its config to the exit. */
HELPER const char *sanitizer_report(const char *line)
{
	if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "runtime error"))
		return line;
	if (line[0] != '[' && strstr(line, "ERROR: LeakSanitizer"))
		return line;
	return NULL;
}

HELPER void assert_no_sanitizer_report(const struct fixture *f)
{
	char *text = log_text(f, 0), *save = NULL;
	const char *report = NULL;

	for (char *line = strtok_r(text, "\n", &save); line && !report;
	     line = strtok_r(NULL, "\n", &save))
		report = sanitizer_report(line);
	if (report) {
		sup_print_tail(f->log, 80);
		fprintf(stderr, "sanitizer report: %s\n", report);
		free(text);
		fail_msg("a sanitizer report in the emperor's log");
	}
	free(text);
}

HELPER void assert_exited_0(const struct fixture *f)
{
	if (!WIFEXITED(f->proc->status) || WEXITSTATUS(f->proc->status) != 0) {
		sup_print_tail(f->log, 40);
		fail_msg("the emperor %s, expected exit 0", sup_status_str(f->proc->status));
	}
}

/* SIGTERM: exit 0, nothing of ours left, a clean log. */
HELPER void emperor_stop(struct fixture *f)
{
	assert_int_equal(sup_stop(f->proc, SIGTERM, T_MS), 0);
	assert_exited_0(f);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
	assert_no_sanitizer_report(f);
}

/* `emperorctl --control CTL ARGS...` (CTL NULL: the fixture's dir/control.sock): its
 * output, malloc'd, once it exited 0 within timeout_ms; NULL otherwise (it is
 * killed). */
HELPER char *emperorctl_args(const struct fixture *f, const char *ctl, const char *const args[],
			     int timeout_ms)
{
	char *out = sup_path(f->dir, "emperorctl.out"), *text = NULL;
	char *sock = ctl ? strdup(ctl) : sup_path(f->dir, "control.sock");

	if (sup_emperorctl(sock, args, out, timeout_ms, &text) != 0) {
		free(text);
		text = NULL;
	}
	free(out), free(sock);
	return text;
}

/* The same with one command word. */
HELPER char *emperorctl(const struct fixture *f, const char *ctl, const char *cmd, int timeout_ms)
{
	return emperorctl_args(f, ctl, (const char *const[]){ cmd, NULL }, timeout_ms);
}

/* ---- HTTP ---------------------------------------------------------------------------- */

/* One GET /: the worker's pid, or -1; the body's first line in greeting (if set). */
HELPER pid_t get_pid(int port, char *body, size_t size, int timeout_ms)
{
	struct sup_http r;
	const char *hdr;
	pid_t pid = -1;

	if (sup_http_get("127.0.0.1", port, "/", &r, timeout_ms) < 0)
		return -1;
	hdr = sup_http_header(&r, "X-Worker-Pid");
	if (r.status == 200 && hdr)
		pid = (pid_t)atoi(hdr);
	if (body)
		snprintf(body, size, "%s", r.body ? r.body : "");
	sup_http_fini(&r);
	return pid;
}

HELPER int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Polls GET / until it answers 200 with a body starting with "GREETING from": the
 * worker's pid; -1 after timeout_ms (printing the last answer). */
HELPER pid_t poll_serving(int port, const char *greeting, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	char body[256], want[128];
	pid_t pid;

	snprintf(want, sizeof want, "%s from pid ", greeting);
	sup_net_quiet(1);
	while ((pid = get_pid(port, body, sizeof body, 1000)) <= 0 || !starts_with(body, want)) {
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "127.0.0.1:%d: no \"%s\" after %d ms (last: pid %d \"%s\")\n",
				port, want, timeout_ms, (int)pid, body);
			pid = -1;
			break;
		}
		sup_poll_pause();
	}
	sup_net_quiet(0);
	return pid;
}

HELPER pid_t wait_serving(int port, const char *greeting, int timeout_ms)
{
	pid_t pid = poll_serving(port, greeting, timeout_ms);

	if (pid < 0)
		fail_msg("127.0.0.1:%d does not serve \"%s\"", port, greeting);
	return pid;
}

/* Polls until a worker other than old answers; its pid. */
HELPER pid_t wait_other_worker(int port, pid_t old, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	pid_t pid;

	sup_net_quiet(1);
	while ((pid = get_pid(port, NULL, 0, 1000)) <= 0 || pid == old) {
		if (sup_now_ms() >= deadline) {
			sup_net_quiet(0);
			fail_msg("127.0.0.1:%d: still pid %d after %d ms", port, (int)old, timeout_ms);
		}
		sup_poll_pause();
	}
	sup_net_quiet(0);
	return pid;
}

/* Waits until vassal `name` is first ready (logged) and serves greeting on port;
 * the worker's pid. */
HELPER pid_t wait_vassal(struct fixture *f, const char *name, int port, const char *greeting)
{
	char needle[128];

	snprintf(needle, sizeof needle, " %s: ready after ", name);
	wait_line(f, 0, needle);
	return wait_serving(port, greeting, T_MS);
}

/* One GET /: 200 from worker pid with greeting. */
HELPER void assert_serves(int port, const char *greeting, pid_t pid)
{
	char body[256], want[128];

	snprintf(want, sizeof want, "%s from pid %d ", greeting, (int)pid);
	assert_int_equal(get_pid(port, body, sizeof body, T_MS), pid);
	if (!starts_with(body, want))
		fail_msg("127.0.0.1:%d answered \"%s\", expected \"%s...\"", port, body, want);
}

HELPER long load_ok(struct sup_load *l)
{
	struct sup_load_stats s;

	sup_load_snapshot(l, &s);
	return s.ok;
}

#endif
