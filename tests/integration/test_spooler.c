/* test_spooler.c — the spooler, run for real: durability (1,000 tasks through
 * SIGKILLs of the spooler processes and two reloads, every task run to exit 0 at least
 * once), retries with a doubling backoff and failed/ with its notes, malformed task
 * files, --at and priority, and what `stop: graceful` and `stop: kill` do to a running
 * task on a reload. Tasks are enqueued with `vassal spool` and by hand, the way
 * docs/spooler.md tells any language to; the task programs are `sh -c` scripts that
 * record what they ran in a file. Fixture: children_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/mount.h>

#include "children_fixture.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *pid_comm(pid_t pid)
{
	char path[64], *text;

	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	text = sup_read_file(path);
	if (text && strchr(text, '\n'))
		*strchr(text, '\n') = '\0';
	return text;
}

/* Live children of parent whose comm is comm (NULL: any). */
static int children_named(pid_t parent, const char *comm, pid_t *out, int max)
{
	pid_t all[256];
	int n = sup_descendants(parent, all, 256), k = 0;

	for (int i = 0; i < n && k < max; i++) {
		if (sup_pid_ppid(all[i]) != parent || !sup_pid_alive(all[i]))
			continue;
		char *c = comm ? pid_comm(all[i]) : NULL;
		if (!comm || (c && strcmp(c, comm) == 0))
			out[k++] = all[i];
		free(c);
	}
	return k;
}

/* Runs argv to completion (bounded); its exit status must be 0. */
static void run_ok(struct ct *t, char *const argv[])
{
	struct sup_proc *p = sup_spawn(argv, NULL, t->dir, in_dir(t, "commands.log"));

	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
		fprintf(stderr, "%s: %s\n", argv[0], sup_status_str(p->status));
		sup_print_tail(in_dir(t, "commands.log"), 10);
		fail();
	}
	sup_proc_free(p);
}

/* `vassal spool DIR args...` */
static void spool_cli(struct ct *t, const char *dir, const char *a1, const char *a2,
		      const char *a3, const char *a4)
{
	char *argv[] = { t->vassal, "spool", (char *)dir, (char *)a1, (char *)a2, (char *)a3,
			 (char *)a4, NULL };

	run_ok(t, argv);
}

/* Waits until path has a line equal to want. */
static void wait_line(const char *path, const char *want, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (count_lines(path, want) == 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	if (count_lines(path, want) == 0) {
		fprintf(stderr, "%s: no line \"%s\" after %d ms\n", path, want, timeout_ms);
		sup_print_tail(path, 20);
		fail();
	}
}

/* Files in dir whose name ends with suffix (hidden ones too when suffix is ""). */
static int count_files(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = strlen(suffix);
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0 && len >= sl &&
		     strcmp(de->d_name + len - sl, suffix) == 0;
	}
	closedir(d);
	return n;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- durability ---------------------------------------------------------------- */

#define N_TASKS 1000
#define ENQUEUE_MS 4000          /* the enqueueing is spread over this long */
#define DRAIN_MS 60000           /* everything done within this long of the start */
#define MIN_KILLS 12

/* A task the way docs/spooler.md tells any language to: a hidden temp file in the
 * spool dir, fsync'ed, renamed to <id>.task. */
static void enqueue_by_hand(const char *dir, int n)
{
	char tmp[512], final[512], text[64];
	int fd, len = snprintf(text, sizeof text, "N=%d\n\n", n);

	snprintf(tmp, sizeof tmp, "%s/.tmp-test-%05d", dir, n);
	snprintf(final, sizeof final, "%s/test-%05d.task", dir, n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, (size_t)len), len);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(rename(tmp, final), 0);
}

/* How often each task 0..N_TASKS-1 ran, from the results file; the number of runs. */
static int count_runs(const char *results, int *runs)
{
	char *text = sup_read_file(results);
	int total = 0;

	memset(runs, 0, N_TASKS * sizeof *runs);
	for (char *p = text; p && *p;) {
		char *end;
		long n = strtol(p, &end, 10);
		if (end == p || *end != '\n' || n < 0 || n >= N_TASKS) {
			fprintf(stderr, "results: bad line at \"%.20s\"\n", p);
			fail();
		}
		runs[n]++;
		total++;
		p = end + 1;
	}
	free(text);
	return total;
}

