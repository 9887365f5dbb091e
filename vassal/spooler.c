/* spooler.c — the spooler: processes forked by the master (no exec) that run the
 * task program on each task file of the spool directory (format: spool.h,
 * docs/spooler.md). Each runs its own libev loop, woken by inotify when a task
 * arrives and by a timer for the next @at; it scans at start. Claiming is a
 * non-blocking flock() on the task file, released by the kernel if the spooler dies,
 * so several spooler processes never run one task twice at once, and a task whose
 * spooler was killed is simply run again (at-least-once). The task program runs in
 * the spooler's process group, so the SIGKILL of that group (no mercy, `stop: kill`,
 * the spooler's own death) takes it and whatever it started; PR_SET_PDEATHSIG covers a
 * spooler that dies alone. It is spawned and reaped by lib/child.c like every child
 * (a set of one, in the spooler's own loop: reaped through a pidfd).
 *   exit 0           the task file is removed (unlink + fsync of the directory)
 *   exit 75, signal  run again after retry-backoff * 2^(attempts-1), up to max-attempts
 *   anything else    moved to failed/ with failed/<id>.note saying why
 * An outcome that cannot be written (a full spool file system) is kept in memory
 * (struct deferred) with the task's lock, so the backoff and the attempts still hold.
 * On its stop signal the spooler takes no new task, lets the running one finish,
 * and exits; the master's mercy (or `stop: kill`) bounds that. Listing the task files
 * and claiming the next one are spooler_pick.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "procs.h"
#include "spooler.h"
#include "spool.h"
#include "spool_gauge.h"
#include "spooler_internal.h"
#include "util.h"

#define RETRY_DELAY_MAX 86400.0   /* the doubling retry delay stops growing at a day */

double spooler_wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void schedule_scan(struct spooler *s, double after);

static void write_note(struct spooler *s, const char *file, const char *why)
{
	char note[300], text[600];
	int fd, n;

	snprintf(note, sizeof note, "failed/%.*s.note", (int)(strlen(file) - 5), file);
	fd = openat(s->dirfd, note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_errno("spooler: %s", note);
		return;
	}
	n = snprintf(text, sizeof text, "%s\nfailed at %.3f after %d attempts\n", why, spooler_wall_now(),
		     s->task.attempts);
	if (fd_write_all(fd, text, (size_t)n) < 0 || fsync(fd) < 0)
		log_errno("spooler: %s", note);
	close(fd);
}

/* ---- deferred outcomes ---------------------------------------------------------------- */

struct deferred *spooler_deferred_find(struct spooler *s, const char *file)
{
	struct deferred *d;

	TAILQ_FOREACH(d, &s->deferred, link)
		if (strcmp(d->file, file) == 0)
			return d;
	return NULL;
}

void spooler_deferred_free(struct spooler *s, struct deferred *d)
{
	TAILQ_REMOVE(&s->deferred, d, link);
	if (d->fd >= 0) {
		close(d->fd);
		s->n_deferred_locks--;
	}
	free(d);
}

/* The outcome of the claimed task could not be written: keep it in memory, with its
 * lock, until not_before. Without memory the lock is let go: the task runs again (as
 * after a spooler's death), but it is not lost. */
static void defer_task(struct spooler *s, double not_before, enum deferred_outcome owed,
		       int attempts, const char *failed_why)
{
	struct deferred *d = calloc(1, sizeof *d);

	if (!d) {
		log_errno("spooler: cannot keep task %s back", s->file);
		return;
	}
	snprintf(d->file, sizeof d->file, "%s", s->file);
	d->not_before = not_before;
	d->owed = owed;
	d->attempts = attempts;
	snprintf(d->failed_why, sizeof d->failed_why, "%s", failed_why ? failed_why : "");
	d->fd = -1;
	if (s->n_deferred_locks < DEFERRED_LOCKS_MAX) {
		d->fd = s->lock_fd; /* spooler_release_task() will not close it now */
		s->lock_fd = -1;
		s->n_deferred_locks += d->fd >= 0;
	}
	TAILQ_INSERT_TAIL(&s->deferred, d, link);
	schedule_scan(s, not_before - spooler_wall_now()); /* deferred from within a scan too */
}

