/* test_child.c — tests of lib/child.c, the mechanism every kind of child uses: spawn
 * and reap, exec failure reported with its errno, the mercy deadline ending in SIGKILL
 * of the whole process group, and the respawn backoff. Real (tiny) processes; every
 * loop run is bounded by a timer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

struct fixture {
	struct ev_loop *loop;
	struct child_set set;
	struct child c;
	int exits;
	int status;
	ev_timer guard;
};

static void on_exit_cb(struct child *c, int status)
{
	struct fixture *f = c->data;

	f->exits++;
	f->status = status;
	ev_break(f->loop, EVBREAK_ALL);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void run_until_exit(struct fixture *f, double limit)
{
	ev_timer_init(&f->guard, guard_cb, limit, 0);
	ev_timer_start(f->loop, &f->guard);
	ev_run(f->loop, 0);
	ev_timer_stop(f->loop, &f->guard);
}

static int setup(void **state)
{
	static struct fixture f;

	f = (struct fixture){ .loop = ev_default_loop(0) };
	child_set_init(&f.set, f.loop);
	child_init(&f.c, &f.set, 0, "test child");
	f.c.data = &f;
	f.c.on_exit = on_exit_cb;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (child_running(&f->c))
		kill(-f->c.pid, SIGKILL);
	child_fini(&f->c);
	child_set_fini(&f->set);
	return 0;
}

static void test_spawn_and_reap(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "sh", "-c", "exit 3", NULL };
	struct child_exec x = { .argv = argv, .out_fd = -1 };

	assert_int_equal(child_spawn(&f->c, &x), 0);
	assert_true(child_running(&f->c));
	assert_int_equal(getpgid(f->c.pid), f->c.pid); /* its own process group */
	run_until_exit(f, 5);
	assert_int_equal(f->exits, 1);
	assert_true(WIFEXITED(f->status));
	assert_int_equal(WEXITSTATUS(f->status), 3);
	assert_false(child_running(&f->c));
	assert_int_equal(f->c.state, CHILD_STOPPED);
}

static void test_exec_failure_reports_errno(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "/nonexistent/program", NULL };
	struct child_exec x = { .argv = argv, .out_fd = -1 };

	assert_int_equal(child_spawn(&f->c, &x), -1);
	assert_int_equal(f->c.exec_errno, ENOENT);
	run_until_exit(f, 5); /* the failed process is still reaped */
	assert_int_equal(f->exits, 1);
	assert_int_equal(WEXITSTATUS(f->status), 127);
}

static void test_fds_arrive_at_3_with_listen_env(void **state)
{
	struct fixture *f = *state;
	int p[2];
	char *argv[] = { "sh", "-c",
			 "[ \"$LISTEN_FDS\" = 1 ] && [ \"$LISTEN_PID\" = $$ ] && "
			 "[ \"$LISTEN_FDNAMES\" = web ] && echo ok >&3", NULL };
	char buf[8] = { 0 };

	assert_int_equal(pipe(p), 0);
	struct child_exec x = { .argv = argv, .out_fd = -1, .fds = &p[1], .n_fds = 1,
				.fdnames = "web" };
	assert_int_equal(child_spawn(&f->c, &x), 0);
	close(p[1]);
	run_until_exit(f, 5);
	assert_int_equal(WEXITSTATUS(f->status), 0);
	assert_int_equal(read(p[0], buf, sizeof buf - 1), 3);
	assert_string_equal(buf, "ok\n");
	close(p[0]);
}

/* Exists and is not a zombie, from /proc/PID/stat. */
static int process_alive(pid_t pid)
{
	char path[64], buf[256];
	FILE *fp;
	char *paren;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	buf[0] = '\0';
	if (!fgets(buf, sizeof buf, fp))
		buf[0] = '\0';
	fclose(fp);
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void test_mercy_kills_the_whole_group(void **state)
{
	struct fixture *f = *state;
	/* Ignores SIGTERM, and forks a sleeper into its own process group. */
	char *argv[] = { "sh", "-c", "trap '' TERM; sleep 30 & echo $! >&3; wait", NULL };
	int p[2];
	char buf[32] = { 0 };

	assert_int_equal(pipe(p), 0);
	struct child_exec x = { .argv = argv, .out_fd = -1, .fds = &p[1], .n_fds = 1 };
	assert_int_equal(child_spawn(&f->c, &x), 0);
	close(p[1]);
	assert_true(read(p[0], buf, sizeof buf - 1) > 0);
	close(p[0]);
	pid_t sleeper = (pid_t)atoi(buf);
	ev_tstamp t0 = ev_time();
	child_curse(&f->c, SIGTERM, 0.3);
	assert_int_equal(f->c.state, CHILD_CURSED);
	run_until_exit(f, 5);
	assert_int_equal(f->exits, 1);
	assert_true(WIFSIGNALED(f->status));
	assert_int_equal(WTERMSIG(f->status), SIGKILL);
	assert_true(ev_time() - t0 >= 0.25); /* not before its mercy */
	/* The sleeper was in the group: it is gone (or a zombie, dead already). */
	int gone = 0;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = !process_alive(sleeper);
		if (!gone)
			usleep(10000);
	}
	assert_true(gone);
}

static void test_backoff_grows_and_resets(void **state)
{
	struct fixture *f = *state;

	f->c.backoff_min = 0.1;
	f->c.backoff_max = 0.5;
	f->c.stable_after = 10;
	f->c.last_uptime = 0.01;
	double seen[6];
	for (int i = 0; i < 6; i++) {
		seen[i] = child_next_backoff(&f->c);
		child_schedule_respawn(&f->c);
		child_cancel_respawn(&f->c);
	}
	assert_true(seen[0] > 0.099 && seen[0] < 0.101);
	assert_true(seen[1] > 0.199 && seen[1] < 0.201);
	assert_true(seen[2] > 0.399 && seen[2] < 0.401);
	assert_true(seen[3] > 0.499 && seen[5] < 0.501); /* capped */
	f->c.last_uptime = 11; /* a stable run: respawn at once, backoff forgotten */
	assert_true(child_next_backoff(&f->c) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spawn_and_reap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure_reports_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_arrive_at_3_with_listen_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mercy_kills_the_whole_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_grows_and_resets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