static int all_ran(const char *results, int *runs)
{
	count_runs(results, runs);
	for (int i = 0; i < N_TASKS; i++)
		if (!runs[i])
			return 0;
	return 1;
}

/* SIGKILL to one of the master's spooler processes, if one runs; 1 if one was killed. */
static int kill_a_spooler(const struct ct *t)
{
	pid_t spoolers[8];
	int n = children_named(t->p->pid, "vassal-spooler", spoolers, 8);

	return n > 0 && kill(spoolers[rand() % n], SIGKILL) == 0;
}

struct chaos {
	long long next_kill_at;
	int kills, hups;
};

/* Between enqueues: a SIGKILL every 200-400 ms, a SIGHUP at a third and at two
 * thirds of the tasks (the second once the first reload is complete). */
static void chaos_step(struct ct *t, struct chaos *c, int enqueued)
{
	long long now = sup_now_ms();

	if (now >= c->next_kill_at) {
		c->kills += kill_a_spooler(t);
		c->next_kill_at = now + 200 + rand() % 201;
	}
	if (c->hups < 2 && enqueued >= (c->hups + 1) * N_TASKS / 3 &&
	    (c->hups == 0 || sup_count_log(t->p, 0, "reload complete: generation 2") > 0)) {
		assert_int_equal(kill(t->p->pid, SIGHUP), 0);
		c->hups++;
	}
}

static void test_spooler_durability(void **state)
{
	struct ct *t = *state;
	const char *spool = in_dir(t, "spool"), *results = in_dir(t, "results");
	static int runs[N_TASKS];
	struct chaos c = { .next_kill_at = sup_now_ms() + 200 };
	long long t0, deadline, enqueued_at;
	int total, duplicates = 0;
	char n[32], *spool_dir = strdup(spool), *results_path = strdup(results);

	srand((unsigned)getpid());
	write_fmt(t->cfg,
		  "spooler:\n  dir: ./spool\n  processes: 2\n  reload-mercy: 5s\n"
		  "  exec: [sh, -c, 'echo \"$SPOOL_N\" >> %s']\n",
		  results_path);
	start(t, 0);
	t0 = sup_now_ms();
	for (int i = 0; i < N_TASKS; i++) {
		if (i % 100 == 0) {
			snprintf(n, sizeof n, "N=%d", i);
			spool_cli(t, spool_dir, n, NULL, NULL, NULL);
		} else {
			enqueue_by_hand(spool_dir, i);
		}
		while (sup_now_ms() < t0 + (long long)(i + 1) * ENQUEUE_MS / N_TASKS) {
			chaos_step(t, &c, i + 1);
			sup_poll_pause();
		}
	}
	enqueued_at = sup_now_ms();
	deadline = t0 + DRAIN_MS;
	while ((c.kills < MIN_KILLS || c.hups < 2) && sup_now_ms() < deadline) {
		chaos_step(t, &c, N_TASKS);
		sup_poll_pause();
	}
	assert_int_equal(c.hups, 2);
	assert_true(c.kills >= MIN_KILLS);
	assert_int_equal(sup_wait_log(t->p, 0, "reload complete: generation 3", T_MS), 0);
	while ((count_files(spool_dir, "", ".task") > 0 || !all_ran(results_path, runs)) &&
	       sup_now_ms() < deadline)
		sup_poll_pause();

	total = count_runs(results_path, runs);
	for (int i = 0; i < N_TASKS; i++) {
		if (!runs[i])
			fprintf(stderr, "task %d never ran to exit 0\n", i);
		assert_true(runs[i] > 0);
		duplicates += runs[i] - 1;
	}
	printf("spooler: %d tasks done in %.2f s (the last %.2f s after the last enqueue) under "
	       "%d SIGKILLs and 2 reloads; %d runs, %d duplicate runs (at-least-once)\n", N_TASKS,
	       (sup_now_ms() - t0) / 1000.0, (sup_now_ms() - enqueued_at) / 1000.0, c.kills, total,
	       duplicates);
	assert_int_equal(count_files(spool_dir, "", ".task"), 0);
	assert_int_equal(count_files(spool_dir, ".", ""), 0); /* no temp file left */
	assert_int_equal(count_files(in_dir(t, "spool/failed"), "", ""), 0);
	/* The master saw them (a few may hit a spooler already on its way out). */
	assert_true(sup_count_log(t->p, 0, "killed by SIGKILL") >= MIN_KILLS / 2);
	free(spool_dir);
	free(results_path);
	stop(t);
}