/* ---- outcomes ------------------------------------------------------------------------ */

/* Backoff before run n+1 (n runs so far ended in a retry). */
static double retry_delay(const struct spooler *s, int n)
{
	return fmin(s->cfg->retry_backoff * pow(2, n - 1), RETRY_DELAY_MAX);
}

/* Moves the claimed task (s->file) to failed/. If it cannot be moved, it is kept back
 * in memory and the move is tried again after a retry-backoff: it is never run again
 * at once. */
void spooler_fail_task(struct spooler *s, const char *why)
{
	char dest[300];

	if (mkdirat(s->dirfd, "failed", 0750) < 0 && errno != EEXIST)
		log_errno("spooler: mkdir failed/");
	snprintf(dest, sizeof dest, "failed/%s", s->file);
	write_note(s, s->file, why);
	if (renameat(s->dirfd, s->file, s->dirfd, dest) < 0) {
		log_errno("spooler: move %s to failed/ (trying again in %.1fs)", s->file,
			  retry_delay(s, 1));
		defer_task(s, spooler_wall_now() + retry_delay(s, 1), DEFER_FAIL, s->task.attempts, why);
		return;
	}
	if (fsync(s->dirfd) < 0)
		log_errno("spooler: fsync %s", s->dir);
	log_warn("task %s failed: %s", s->file, why);
}

static void retry_task(struct spooler *s, const char *why)
{
	int attempts = s->task.attempts + 1;
	double delay = retry_delay(s, attempts);

	if (attempts >= s->cfg->max_attempts) {
		char full[200];
		snprintf(full, sizeof full, "%s; gave up after %d attempts", why, attempts);
		s->task.attempts = attempts;
		spooler_fail_task(s, full);
		return;
	}
	if (spool_rewrite(s->dirfd, s->file, &s->task, spooler_wall_now() + delay, attempts) == 0) {
		log_info("task %s: %s; retry %d in %.1fs", s->file, why, attempts, delay);
		return;
	}
	log_errno("task %s: %s; retry %d in %.1fs, kept in memory: cannot rewrite the task file",
		  s->file, why, attempts, delay);
	defer_task(s, spooler_wall_now() + delay, DEFER_RUN, attempts, NULL);
}

/* The task succeeded: its file goes. If it cannot (a read-only file system), it is
 * kept back and the removal tried again after a retry-backoff: never run again. */
void spooler_remove_task(struct spooler *s)
{
	if (unlinkat(s->dirfd, s->file, 0) < 0) {
		log_errno("task %s: done, but cannot remove it (trying again in %.1fs)", s->file,
			  retry_delay(s, 1));
		defer_task(s, spooler_wall_now() + retry_delay(s, 1), DEFER_REMOVE, s->task.attempts, NULL);
		return;
	}
	if (fsync(s->dirfd) < 0)
		log_errno("spooler: fsync %s", s->dir);
	log_info("task %s done", s->file);
}

static void task_done(struct spooler *s, int status)
{
	char why[96];

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		spooler_remove_task(s);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != SPOOL_EX_RETRY) {
		snprintf(why, sizeof why, "the task program exited %d", WEXITSTATUS(status));
		spooler_fail_task(s, why);
	} else {
		if (WIFSIGNALED(status))
			snprintf(why, sizeof why, "the task program was killed by signal %d", WTERMSIG(status));
		else
			snprintf(why, sizeof why, "the task program asked for a retry (exit 75)");
		retry_task(s, why);
	}
}

/* ---- running a task ------------------------------------------------------------------- */

void spooler_release_task(struct spooler *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
	spool_task_fini(&s->task);
	free(s->text);
	s->text = NULL;
}

