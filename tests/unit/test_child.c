/* test_child.c — tests of lib/child.c, the mechanism every kind of child uses: spawn
 * and reap (vfork for an exec: the child has exec'd when child_spawn returns; fork for
 * an in-code run, whose steps never hold up the parent's loop), exec failure reported
 * with its errno (and the step that failed), the child's environment built by the
 * parent (its own pid in LISTEN_PID and WATCHDOG_PID, its own PATH searched), the
 * parent's signal mask and environment untouched, hooks' reports, any number of fds, the mercy
 * deadline ending in SIGKILL of the whole process group, the respawn backoff and
 * its jitter, and the subreaper's sweep of strays behind thousands of children. Real (tiny) processes; every
 * loop run is bounded by a timer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

struct fixture {
	struct ev_loop *loop;
	struct child_set set;
	struct child c;
	int exits;
	int status;
	int execs;              /* on_exec calls */
	int exec_errno_seen;    /* c->exec_errno at the last on_exec */
	int exits_at_exec;      /* exits seen when on_exec came */
	ev_timer guard;
};

static void on_exec_cb(struct child *c)
{
	struct fixture *f = c->data;

	f->execs++;
	f->exec_errno_seen = c->exec_errno;
	f->exits_at_exec = f->exits;
}

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
	f.c.on_exec = on_exec_cb;
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

/* workers.preload: a child asked of another process has no pid until the fork is
 * answered; a refused request leaves it stopped, an answer makes it a start. */
static void test_requested_then_forked(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	child_requested(&f->c);
	assert_int_equal(f->c.state, CHILD_REQUESTED);
	assert_string_equal(child_state_name(f->c.state), "requested");
	assert_false(child_running(&f->c));
	child_request_failed(&f->c);
	assert_int_equal(f->c.state, CHILD_STOPPED);

	child_requested(&f->c);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(4);
	child_adopt_forked(&f->c, pid);
	assert_int_equal(f->c.state, CHILD_STARTING);
	child_request_failed(&f->c); /* too late: it is running */
	assert_int_equal(f->c.state, CHILD_STARTING);
	run_until_exit(f, 5);
	assert_int_equal(f->exits, 1);
	assert_true(WIFEXITED(f->status) && WEXITSTATUS(f->status) == 4);
	assert_int_equal(f->c.state, CHILD_STOPPED);
}

static void test_exec_failure_reports_errno(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "/nonexistent/program", NULL };
	struct child_exec x = { .argv = argv, .out_fd = -1 };

	assert_int_equal(child_spawn(&f->c, &x), 0); /* a process was made */
	assert_true(f->c.exec_pending);
	assert_int_equal(f->c.state, CHILD_STARTING);
	child_set_ready(&f->c); /* deferred: it never becomes ready */
	run_until_exit(f, 5); /* the failed process is still reaped */
	assert_int_equal(f->execs, 1);
	assert_int_equal(f->exec_errno_seen, ENOENT);
	assert_int_equal(f->exits_at_exec, 0); /* known before its exit is reported */
	assert_int_equal(f->c.exec_errno, ENOENT);
	assert_false(f->c.exec_pending);
	assert_int_equal(f->exits, 1);
	assert_int_equal(WEXITSTATUS(f->status), 127);
	assert_true(f->c.ready_at == 0);
}

/* A step before exec that fails aborts the exec: the program never runs. */
static void test_chdir_failure_aborts_exec(void **state)
{
	struct fixture *f = *state;
	char *dir = strdup("/tmp/emperor-test-child.XXXXXX"), *mark;
	char *argv[] = { "sh", "-c", "touch ran", NULL };

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&mark, "%s/ran", dir) > 0);
	struct child_exec x = { .argv = argv, .out_fd = -1, .cwd = "/nonexistent/dir" };
	assert_int_equal(child_spawn(&f->c, &x), 0);
	run_until_exit(f, 5);
	assert_int_equal(f->execs, 1);
	assert_int_equal(f->exec_errno_seen, ENOENT);
	assert_int_equal(WEXITSTATUS(f->status), 127);
	assert_int_equal(access(mark, F_OK), -1);
	rmdir(dir);
	free(mark);
	free(dir);
}