/* ---- retries, failed/, malformed tasks ---------------------------------------------- */

/* The first file in dir ending with suffix, as "dir/name" (malloc'd), or NULL. */
static char *first_file(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *found = NULL;

	while (d && !found && (de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = strlen(suffix);
		if (len > sl && strcmp(de->d_name + len - sl, suffix) == 0)
			found = sup_path(dir, de->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static void wait_files(const char *dir, const char *suffix, int n)
{
	long long deadline = sup_now_ms() + T_MS;

	while (count_files(dir, "", suffix) != n && sup_now_ms() < deadline)
		sup_poll_pause();
	if (count_files(dir, "", suffix) != n) {
		fprintf(stderr, "%s: %d files *%s, expected %d\n", dir, count_files(dir, "", suffix),
			suffix, n);
		fail();
	}
}

/* The note beside a failed task holds want. */
static void assert_note(const char *note_path, const char *want)
{
	char *note = sup_read_file(note_path);

	assert_non_null(note);
	if (!strstr(note, want)) {
		fprintf(stderr, "%s: \"%s\", expected \"%s\" in it\n", note_path, note, want);
		fail();
	}
	free(note);
}

/* Offset of the spooler's "running" line for attempt k of the task named id. */
static long attempt_line(const struct ct *t, const char *id, int k)
{
	char attempt[32];

	snprintf(attempt, sizeof attempt, "attempt %d)", k);
	const char *needles[] = { id, ": running (pid", attempt, NULL };
	return line_with(t->log, 0, needles);
}

static void test_spooler_retries_and_failures(void **state)
{
	struct ct *t = *state;
	char *spool = strdup(in_dir(t, "spool")), *failed = strdup(in_dir(t, "spool/failed"));
	char *results = strdup(in_dir(t, "results")), *note, *id;

	/* cwd: / — the task path (last argument, $0 here) must still name the file. */
	write_fmt(t->cfg,
		  "spooler:\n  dir: ./spool\n  cwd: /\n  retry-backoff: 100ms\n  max-attempts: 3\n"
		  "  exec: [sh, -c, '[ -f \"$0\" ] || exit 4; echo \"$SPOOL_NAME $SPOOL_ATTEMPT\" >> %s; "
		  "case \"$SPOOL_NAME\" in retry) exit 75;; fatal) exit 3;; "
		  "sig) [ \"$SPOOL_ATTEMPT\" = 1 ] && kill -KILL $$$$;; esac; exit 0']\n",
		  results);
	start(t, 0);

	/* Exit 75: run again after 100 ms, then 200 ms; the third run gives up. */
	spool_cli(t, spool, "NAME=retry", NULL, NULL, NULL);
	wait_files(failed, ".note", 1);
	assert_int_equal(count_lines(results, "retry 1"), 1);
	assert_int_equal(count_lines(results, "retry 2"), 1);
	assert_int_equal(count_lines(results, "retry 3"), 1);
	assert_int_equal(count_lines(results, "retry 4"), 0);
	wait_files(failed, ".task", 1); /* the note is written first, then the task moved */
	note = first_file(failed, ".note");
	assert_note(note, "exit 75");
	assert_note(note, "gave up after 3 attempts");
	id = strdup(strrchr(note, '/') + 1);
	*strstr(id, ".note") = '\0';
	assert_int_equal(count_files(failed, id, ".task"), 1);
	assert_int_equal(count_files(spool, id, ".task"), 0);
	double gap1 = stamp_at(t->log, attempt_line(t, id, 2)) - stamp_at(t->log, attempt_line(t, id, 1));
	double gap2 = stamp_at(t->log, attempt_line(t, id, 3)) - stamp_at(t->log, attempt_line(t, id, 2));
	printf("retry gaps: %.3f s, %.3f s (retry-backoff 100ms, doubling)\n", gap1, gap2);
	assert_true(gap1 >= 0.099 && gap1 < 2);
	assert_true(gap2 >= 0.199 && gap2 < 2);
	free(note);
	free(id);

	/* Exit 3: straight to failed/, with a note. */
	spool_cli(t, spool, "NAME=fatal", NULL, NULL, NULL);
	wait_files(failed, ".note", 2);
	wait_files(failed, ".task", 2);
	assert_int_equal(count_lines(results, "fatal 1"), 1);
	assert_int_equal(count_lines(results, "fatal 2"), 0);
	assert_int_equal(sup_wait_file(t->log, 0, "failed: the task program exited 3", T_MS), 0);

	/* Death by a signal: a retry. */
	spool_cli(t, spool, "NAME=sig", NULL, NULL, NULL);
	wait_line(results, "sig 2", T_MS);
	assert_int_equal(count_lines(results, "sig 1"), 1);
	assert_int_equal(sup_wait_log(t->p, 0, "killed by signal 9; retry 1", T_MS), 0);

	/* A malformed file (written by hand, atomically) goes to failed/ with a note; the
	 * next good task still runs. */
	write_fmt(in_dir(t, "spool/bad.task"), "NAME=bad\nthis line has no equals sign\n\nbody\n");
	spool_cli(t, spool, "NAME=good", NULL, NULL, NULL);
	wait_line(results, "good 1", T_MS);
	wait_files(failed, ".note", 3);
	wait_files(failed, ".task", 3);
	assert_note(in_dir(t, "spool/failed/bad.note"), "malformed task: header line "
		    "'this line has no equals sign' has no '='");
	assert_int_equal(access(in_dir(t, "spool/failed/bad.task"), F_OK), 0);
	assert_int_equal(count_lines(results, "bad 1"), 0);

	wait_files(spool, ".task", 0); /* "good" is removed once its program has exited */
	assert_int_equal(count_files(spool, ".", ""), 0);
	assert_int_equal(count_lines(results, "sig 3") + count_lines(results, "good 2"), 0);
	free(spool), free(failed), free(results);
	stop(t);
}

/* ---- --at and priority ------------------------------------------------------------- */

/* The time recorded on the results line "name TIME", or -1; its line number in *line. */
static double ran_at(const char *results, const char *name, int *line)
{
	char *text = sup_read_file(results);
	size_t n = strlen(name);
	double at = -1;
	int i = 0;

	for (char *p = text; p && *p && at < 0; i++) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			at = strtod(p + n + 1, NULL);
			if (line)
				*line = i;
		}
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	free(text);
	return at;
}

static double wait_ran(const char *results, const char *name, int *line)
{
	long long deadline = sup_now_ms() + T_MS;

	while (ran_at(results, name, NULL) < 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	double at = ran_at(results, name, line);
	if (at < 0) {
		fprintf(stderr, "%s: task %s never ran\n", results, name);
		sup_print_tail(results, 20);
		fail();
	}
	return at;
}

static void test_spooler_at_and_priority(void **state)
{
	struct ct *t = *state;
	char *spool = strdup(in_dir(t, "spool")), *results = strdup(in_dir(t, "results"));
	int zero, low, high, now_line, later_line;
	double before, later, now;

	/* Queued before the spooler starts: the highest priority runs first, whatever the
	 * order of arrival. */
	assert_int_equal(mkdir(spool, 0750), 0);
	spool_cli(t, spool, "NAME=zero", NULL, NULL, NULL);
	spool_cli(t, spool, "--priority", "1", "NAME=low", NULL);
	spool_cli(t, spool, "--priority", "5", "NAME=high", NULL);
	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n"
		  "  exec: [sh, -c, 'echo \"$SPOOL_NAME $(date +%%s.%%N)\" >> %s']\n", results);
	start(t, 0);
	wait_ran(results, "zero", &zero);
	wait_ran(results, "low", &low);
	wait_ran(results, "high", &high);
	assert_true(high < low && low < zero);

	/* --at +1.5s: not before, and on time; a task queued after it runs at once. */
	before = wall_now();
	spool_cli(t, spool, "--at", "+1.5s", "NAME=later", NULL);
	spool_cli(t, spool, "NAME=now", NULL, NULL, NULL);
	now = wait_ran(results, "now", &now_line);
	later = wait_ran(results, "later", &later_line);
	printf("--at +1.5s ran %.3f s after the enqueue\n", later - before);
	assert_true(later >= before + 1.5);
	assert_true(later < before + 1.5 + 5.0); /* on time, give or take a loaded machine */
	assert_true(now < before + 1.5 && now_line < later_line);
	wait_files(spool, ".task", 0);
	free(spool), free(results);
	stop(t);
}

/* ---- stop: graceful | kill ---------------------------------------------------------------- */

/* The pid on the first line "WORD PID" of out, waited for; 0 if absent. */
static pid_t word_pid(const char *out, const char *word, int nth)
{
	char *text = sup_read_file(out), needle[32];
	pid_t pid = 0;
	int seen = 0;

	snprintf(needle, sizeof needle, "%s ", word);
	for (char *p = text; p && *p && !pid;) {
		if (strncmp(p, needle, strlen(needle)) == 0 && ++seen == nth)
			pid = (pid_t)atoi(p + strlen(needle));
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	free(text);
	return pid;
}

static pid_t wait_word_pid(const char *out, const char *word, int nth)
{
	long long deadline = sup_now_ms() + T_MS;

	while (!word_pid(out, word, nth) && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_true(word_pid(out, word, nth) > 1);
	return word_pid(out, word, nth);
}

/* A task that sleeps 2 s is running when the vassal gets SIGHUP. */
static pid_t slow_task_then_hup(struct ct *t, const char *mode, const char *out, size_t *mark)
{
	pid_t pid;

	write_fmt(t->cfg,
		  "spooler:\n  dir: ./spool\n  stop: %s\n  reload-mercy: 10s\n"
		  "  exec: [sh, -c, 'echo \"start $$$$\" >> %s; sleep 2; echo \"done $$$$\" >> %s']\n",
		  mode, out, out);
	start(t, 0);
	spool_cli(t, in_dir(t, "spool"), "N=1", NULL, NULL, NULL);
	pid = wait_word_pid(out, "start", 1);
	*mark = sup_log_size(t->p);
	assert_int_equal(kill(t->p->pid, SIGHUP), 0);
	return pid;
}

static void test_spooler_stop_graceful(void **state)
{
	struct ct *t = *state;
	char *out = strdup(in_dir(t, "out")), done[32];
	size_t mark;
	pid_t pid = slow_task_then_hup(t, "graceful", out, &mark);

	assert_int_equal(sup_wait_log(t->p, mark, "reload complete: generation 2", T_MS), 0);
	snprintf(done, sizeof done, "done %d", (int)pid);
	assert_int_equal(count_lines(out, done), 1);
	const char *task_done[] = { "vassal v spooler 1[", ".task done", NULL };
	long finished = line_with(t->log, mark, task_done);
	assert_true(finished >= 0);
	assert_before(finished, "the task's end", must_exit_line(t, mark, "spooler 1"),
		      "the spooler's exit");
	assert_int_equal(sup_count_log(t->p, mark, "letting task"), 1);
	/* Done, so removed: nothing to run again after the reload. */
	assert_int_equal(count_files(in_dir(t, "spool"), "", ".task"), 0);
	assert_int_equal(word_pid(out, "start", 2), 0);
	free(out);
	stop(t);
}

static void test_spooler_stop_kill(void **state)
{
	struct ct *t = *state;
	char *out = strdup(in_dir(t, "out")), done[32];
	size_t mark;
	pid_t first = slow_task_then_hup(t, "kill", out, &mark), second;
	long long hup_at = sup_now_ms();

	/* The spooler and its task die at once, long before the task's 2 s are up. */
	long long deadline = hup_at + 2000;
	while (exit_line(t, mark, "spooler 1") < 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	must_exit_line(t, mark, "spooler 1");
	assert_true(sup_now_ms() - hup_at < 2000); /* before the task's own 2 s */
	/* The task program and what it started (its sleep) with it: nothing is left to
	 * finish the first run behind the spooler's back. */
	assert_int_equal(sup_wait_pid_dead(first, 500), 0);
	deadline = sup_now_ms() + 500;
	while (sup_pgid_alive(first) && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_false(sup_pgid_alive(first));
	assert_int_equal(sup_wait_log(t->p, mark, "reload complete: generation 2", T_MS), 0);
	/* It runs again after the reload (at-least-once), to its end this time. */
	second = wait_word_pid(out, "start", 2);
	assert_true(second != first);
	snprintf(done, sizeof done, "done %d", (int)second);
	wait_line(out, done, T_MS);
	assert_int_equal(sup_wait_log(t->p, mark, ".task done", T_MS), 0);
	snprintf(done, sizeof done, "done %d", (int)first);
	assert_int_equal(count_lines(out, done), 0);
	assert_int_equal(count_files(in_dir(t, "spool"), "", ".task"), 0);
	free(out);
	stop(t);
}

/* A task program that cannot be exec'd (started through lib/child.c): a retry, with
 * the reason, until max-attempts sends the task to failed/. */
static void test_spooler_exec_failure_retried(void **state)
{
	struct ct *t = *state;
	char *failed = strdup(in_dir(t, "spool/failed")), *note;

	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n  retry-backoff: 100ms\n  max-attempts: 2\n"
		  "  exec: [./no-such-task-program]\n");
	start(t, 0);
	spool_cli(t, in_dir(t, "spool"), "NAME=x", NULL, NULL, NULL);
	wait_files(failed, ".note", 1);
	assert_int_equal(sup_wait_log(t->p, 0, "could not be started (No such file or directory); "
				      "retry 1 in 0.1s", T_MS), 0);
	note = first_file(failed, ".note");
	assert_note(note, "gave up after 2 attempts");
	free(note);
	free(failed);
	stop(t);
}

/* ---- the counts in the master's metrics ------------------------------------------------ */

/* Waits until the master reports queued and failed tasks. */
static void wait_counts(const struct ct *t, long queued, long failed)
{
	long long deadline = sup_now_ms() + T_MS;
	long q = -1, f = -1;

	do {
		char *text = sup_master_status(t->p->pid, "metrics");
		assert_non_null(text);
		q = (long)sup_metric(text, "emperor_spool_queued_tasks{vassal=\"v\"}");
		f = (long)sup_metric(text, "emperor_spool_failed_tasks{vassal=\"v\"}");
		free(text);
		if (q == queued && f == failed)
			return;
		sup_poll_pause();
	} while (sup_now_ms() < deadline);
	fail_msg("spool counts: %ld queued, %ld failed; expected %ld, %ld", q, f, queued, failed);
}

/* The queued/failed gauges follow enqueues, failures, a retry's rewrite (the same task,
 * counted once), a task done and a failed file removed by hand, without a directory
 * scan per scrape (spool_gauge.c). */
static void test_spooler_counts_in_metrics(void **state)
{
	struct ct *t = *state;
	char *spool = strdup(in_dir(t, "spool")), *note;

	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n  retry-backoff: 1h\n"
		  "  exec: [sh, -c, 'case \"$SPOOL_NAME\" in fatal) exit 3;; retry) exit 75;; esac']\n");
	start(t, 0);
	wait_counts(t, 0, 0);
	for (int i = 0; i < 5; i++)
		spool_cli(t, spool, "--at", "+1h", "NAME=later", NULL);
	wait_counts(t, 5, 0);
	spool_cli(t, spool, "NAME=fatal", NULL, NULL, NULL);
	spool_cli(t, spool, "NAME=fatal", NULL, NULL, NULL);
	wait_counts(t, 5, 2);
	spool_cli(t, spool, "NAME=retry", NULL, NULL, NULL);
	assert_int_equal(sup_wait_log(t->p, 0, "retry 1 in 3600.0s", T_MS), 0);
	wait_counts(t, 6, 2);
	spool_cli(t, spool, "NAME=ok", NULL, NULL, NULL);
	assert_int_equal(sup_wait_log(t->p, 0, ".task done", T_MS), 0);
	wait_counts(t, 6, 2);
	note = first_file(in_dir(t, "spool/failed"), ".task");
	assert_non_null(note);
	assert_int_equal(unlink(note), 0);
	wait_counts(t, 6, 1);
	free(note);
	free(spool);
	stop(t);
}

/* ---- a full spool file system (issue 13) ---------------------------------------------- */

/* The spool dir is a 256 KiB tmpfs of the test's own (tests run as root), so that it
 * can be filled up; unmounted by the teardown, whatever the test's outcome. */
static void mount_tiny_spool(struct ct *t)
{
	const char *spool = in_dir(t, "spool");

	assert_int_equal(mkdir(spool, 0750), 0);
	if (mount("tmpfs", spool, "tmpfs", 0, "size=256k,mode=0750") < 0) {
		fprintf(stderr, "mount tmpfs on %s: %s (the test needs root)\n", spool, strerror(errno));
		fail();
	}
}

static int full_teardown(void **state)
{
	struct ct *t = *state;

	if (umount2(in_dir(t, "spool"), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		fprintf(stderr, "umount %s: %s\n", in_dir(t, "spool"), strerror(errno));
	return ct_teardown(state);
}

/* Fills the file system of dir with the hidden file dir/.fill until ENOSPC. */
static void fill_up(const char *dir)
{
	char path[512], block[4096] = { 0 };
	int fd;
	ssize_t n;

	snprintf(path, sizeof path, "%s/.fill", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	for (int i = 0; i < 1024 && (n = write(fd, block, sizeof block)) > 0; i++)
		;
	assert_int_equal(write(fd, block, sizeof block), -1);
	assert_int_equal(errno, ENOSPC);
	close(fd);
}

/* Lines of path that start with prefix. */
static int count_prefixed(const char *path, const char *prefix)
{
	char *text = sup_read_file(path);
	int n = 0;

	for (char *p = text; p && *p;) {
		n += strncmp(p, prefix, strlen(prefix)) == 0;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	free(text);
	return n;
}

#define FULL_TASK_PROGRAM \
	"  exec: [sh, -c, 'echo \"$SPOOL_NAME-$SPOOL_ATTEMPT $(date +%%s.%%N)\" >> %s; " \
	"[ \"$SPOOL_NAME\" = retry ] && exit 75; exit 0']\n"

/* A task asking for a retry on a full spool file system (its rewrite fails) is still
 * retried after the backoff, its attempts counted up to max-attempts, while the other
 * tasks run; it ends in failed/ with its file intact. Before the fix it ran again at
 * once, hundreds of times a second, and the other task never ran. */
static void test_spooler_full_disk_backs_off(void **state)
{
	struct ct *t = *state;
	char *results = strdup(in_dir(t, "results")), *spool = strdup(in_dir(t, "spool"));
	char retry_text[8300], *kept;
	double r1, r2, r3, r4, ok;

	/* A body of 8 KiB: its rewrite needs more room than the other task's removal
	 * frees (a page), so the spool stays too full for it throughout. */
	snprintf(retry_text, sizeof retry_text, "@priority=5\nNAME=retry\n\n%08192d\n", 0);
	mount_tiny_spool(t);
	write_fmt(in_dir(t, "spool/a.task"), "%s", retry_text);
	write_fmt(in_dir(t, "spool/b.task"), "NAME=ok\n\n");
	fill_up(spool);
	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n  retry-backoff: 300ms\n  max-attempts: 4\n"
		  FULL_TASK_PROGRAM, results);
	start(t, 0);
	assert_int_equal(sup_wait_log(t->p, 0, "gave up after 4 attempts", T_MS), 0);
	assert_int_equal(sup_wait_log(t->p, 0, "kept in memory", T_MS), 0);
	r1 = wait_ran(results, "retry-1", NULL);
	r2 = wait_ran(results, "retry-2", NULL);
	r3 = wait_ran(results, "retry-3", NULL);
	r4 = wait_ran(results, "retry-4", NULL);
	ok = wait_ran(results, "ok-1", NULL);
	printf("full spool: retry gaps %.3f s, %.3f s, %.3f s (backoff 300ms doubling); "
	       "runs of the retried task: %d\n", r2 - r1, r3 - r2, r4 - r3,
	       count_prefixed(results, "retry-"));
	assert_int_equal(count_prefixed(results, "retry-"), 4);
	assert_true(r2 - r1 >= 0.29 && r3 - r2 >= 0.59 && r4 - r3 >= 1.19);
	assert_true(ok < r2); /* the other task ran during the first backoff */
	assert_int_equal(count_prefixed(results, "ok-"), 1);
	/* Not lost: moved to failed/ as it was (its attempts could not be written). */
	kept = sup_read_file(in_dir(t, "spool/failed/a.task"));
	assert_non_null(kept);
	assert_string_equal(kept, retry_text);
	assert_int_equal(access(in_dir(t, "spool/a.task"), F_OK), -1);
	free(kept);
	free(results), free(spool);
	stop(t);
}

/* A task kept back in memory stays queued through a stop: its file is untouched, and
 * it runs when the vassal starts again (here with room to record its retry). */
static void test_spooler_full_disk_keeps_task(void **state)
{
	struct ct *t = *state;
	char *results = strdup(in_dir(t, "results")), *spool = strdup(in_dir(t, "spool"));
	const char *retry_text = "NAME=retry\n\n";
	char *kept;
	size_t mark;

	mount_tiny_spool(t);
	write_fmt(in_dir(t, "spool/a.task"), "%s", retry_text);
	fill_up(spool);
	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n  retry-backoff: 1h\n  max-attempts: 4\n"
		  FULL_TASK_PROGRAM, results);
	start(t, 0);
	assert_int_equal(sup_wait_log(t->p, 0, "retry 1 in 3600.0s, kept in memory", T_MS), 0);
	stop(t);
	kept = sup_read_file(in_dir(t, "spool/a.task"));
	assert_non_null(kept);
	assert_string_equal(kept, retry_text);
	free(kept);
	assert_int_equal(count_prefixed(results, "retry-"), 1);

	/* Room again: it runs, and its retry is written to its file this time. */
	assert_int_equal(unlink(in_dir(t, "spool/.fill")), 0);
	sup_proc_free(t->p);
	t->p = NULL;
	free(t->log);
	t->log = sup_path(t->dir, "vassal2.log"); /* the first one is appended to */
	mark = 0;
	start(t, 0);
	assert_int_equal(sup_wait_log(t->p, mark, "asked for a retry (exit 75); retry 1 in 3600.0s", T_MS), 0);
	kept = sup_read_file(in_dir(t, "spool/a.task"));
	assert_non_null(kept);
	assert_non_null(strstr(kept, "@attempts=1\n"));
	free(kept);
	free(results), free(spool);
	stop(t);
}

/* A task that succeeded on a spool file system that went read-only meanwhile cannot be
 * removed: it is not run again (it was, at once and over and over); the removal is
 * tried again after a backoff, and succeeds once the file system is writable. */
static void test_spooler_read_only_spool_done_once(void **state)
{
	struct ct *t = *state;
	char *results = strdup(in_dir(t, "results")), *spool = strdup(in_dir(t, "spool"));

	mount_tiny_spool(t);
	write_fmt(in_dir(t, "spool/a.task"), "NAME=ro\n\n");
	write_fmt(t->cfg, "spooler:\n  dir: ./spool\n  retry-backoff: 300ms\n"
		  "  exec: [sh, -c, 'echo \"$SPOOL_NAME-$SPOOL_ATTEMPT\" >> %s; "
		  "mount -o remount,ro %s']\n", results, spool);
	start(t, 0);
	assert_int_equal(sup_wait_log(t->p, 0, "done, but cannot remove it", T_MS), 0);
	wait_count(t, 0, "done, but cannot remove it", 2); /* tried again, still read-only */
	assert_int_equal(count_prefixed(results, "ro-"), 1);
	if (mount("tmpfs", spool, "tmpfs", MS_REMOUNT, "size=256k,mode=0750") < 0) {
		fprintf(stderr, "remount %s read-write: %s\n", spool, strerror(errno));
		fail();
	}
	assert_int_equal(sup_wait_log(t->p, 0, "task a.task done", T_MS), 0);
	assert_int_equal(access(in_dir(t, "spool/a.task"), F_OK), -1);
	assert_int_equal(count_prefixed(results, "ro-"), 1);
	free(results), free(spool);
	stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TEST(test_spooler_durability),
		CT_TEST(test_spooler_retries_and_failures),
		CT_TEST(test_spooler_at_and_priority),
		CT_TEST(test_spooler_stop_graceful),
		CT_TEST(test_spooler_stop_kill),
		CT_TEST(test_spooler_exec_failure_retried),
		CT_TEST(test_spooler_counts_in_metrics),
		cmocka_unit_test_setup_teardown(test_spooler_full_disk_backs_off, ct_setup, full_teardown),
		cmocka_unit_test_setup_teardown(test_spooler_full_disk_keeps_task, ct_setup, full_teardown),
		cmocka_unit_test_setup_teardown(test_spooler_read_only_spool_done_once, ct_setup,
						full_teardown),
	};

	sup_init();
	if (getenv("SPOOLER_TEST")) /* one test by name (a glob), for debugging */
		cmocka_set_test_filter(getenv("SPOOLER_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