/* The task program is gone (reaped by lib/child.c): its outcome, then the next task. */
static void task_exited(struct child *c, int status)
{
	struct spooler *s = container_of(c, struct spooler, proc);
	char why[160];

	if (c->exec_errno) {
		snprintf(why, sizeof why, "the task program could not be started (%s)",
			 strerror(c->exec_errno));
		retry_task(s, why);
	} else {
		task_done(s, status);
	}
	spooler_release_task(s);
	if (s->stopping) {
		log_info("spooler stopped");
		exit(0);
	}
	schedule_scan(s, 0);
}

/* argv: the program's, then the task file's absolute path. */
static char **task_argv(const struct spooler *s, char *path)
{
	size_t n = strv_len(s->cfg->prog.argv);
	char **argv = calloc(n + 2, sizeof *argv);

	for (size_t i = 0; argv && i < n; i++)
		argv[i] = s->cfg->prog.argv[i];
	if (argv)
		argv[n] = path;
	return argv;
}

/* The vassal's child environment, SPOOL_<KEY> for each key, SPOOL_ATTEMPT. */
static char **task_env(const struct spooler *s)
{
	char **env = strv_dup(s->env), num[16];

	for (size_t i = 0; env && s->task.env[i]; i++) {
		char *eq = strchr(s->task.env[i], '=');
		*eq = '\0';
		env = env_set(env, s->task.env[i], eq + 1);
		*eq = '=';
	}
	snprintf(num, sizeof num, "%d", s->task.attempts + 1);
	return env ? env_set(env, "SPOOL_ATTEMPT", num) : NULL;
}

/* Starts the task program through lib/child.c, in our process group (the SIGKILL of
 * the group takes it) and with PR_SET_PDEATHSIG. 0: it runs (or its exec failed:
 * task_exited() will say); -1: it could not be forked. */
static int start_task(struct spooler *s)
{
	char path[PATH_MAX + 256], **argv, **env;
	int rc = -1;

	snprintf(path, sizeof path, "%s/%s", s->dir, s->file);
	argv = task_argv(s, path);
	env = task_env(s);
	if (argv && env) {
		struct child_exec x = { .argv = argv, .env = env, .cwd = s->cfg->prog.cwd,
					.out_fd = -1, .die_with_parent = true, .keep_group = true };
		rc = child_spawn(&s->proc, &x);
	}
	free(argv);
	strv_free(env);
	if (rc == 0)
		log_info("task %s: running (pid %d, attempt %d)", s->file, (int)s->proc.pid,
			 s->task.attempts + 1);
	return rc == 0 || child_running(&s->proc) ? 0 : -1;
}

static void scan(struct spooler *s)
{
	double next_at = INFINITY;
	size_t n;
	struct candidate *v;

	if (child_running(&s->proc) || s->stopping)
		return;
	spooler_deferred_prune(s);
	v = spooler_list_tasks(s, &n);
	for (size_t i = 0; i < n; i++) {
		if (spooler_claim(s, v[i].name, &next_at) != 1)
			continue;
		if (start_task(s) == 0) {
			free(v);
			return;
		}
		retry_task(s, "the task program could not be started");
		spooler_release_task(s);
	}
	free(v);
	if (!isinf(next_at))
		schedule_scan(s, next_at - spooler_wall_now());
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void wake_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	scan(container_of(w, struct spooler, wake));
}

static void schedule_scan(struct spooler *s, double after)
{
	if (after < 0)
		after = 0;
	if (ev_is_active(&s->wake) && ev_timer_remaining(s->loop, &s->wake) <= after)
		return;
	ev_timer_stop(s->loop, &s->wake);
	ev_timer_set(&s->wake, after, 0);
	ev_timer_start(s->loop, &s->wake);
}

static void dir_changed(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spooler *s = container_of(w, struct spooler, ino_io);
	char buf[4096];

	(void)loop, (void)revents;
	while (read(s->inofd, buf, sizeof buf) > 0)
		;
	schedule_scan(s, 0);
}