/* A forked (in-code) child's steps before its run wait on a gate that only the
 * parent's loop opens: the parent must not be waiting for the child meanwhile. Before
 * the fix child_spawn() read the exec-status pipe synchronously and returned only when
 * the gate timed out (3 s). (A child that execs is vfork'd: the parent is suspended
 * until its exec, and its hooks must never wait on the parent.) */
static int gate_fd = -1;

static void wait_for_gate(void *arg, const struct child_report *rep)
{
	struct pollfd p = { .fd = gate_fd, .events = POLLIN };

	(void)arg, (void)rep;
	poll(&p, 1, 3000);
}

static int exit_zero(void *arg)
{
	(void)arg;
	return 0;
}

struct gate_timer {
	ev_timer t;
	int fd;
	struct fixture *f;
	int fired_while_pending;
};

static void open_gate(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gate_timer *g = container_of(w, struct gate_timer, t);

	(void)loop, (void)revents;
	g->fired_while_pending = g->f->c.exec_pending && g->f->c.state == CHILD_STARTING &&
				 g->f->execs == 0;
	assert_int_equal(write(g->fd, "x", 1), 1);
}

static void test_slow_pre_run_step_never_blocks_the_loop(void **state)
{
	struct fixture *f = *state;
	struct child_exec x = { .run = exit_zero, .out_fd = -1 };
	struct gate_timer g = { .f = f };
	int gate[2];

	assert_int_equal(pipe(gate), 0);
	gate_fd = gate[0];
	g.fd = gate[1];
	f->set.in_child = wait_for_gate;
	ev_tstamp t0 = ev_time();
	assert_int_equal(child_spawn(&f->c, &x), 0);
	assert_true(ev_time() - t0 < 1.0); /* not waiting for the child's hook */
	child_set_ready(&f->c);
	assert_int_equal(f->c.state, CHILD_STARTING);
	ev_timer_init(&g.t, open_gate, 0.05, 0);
	ev_timer_start(f->loop, &g.t);
	run_until_exit(f, 5);
	assert_true(g.fired_while_pending); /* the loop served a timer meanwhile */
	assert_true(ev_time() - t0 < 2.5);  /* the gate, not its timeout, let it go */
	assert_int_equal(f->execs, 1);
	assert_int_equal(f->exec_errno_seen, 0);
	assert_true(f->c.ready_at > 0); /* ready once the exec was known */
	assert_int_equal(WEXITSTATUS(f->status), 0);
	f->set.in_child = NULL;
	close(gate[0]);
	close(gate[1]);
}

/* A stop signal that reaches the child before its exec or run (a curse right after the
 * spawn, as a reload does to a mule just started) must not be lost. Before the fix, the
 * parent's handler (a libev ev_signal, here for SIGTERM) ran in the child, swallowed
 * the signal, and the program then ran on, never told to stop. An in-code child (fork)
 * is still in its hook when the curse comes; a vfork'd one gets it blocked from its
 * own hook (another process's signal: the parent is suspended), then execs. */
static bool signal_from_hook;

static void slow_hook(void *arg, const struct child_report *rep)
{
	(void)arg, (void)rep;
	if (signal_from_hook)
		kill(getpid(), SIGTERM); /* stands for a signal from outside, pending */
	poll(NULL, 0, 300); /* the curse arrives meanwhile */
}

static int sleep_long(void *arg)
{
	(void)arg;
	poll(NULL, 0, 30000);
	return 0;
}

static void ignore_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop, (void)w, (void)revents;
}

static void signal_before_start(struct fixture *f, const struct child_exec *x, bool from_hook)
{
	ev_signal term;

	ev_signal_init(&term, ignore_signal, SIGTERM);
	ev_signal_start(f->loop, &term);
	f->set.in_child = slow_hook;
	signal_from_hook = from_hook;
	assert_int_equal(child_spawn(&f->c, x), 0);
	if (!from_hook)
		child_curse(&f->c, SIGTERM, 20);
	run_until_exit(f, 10);
	f->set.in_child = NULL;
	signal_from_hook = false;
	ev_signal_stop(f->loop, &term);
	assert_int_equal(f->exits, 1);
	assert_true(WIFSIGNALED(f->status));
	assert_int_equal(WTERMSIG(f->status), SIGTERM);
}

