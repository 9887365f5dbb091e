/* children_fixture.h — what test_children.c and test_spooler.c share: a temp dir
 * with a vassal file written by the test ("v.yaml": the vassal is named "v"), the
 * master started on it with sup_spawn (its output and its children's in one log),
 * reloads and the stop that checks the exit status, sanitizer reports in the log and
 * leftovers, and finding lines in that log (exit lines, logged pids, timestamps).
 * Include after cmocka.h. Helpers are static and may go unused in one of the files. */
#ifndef EMPEROR_CHILDREN_FIXTURE_H
#define EMPEROR_CHILDREN_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/support.h"

#define T_MS 10000            /* bound of every wait that should succeed at once */
#define MAX_PIDS 64
#define CT_HELPER static __attribute__((unused))
#define CT_TEST(f) cmocka_unit_test_setup_teardown(f, ct_setup, ct_teardown)

struct ct {
	char *dir;
	char *cfg;                /* dir/v.yaml: the vassal is named "v" */
	char *log;                /* the master's output and its children's */
	char *vassal, *worker, *mule;
	int port;
	struct sup_proc *p;       /* the master */
	struct sup_proc *extra;   /* a process of the test's own (a daemon to adopt) */
};

/* ---- fixture ------------------------------------------------------------------------------ */

CT_HELPER int ct_setup(void **state)
{
	struct ct *t = calloc(1, sizeof *t);

	assert_non_null(t);
	t->dir = sup_tmpdir();
	assert_non_null(t->dir);
	t->cfg = sup_path(t->dir, "v.yaml");
	t->log = sup_path(t->dir, "vassal.log");
	t->vassal = sup_bin("vassal");
	t->worker = sup_bin("examples/hello-worker");
	t->mule = sup_bin("examples/mule");
	assert_int_equal(access(t->vassal, X_OK), 0);
	assert_int_equal(access(t->worker, X_OK), 0);
	assert_int_equal(access(t->mule, X_OK), 0);
	t->port = sup_free_port();
	assert_true(t->port > 0);
	*state = t;
	return 0;
}

CT_HELPER int ct_teardown(void **state)
{
	struct ct *t = *state;

	sup_proc_free(t->p);
	sup_proc_free(t->extra);
	sup_wait_no_leftovers(2000); /* after a failure: the next test starts clean */
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", t->dir);
	else
		sup_rmtree(t->dir);
	free(t->dir), free(t->cfg), free(t->log);
	free(t->vassal), free(t->worker), free(t->mule);
	free(t);
	return 0;
}

/* Writes path from a format (atomically). */
CT_HELPER void write_fmt(const char *path, const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) >= 0);
	va_end(ap);
	assert_int_equal(sup_write_file_atomic(path, text), 0);
	free(text);
}

/* "dir/name", in a static ring so that a few can be used in one expression. */
CT_HELPER const char *in_dir(const struct ct *t, const char *name)
{
	static char ring[8][512];
	static int next;
	char *s = ring[next++ % 8];

	snprintf(s, sizeof ring[0], "%s/%s", t->dir, name);
	return s;
}

/* Starts the master and waits until its n workers are ready (n = 0: no workers). */
CT_HELPER void start(struct ct *t, int n)
{
	char *argv[] = { t->vassal, t->cfg, NULL };
	char line[64];

	t->p = sup_spawn(argv, NULL, t->dir, t->log);
	assert_non_null(t->p);
	snprintf(line, sizeof line, "ready: %d workers, generation 1", n);
	assert_int_equal(sup_wait_log(t->p, 0, line, T_MS), 0);
}

/* Sends SIGHUP and waits until generation gen is ready. */
CT_HELPER void reload(struct ct *t, unsigned gen)
{
	size_t mark = sup_log_size(t->p);
	char line[64];

	assert_int_equal(kill(t->p->pid, SIGHUP), 0);
	snprintf(line, sizeof line, "reload complete: generation %u ready", gen);
	assert_int_equal(sup_wait_log(t->p, mark, line, T_MS), 0);
}

CT_HELPER void assert_log_clean(const struct ct *t)
{
	static const char *const bad[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					   "runtime error", NULL };

	for (int i = 0; bad[i]; i++)
		if (sup_count_file(t->log, 0, bad[i]) > 0) {
			fprintf(stderr, "%s: \"%s\" found\n", t->log, bad[i]);
			sup_print_tail(t->log, 60);
			fail();
		}
}