static void signalled(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spooler *s = container_of(w, struct spooler, sig_io);
	struct signalfd_siginfo si;

	(void)loop, (void)revents;
	if (read(s->sigfd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	s->stopping = true;
	if (!child_running(&s->proc)) {
		log_info("spooler stopped");
		exit(0);
	}
	log_info("stopping: letting task %s finish", s->file);
}

static int open_watches(struct spooler *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, s->cfg->prog.stop_signal);
	/* signalfd, not ev_signal: the master's loop still owns libev's signal slots. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		return -1;
	s->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->inofd < 0 || inotify_add_watch(s->inofd, s->dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		return -1;
	ev_io_init(&s->sig_io, signalled, s->sigfd, EV_READ);
	ev_io_start(s->loop, &s->sig_io);
	ev_io_init(&s->ino_io, dir_changed, s->inofd, EV_READ);
	ev_io_start(s->loop, &s->ino_io);
	ev_timer_init(&s->wake, wake_due, 0, 0);
	return 0;
}

static int spooler_main(void *arg)
{
	struct proc *p = arg;
	struct spooler s = { .cfg = &p->m->cfg->spooler, .lock_fd = -1 };

	TAILQ_INIT(&s.deferred);
	char ident[96];

	snprintf(ident, sizeof ident, "vassal %s spooler %d", p->m->cfg->name, p->instance);
	log_init(ident);
	if (prctl(PR_SET_NAME, "vassal-spooler") < 0) /* what ps and pgrep show */
		log_errno("prctl(PR_SET_NAME)");
	if (mkdir(s.cfg->dir, 0750) < 0 && errno != EEXIST)
		log_errno("spooler: mkdir %s", s.cfg->dir);
	s.dir = realpath(s.cfg->dir, NULL);
	s.env = procs_env(p->m, &s.cfg->prog, NULL);
	s.loop = ev_loop_new(EVFLAG_AUTO);
	s.dirfd = s.dir ? open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (!s.dir || !s.env || !s.loop || s.dirfd < 0 || open_watches(&s) < 0) {
		log_errno("spooler: cannot watch %s", s.cfg->dir);
		return 1;
	}
	child_set_init(&s.procs, s.loop);
	child_init(&s.proc, &s.procs, 0, "task program");
	s.proc.kill_group_on_exit = false; /* the group is ours (keep_group) */
	s.proc.on_exit = task_exited;
	log_info("spooler ready on %s", s.cfg->dir);
	schedule_scan(&s, 0);
	ev_run(s.loop, 0);
	return 1;
}

static int spooler_start_one(struct proc *p)
{
	const struct cfg_spooler *sc = &p->m->cfg->spooler;
	struct child_exec x = { .run = spooler_main, .run_arg = p, .out_fd = -1,
				.die_with_parent = true };
	int rc;

	p->child.stop_signal = sc->prog.stop_signal;
	p->child.mercy = sc->stop == CFG_SPOOL_STOP_KILL ? 0 : sc->prog.reload_mercy;
	rc = child_spawn(&p->child, &x);
	if (rc == 0) {
		child_set_ready(&p->child);
		log_info("%s started (pid %d)", p->child.name, (int)p->child.pid);
	}
	return rc;
}

int spooler_start(struct master *m)
{
	if (!m->cfg->has_spooler)
		return 0;
	if (!m->spool_gauge) /* the master's status counts tasks through it */
		m->spool_gauge = spool_gauge_new(m->loop, m->cfg->spooler.dir);
	for (int k = 1; k <= m->cfg->spooler.processes; k++) {
		char name[64];
		snprintf(name, sizeof name, "spooler %d", k);
		struct proc *p = procs_new(m, KIND_SPOOLER, name, 0, k, spooler_start_one);
		if (!p)
			return -1;
		procs_launch(p);
	}
	return 0;
}