static void test_signal_before_exec_not_lost(void **state)
{
	char *argv[] = { "sleep", "30", NULL };
	struct child_exec x = { .argv = argv, .out_fd = -1 };

	signal_before_start(*state, &x, true);
}

static void test_signal_before_run_not_lost(void **state)
{
	struct child_exec x = { .run = sleep_long, .out_fd = -1 };

	signal_before_start(*state, &x, false);
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

/* What a child's shell prints on fd 3, read after it exited. */
static char *spawn_and_read(struct fixture *f, struct child_exec *x)
{
	static char buf[512];
	int p[2];
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	x->fds = &p[1];
	x->n_fds = 1;
	x->out_fd = -1;
	assert_int_equal(child_spawn(&f->c, x), 0);
	close(p[1]);
	run_until_exit(f, 5);
	n = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* The environment is built by the parent before the vfork: the child's own pid in
 * LISTEN_PID and in the caller's pid variable (WATCHDOG_PID), each variable once (the
 * base's stale LISTEN_* replaced), the base's other variables kept; and the parent's
 * own environment untouched (setenv or environ assigned in a vfork'd child would
 * change ours). */
static void test_child_env_has_its_own_pid(void **state)
{
	struct fixture *f = *state;
	char *env[] = { "KEEP=kept", "LISTEN_PID=1", "LISTEN_FDS=9", "WATCHDOG_PID=1",
			"PATH=/usr/bin:/bin", NULL };
	char *argv[] = { "sh", "-c", "echo \"$LISTEN_PID $WATCHDOG_PID $$ $LISTEN_FDS $KEEP "
			 "$(env | grep -c '^LISTEN_PID=')\" >&3", NULL };
	char **ours = environ, want[128], *got;

	assert_int_equal(setenv("LISTEN_PID", "ours", 1), 0);
	ours = environ;
	struct child_exec x = { .argv = argv, .env = env, .fdnames = "web",
				.pid_env = "WATCHDOG_PID" };
	got = spawn_and_read(f, &x);
	assert_int_equal(WEXITSTATUS(f->status), 0);
	snprintf(want, sizeof want, "%d %d %d 1 kept 1\n", (int)f->c.child_watcher.rpid,
		 (int)f->c.child_watcher.rpid, (int)f->c.child_watcher.rpid);
	assert_string_equal(got, want);
	assert_ptr_equal(environ, ours);
	assert_string_equal(getenv("LISTEN_PID"), "ours");
	assert_null(getenv("WATCHDOG_PID"));
	unsetenv("LISTEN_PID");
}

/* A program named without a '/' is searched in the child's own PATH (execvp would
 * search ours), a script without "#!" runs with /bin/sh, and a file found but not
 * executable is EACCES. */
static void test_exec_searches_the_childs_path(void **state)
{
	struct fixture *f = *state;
	char *dir = strdup("/tmp/emperor-test-child.XXXXXX"), *prog, *path, *got;
	FILE *fp;

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&prog, "%s/only-here", dir) > 0);
	assert_true(asprintf(&path, "PATH=/nonexistent:%s:/usr/bin:/bin", dir) > 0);
	assert_non_null(fp = fopen(prog, "w"));
	fputs("echo found $# \"$1\" >&3\n", fp);
	fclose(fp);
	assert_int_equal(chmod(prog, 0755), 0);
	char *env[] = { path, NULL }, *argv[] = { "only-here", "an arg", NULL };
	struct child_exec x = { .argv = argv, .env = env };
	got = spawn_and_read(f, &x);
	assert_int_equal(f->exec_errno_seen, 0);
	assert_string_equal(got, "found 1 an arg\n");

	assert_int_equal(chmod(prog, 0644), 0);
	f->exits = 0;
	got = spawn_and_read(f, &x);
	assert_int_equal(f->exec_errno_seen, EACCES);
	assert_int_equal(WEXITSTATUS(f->status), 127);
	unlink(prog);
	rmdir(dir);
	free(prog), free(path), free(dir);
}

/* Our signal mask is the same after a spawn as before (every signal is blocked across
 * the vfork or fork, then put back), for both kinds of child. */