/* SIGTERM: the master exits 0 and nothing of the test is left. */
CT_HELPER void stop(struct ct *t)
{
	assert_int_equal(kill(t->p->pid, SIGTERM), 0);
	if (sup_wait_exit(t->p, 20000) < 0) {
		sup_print_tail(t->log, 40);
		fail();
	}
	if (!WIFEXITED(t->p->status) || WEXITSTATUS(t->p->status) != 0) {
		fprintf(stderr, "master: %s, expected exit 0\n", sup_status_str(t->p->status));
		sup_print_tail(t->log, 40);
		fail();
	}
	assert_log_clean(t);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* ---- the log ---------------------------------------------------------------------------- */

/* Offset of the first line that starts at/after from and holds every needle
 * (NULL-terminated list), or -1. */
CT_HELPER long line_with(const char *path, size_t from, const char *const needles[])
{
	char *text = sup_read_file(path), *line;
	long found = -1;

	assert_non_null(text);
	assert_true(from <= strlen(text));
	line = text + from;
	if (from > 0 && line[-1] != '\n') /* mid-line: from the next one */
		line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line);
	while (found < 0 && *line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		int all = 1;
		for (int i = 0; all && needles[i]; i++)
			all = strstr(line, needles[i]) != NULL;
		if (all)
			found = line - text;
		if (!nl)
			break;
		line = nl + 1;
	}
	free(text);
	return found;
}

/* Offset of the master's line "NAME (pid N) exited/killed/ended ..." after from. */
CT_HELPER long exit_line(const struct ct *t, size_t from, const char *name)
{
	static const char *const how[] = { ") exited ", ") killed by ", ") ended " };
	char who[160];
	long best = -1;

	snprintf(who, sizeof who, "vassal v[%d]: %s (pid ", (int)t->p->pid, name);
	for (size_t i = 0; i < sizeof how / sizeof *how; i++) {
		const char *needles[] = { who, how[i], NULL };
		long at = line_with(t->log, from, needles);
		if (at >= 0 && (best < 0 || at < best))
			best = at;
	}
	return best;
}

/* The number after needle in the last line at/after from that has it, or -1. */
CT_HELPER long number_after(const char *path, size_t from, const char *needle)
{
	char *text = sup_read_file(path), *p, *last = NULL;
	long n = -1;

	assert_non_null(text);
	for (p = text + from; (p = strstr(p, needle)); p++)
		last = p;
	if (last)
		n = strtol(last + strlen(needle), NULL, 10);
	free(text);
	return n;
}

/* The pid the master logged for "NAME started (pid N)" (the latest since from). */
CT_HELPER pid_t started_pid(const struct ct *t, size_t from, const char *name)
{
	char needle[128];
	long deadline = sup_now_ms() + T_MS;
	long pid;

	snprintf(needle, sizeof needle, "%s started (pid ", name);
	assert_int_equal(sup_wait_file(t->log, from, needle, (int)(deadline - sup_now_ms())), 0);
	pid = number_after(t->log, from, needle);
	assert_true(pid > 1);
	return (pid_t)pid;
}

/* Seconds since midnight of the log line at offset (its "HH:MM:SS.mmm" stamp). */
CT_HELPER double stamp_at(const char *path, long offset)
{
	char *text = sup_read_file(path);
	int h, m;
	double s;

	assert_non_null(text);
	assert_int_equal(sscanf(text + offset + 11, "%d:%d:%lf", &h, &m, &s), 3);
	free(text);
	return h * 3600 + m * 60 + s;
}

/* Offset of the master's exit line for name; fails if there is none. */
CT_HELPER long must_exit_line(const struct ct *t, size_t from, const char *name)
{
	long at = exit_line(t, from, name);

	if (at < 0) {
		fprintf(stderr, "no exit line for \"%s\" after offset %zu\n", name, from);
		sup_print_tail(t->log, 80);
		fail();
	}
	return at;
}

CT_HELPER void assert_before(long a, const char *what_a, long b, const char *what_b)
{
	if (!(a < b)) {
		fprintf(stderr, "expected %s (offset %ld) before %s (offset %ld)\n", what_a, a,
			what_b, b);
		fail();
	}
}

/* Lines of a file that equal want exactly. */
CT_HELPER int count_lines(const char *path, const char *want)
{
	char *text = sup_read_file(path);
	int n = 0;

	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		n += strcmp(line, want) == 0;
		if (!nl)
			break;
		line = nl + 1;
	}
	free(text);
	return n;
}

/* Waits until needle appears n times in the log after from. */
CT_HELPER void wait_count(const struct ct *t, size_t from, const char *needle, int n)
{
	long long deadline = sup_now_ms() + T_MS;

	while (sup_count_file(t->log, from, needle) < n && sup_now_ms() < deadline)
		sup_poll_pause();
	if (sup_count_file(t->log, from, needle) < n) {
		fprintf(stderr, "\"%s\" seen %d times, expected %d\n", needle,
			sup_count_file(t->log, from, needle), n);
		sup_print_tail(t->log, 40);
		fail();
	}
}

#endif