static void test_parent_signal_mask_unchanged(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "true", NULL };
	struct child_exec exec = { .argv = argv, .out_fd = -1 };
	struct child_exec run = { .run = exit_zero, .out_fd = -1 };
	const struct child_exec *kinds[] = { &exec, &run };
	sigset_t before, after, usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &before), 0);
		assert_int_equal(child_spawn(&f->c, kinds[i]), 0);
		assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &after), 0);
		for (int sig = 1; sig < NSIG; sig++)
			assert_int_equal(sigismember(&after, sig), sigismember(&before, sig));
		run_until_exit(f, 5);
		assert_int_equal(WEXITSTATUS(f->status), 0);
	}
	assert_true(sigismember(&after, SIGUSR1));
	assert_int_equal(sigprocmask(SIG_UNBLOCK, &usr1, NULL), 0);
}

/* valgrind runs a vfork as a fork. */
static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/* A child that execs is vfork'd: when child_spawn() returns it has exec'd already
 * (with fork, the parent usually runs on first, the child still our image). */
static void test_exec_done_when_spawn_returns(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "/bin/sleep", "30", NULL }, link[64], exe[4096], want[4096];
	struct child_exec x = { .argv = argv, .out_fd = -1 };
	ssize_t n;

	if (under_valgrind())
		skip();
	assert_non_null(realpath("/bin/sleep", want));
	assert_int_equal(child_spawn(&f->c, &x), 0);
	snprintf(link, sizeof link, "/proc/%d/exe", (int)f->c.pid);
	n = readlink(link, exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_string_equal(exe, want);
	child_kill(&f->c);
	run_until_exit(f, 5);
	assert_int_equal(f->exec_errno_seen, 0);
}

/* A hook's warning is logged by the parent and the child goes on; its failure is the
 * exec's failure, with its errno. */
static void warn_then_go_on(void *arg, const struct child_report *rep)
{
	(void)arg;
	errno = EPERM;
	child_warn(rep, "limits.nofile");
}

static void fail_hook(void *arg, const struct child_report *rep)
{
	(void)arg;
	errno = EACCES;
	child_fail(rep, "joining its cgroup");
}

static void test_hook_reports(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "sh", "-c", "exit 4", NULL };
	struct child_exec x = { .argv = argv, .out_fd = -1, .in_child = warn_then_go_on };

	assert_int_equal(child_spawn(&f->c, &x), 0);
	run_until_exit(f, 5);
	assert_int_equal(f->exec_errno_seen, 0);
	assert_int_equal(WEXITSTATUS(f->status), 4);
	x.in_child = fail_hook;
	f->exits = 0;
	assert_int_equal(child_spawn(&f->c, &x), 0);
	run_until_exit(f, 5);
	assert_int_equal(f->exec_errno_seen, EACCES);
	assert_int_equal(f->c.exec_errno, EACCES);
	assert_int_equal(WEXITSTATUS(f->status), 127);
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
	ev_now_update(f->loop); /* the curse's clock: not the one before the blocking read */
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

/* ---- the subreaper's sweep of strays ---------------------------------------------------- */

#define MANY 2000 /* their pids take more than 8 KiB in /proc/self/task/TID/children */

static int many_exited;

static _Noreturn void idle_until_killed(void)
{
	for (;;)
		pause();
}

static int wait_forever(void *arg)
{
	(void)arg;
	idle_until_killed();
}

static void many_exit_cb(struct child *c, int status)
{
	(void)c, (void)status;
	if (++many_exited == MANY)
		ev_break(c->set->loop, EVBREAK_ALL);
}

/* An orphan adopted after thousands of children of ours: the sweep reads the whole
 * list (it used to read its first 8 KiB, missing the orphan and taking a number cut at
 * the end for a pid), kills the orphan and nothing of ours. */
static void test_stray_found_after_thousands_of_children(void **state)
{
	struct fixture *f = *state;
	struct child *many = calloc(MANY, sizeof *many);
	int p[2], running = 0;
	pid_t stray = 0, mid;

	assert_non_null(many);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	for (int i = 0; i < MANY; i++) {
		/* die_with_parent: a failed assert leaves none of them behind */
		struct child_exec x = { .run = wait_forever, .out_fd = -1, .die_with_parent = true };
		child_init(&many[i], &f->set, 0, "idle");
		many[i].on_exit = many_exit_cb;
		assert_int_equal(child_spawn(&many[i], &x), 0);
	}
	assert_int_equal(pipe(p), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) { /* its child outlives it: adopted by us, not in the set */
		pid_t g = fork();
		if (g == 0) {
			close(p[0]), close(p[1]);
			idle_until_killed();
		}
		(void)!write(p[1], &g, sizeof g);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &stray, sizeof stray), (ssize_t)sizeof stray);
	close(p[0]);
	assert_int_equal(waitpid(mid, NULL, 0), mid);
	assert_int_equal(child_set_kill_strays(&f->set), 1);
	assert_int_equal(waitpid(stray, NULL, 0), stray); /* it was killed: reaped here */
	for (int i = 0; i < MANY; i++)
		running += child_running(&many[i]) && kill(many[i].pid, 0) == 0;
	assert_int_equal(running, MANY); /* none of ours was touched */
	for (int i = 0; i < MANY; i++)
		kill(many[i].pid, SIGKILL);
	many_exited = 0;
	run_until_exit(f, 30);
	assert_int_equal(many_exited, MANY);
	for (int i = 0; i < MANY; i++)
		child_fini(&many[i]);
	free(many);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
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

/* More fds than any fixed table held (64 here, 256 in the worker): all arrive. */
static void test_hundreds_of_fds(void **state)
{
	struct fixture *f = *state;
	enum { N = 400 };
	int fds[N], null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char *argv[] = { "sh", "-c", "[ \"$LISTEN_FDS\" = 400 ] && [ -e /proc/$$/fd/402 ] && "
			 "[ ! -e /proc/$$/fd/403 ]", NULL };
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 3 * N) {
		skip();
	}
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4096 ? 4096 : rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(null >= 0);
	for (int i = 0; i < N; i++)
		assert_true((fds[i] = fcntl(null, F_DUPFD_CLOEXEC, 3)) >= 0);
	struct child_exec x = { .argv = argv, .out_fd = -1, .fds = fds, .n_fds = N,
				.fdnames = "many" };
	assert_int_equal(child_spawn(&f->c, &x), 0);
	run_until_exit(f, 5);
	assert_int_equal(f->exec_errno_seen, 0);
	assert_true(WIFEXITED(f->status));
	assert_int_equal(WEXITSTATUS(f->status), 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	close(null);
}

/* The jittered delay drawn in a process forked from us (a sibling of another). */
static double jitter_in_fork(struct fixture *f)
{
	int p[2];
	double d = -1;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_schedule_respawn(&f->c);
		d = ev_timer_remaining(f->loop, &f->c.respawn_timer);
		_exit(write(p[1], &d, sizeof d) == sizeof d ? 0 : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &d, sizeof d), (ssize_t)sizeof d);
	close(p[0]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return d;
}

/* Sibling processes must not draw the same jitter (random() unseeded, or seeded
 * before a fork, gives every sibling one sequence: they respawn in lockstep). */
static void test_jitter_differs_between_siblings(void **state)
{
	struct fixture *f = *state;
	double a, b;
	int same = 0;

	f->c.backoff_min = 10;
	f->c.backoff_max = 10;
	f->c.backoff_jitter = true;
	f->c.last_uptime = 0;
	child_schedule_respawn(&f->c); /* the parent draws first: seeded here */
	child_cancel_respawn(&f->c);
	for (int i = 0; i < 3; i++) {
		a = jitter_in_fork(f);
		b = jitter_in_fork(f);
		assert_true(a >= 9 - 0.1 && a <= 11);
		same += a == b;
	}
	assert_true(same < 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_spawn_and_reap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requested_then_forked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_before_exec_not_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure_reports_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chdir_failure_aborts_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_pre_run_step_never_blocks_the_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_signal_before_run_not_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hundreds_of_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jitter_differs_between_siblings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_arrive_at_3_with_listen_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_env_has_its_own_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_searches_the_childs_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_signal_mask_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_done_when_spawn_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mercy_kills_the_whole_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_grows_and_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stray_found_after_thousands_of_children, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
