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
 * and exits; the master's mercy (or `stop: kill`) bounds that. */
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
#include "util.h"

#define RETRY_DELAY_MAX 86400.0   /* the doubling retry delay stops growing at a day */
#define DEFERRED_LOCKS_MAX 256    /* deferred tasks whose lock is held (one fd each) */

/* A task whose outcome could not be written down (its retry's rewrite, its move to
 * failed/ or its removal failed: a full or read-only spool file system). Its backoff
 * and attempts are kept here instead, in memory, and its lock stays held (fd) so that
 * no other spooler process runs it meanwhile; the file itself is left as it was, so
 * nothing is lost. When it is due, what is owed is done from here: run it again, or
 * try the move or the removal again. */
enum deferred_outcome { DEFER_RUN, DEFER_FAIL, DEFER_REMOVE };
struct deferred {
	TAILQ_ENTRY(deferred) link;
	char file[256];
	int fd;                     /* the task file, flock'ed; -1 past DEFERRED_LOCKS_MAX */
	double not_before;          /* wall clock */
	enum deferred_outcome owed;
	int attempts;               /* attempts so far, counted here since the file is stale */
	char failed_why[200];       /* DEFER_FAIL: why it goes to failed/ */
};
TAILQ_HEAD(deferred_list, deferred);

struct spooler {
	struct ev_loop *loop;
	const struct cfg_spooler *cfg;
	char *dir;                  /* cfg->dir made absolute: the task program may chdir */
	char **env;                 /* the vassal's child environment */
	int dirfd, inofd, sigfd;
	ev_io ino_io, sig_io;
	ev_timer wake;
	bool stopping;
	struct deferred_list deferred;
	int n_deferred_locks;
	struct candidate *known;     /* the last scan's tasks, by name: their priorities */
	size_t n_known;
	/* the task being run: its program is a child of lib/child.c's, in our own set */
	struct child_set procs;
	struct child proc;
	int lock_fd;
	char file[256];
	char *text;
	struct spool_task task;
};

static double wall_now(void)
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
	n = snprintf(text, sizeof text, "%s\nfailed at %.3f after %d attempts\n", why, wall_now(),
		     s->task.attempts);
	if (fd_write_all(fd, text, (size_t)n) < 0 || fsync(fd) < 0)
		log_errno("spooler: %s", note);
	close(fd);
}

/* ---- deferred outcomes ---------------------------------------------------------------- */

static struct deferred *deferred_find(struct spooler *s, const char *file)
{
	struct deferred *d;

	TAILQ_FOREACH(d, &s->deferred, link)
		if (strcmp(d->file, file) == 0)
			return d;
	return NULL;
}

static void deferred_free(struct spooler *s, struct deferred *d)
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
		d->fd = s->lock_fd; /* release_task() will not close it now */
		s->lock_fd = -1;
		s->n_deferred_locks += d->fd >= 0;
	}
	TAILQ_INSERT_TAIL(&s->deferred, d, link);
	schedule_scan(s, not_before - wall_now()); /* deferred from within a scan too */
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
static void fail_task(struct spooler *s, const char *why)
{
	char dest[300];

	if (mkdirat(s->dirfd, "failed", 0750) < 0 && errno != EEXIST)
		log_errno("spooler: mkdir failed/");
	snprintf(dest, sizeof dest, "failed/%s", s->file);
	write_note(s, s->file, why);
	if (renameat(s->dirfd, s->file, s->dirfd, dest) < 0) {
		log_errno("spooler: move %s to failed/ (trying again in %.1fs)", s->file,
			  retry_delay(s, 1));
		defer_task(s, wall_now() + retry_delay(s, 1), DEFER_FAIL, s->task.attempts, why);
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
		fail_task(s, full);
		return;
	}
	if (spool_rewrite(s->dirfd, s->file, &s->task, wall_now() + delay, attempts) == 0) {
		log_info("task %s: %s; retry %d in %.1fs", s->file, why, attempts, delay);
		return;
	}
	log_errno("task %s: %s; retry %d in %.1fs, kept in memory: cannot rewrite the task file",
		  s->file, why, attempts, delay);
	defer_task(s, wall_now() + delay, DEFER_RUN, attempts, NULL);
}

/* The task succeeded: its file goes. If it cannot (a read-only file system), it is
 * kept back and the removal tried again after a retry-backoff: never run again. */
static void remove_task(struct spooler *s)
{
	if (unlinkat(s->dirfd, s->file, 0) < 0) {
		log_errno("task %s: done, but cannot remove it (trying again in %.1fs)", s->file,
			  retry_delay(s, 1));
		defer_task(s, wall_now() + retry_delay(s, 1), DEFER_REMOVE, s->task.attempts, NULL);
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
		remove_task(s);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != SPOOL_EX_RETRY) {
		snprintf(why, sizeof why, "the task program exited %d", WEXITSTATUS(status));
		fail_task(s, why);
	} else {
		if (WIFSIGNALED(status))
			snprintf(why, sizeof why, "the task program was killed by signal %d", WTERMSIG(status));
		else
			snprintf(why, sizeof why, "the task program asked for a retry (exit 75)");
		retry_task(s, why);
	}
}

/* ---- running a task ------------------------------------------------------------------- */

static void release_task(struct spooler *s)
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
	release_task(s);
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

/* ---- choosing a task ------------------------------------------------------------------- */

static char *read_task(int fd, size_t *len)
{
	char *buf = malloc(SPOOL_MAX_TASK + 1);
	ssize_t n;

	*len = 0;
	while (buf && *len <= SPOOL_MAX_TASK && (n = read(fd, buf + *len, SPOOL_MAX_TASK + 1 - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		*len += (size_t)n;
	}
	return buf;
}

/* Opens and locks file, if it is still the file under that name: not done (unlinked),
 * retried (renamed over) or failed (moved) by another spooler since we opened it. The
 * locked fd, or -1 (another spooler's, or gone). */
static int lock_task(struct spooler *s, const char *file, int fd)
{
	struct stat st, now_st;

	if (fd < 0)
		fd = openat(s->dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 ||
	    fstatat(s->dirfd, file, &now_st, 0) < 0 || st.st_ino != now_st.st_ino ||
	    st.st_dev != now_st.st_dev || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads and parses the task s->lock_fd (s->file). 1: due; 0: not due (*next_at, the
 * task released); -1: malformed (moved to failed/). */
static int load_task(struct spooler *s, double *next_at)
{
	char why[160], full[200];
	size_t len;

	memset(&s->task, 0, sizeof s->task);
	s->text = read_task(s->lock_fd, &len);
	if (!s->text || len > SPOOL_MAX_TASK ||
	    spool_parse(s->text, len, &s->task, why, sizeof why) < 0) {
		if (!s->text || len > SPOOL_MAX_TASK)
			snprintf(why, sizeof why, "unreadable or larger than %d bytes", SPOOL_MAX_TASK);
		snprintf(full, sizeof full, "malformed task: %s", why);
		fail_task(s, full);
		release_task(s);
		return -1;
	}
	if (s->task.at > wall_now()) {
		if (s->task.at < *next_at)
			*next_at = s->task.at;
		release_task(s);
		return 0;
	}
	return 1;
}

/* A task kept back in memory (d): not yet due, due to run, or due to be moved to
 * failed/ once more. Same results as claim(). */
static int claim_deferred(struct spooler *s, struct deferred *d, double *next_at)
{
	int attempts = d->attempts, rc;
	enum deferred_outcome owed = d->owed;
	char why[sizeof d->failed_why];

	if (d->not_before > wall_now()) {
		if (d->not_before < *next_at)
			*next_at = d->not_before;
		return 0;
	}
	s->lock_fd = lock_task(s, d->file, d->fd);
	if (d->fd >= 0) {
		d->fd = -1; /* now s->lock_fd, or closed */
		s->n_deferred_locks--;
	}
	snprintf(s->file, sizeof s->file, "%s", d->file);
	snprintf(why, sizeof why, "%s", d->failed_why);
	deferred_free(s, d);
	if (s->lock_fd < 0)
		return 0; /* removed by hand meanwhile, or (unlocked) another spooler's now */
	if (owed == DEFER_REMOVE) {
		memset(&s->task, 0, sizeof s->task);
		s->task.attempts = attempts;
		remove_task(s);
		release_task(s);
		return -1;
	}
	rc = load_task(s, next_at);
	if (rc == 1 && s->task.attempts < attempts)
		s->task.attempts = attempts; /* the file could not record them */
	if (rc == 1 && owed == DEFER_FAIL) {
		fail_task(s, why);
		release_task(s);
		return -1;
	}
	return rc;
}

/* Locks and parses file. 1: claimed and due; 0: not ours or not due (*next_at);
 * -1: malformed or failed (moved to failed/). */
static int claim(struct spooler *s, const char *file, double *next_at)
{
	struct deferred *d = deferred_find(s, file);

	if (d)
		return claim_deferred(s, d, next_at);
	s->lock_fd = lock_task(s, file, -1);
	if (s->lock_fd < 0)
		return 0;
	snprintf(s->file, sizeof s->file, "%s", file);
	return load_task(s, next_at);
}

struct candidate {
	char name[256];
	ino_t ino;                  /* as readdir() says: a rewrite (rename over) changes it */
	int priority;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct candidate *)a)->name, ((const struct candidate *)b)->name);
}

static int by_priority_then_name(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Priority comes from the file's header; read cheaply (the first 511 bytes only), and
 * once per file (task_priority). A bad value counts as 0 here: claim() sends such a
 * file to failed/. */
static int peek_priority(int dirfd, const char *file)
{
	char head[512] = { 0 };
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return 0;
	len = read(fd, head, sizeof head - 1);
	close(fd);
	for (char *line = head; len > 0 && *line && *line != '\n';) {
		char *nl = strchr(line, '\n'), *end;
		if (strncmp(line, "@priority=", 10) == 0) {
			long prio = strtol(line + 10, &end, 10);
			return end != line + 10 && prio >= -1000000 && prio <= 1000000 ? (int)prio : 0;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

/* A task's priority: the last scan's if the file is the same (same inode), else read. */
static int task_priority(struct spooler *s, const struct dirent *de)
{
	struct candidate key;
	const struct candidate *k;

	snprintf(key.name, sizeof key.name, "%s", de->d_name);
	k = s->n_known ? bsearch(&key, s->known, s->n_known, sizeof key, by_name) : NULL;
	if (k && k->ino == de->d_ino)
		return k->priority;
	return peek_priority(s->dirfd, de->d_name);
}

/* Remembers v (n tasks) as the known ones, for the next scan's priorities. */
static void remember_tasks(struct spooler *s, const struct candidate *v, size_t n)
{
	struct candidate *copy = n ? malloc(n * sizeof *copy) : NULL;

	free(s->known);
	s->known = copy;
	s->n_known = copy ? n : 0;
	if (!copy)
		return;
	memcpy(copy, v, n * sizeof *copy);
	qsort(copy, n, sizeof *copy, by_name);
}

static struct candidate *list_tasks(struct spooler *s, size_t *n)
{
	int fd = dup(s->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct candidate *v = NULL;
	size_t cap = 0;
	struct dirent *de;

	*n = 0;
	if (!d)
		return NULL;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || len >= 256 || strcmp(de->d_name + len - 5, ".task"))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct candidate *grown = realloc(v, cap * sizeof *v);
			if (!grown)
				break;
			v = grown;
		}
		snprintf(v[*n].name, sizeof v[*n].name, "%s", de->d_name);
		v[*n].ino = de->d_ino;
		v[(*n)++].priority = task_priority(s, de);
	}
	closedir(d);
	remember_tasks(s, v, *n);
	if (*n > 1) /* v is NULL when the directory holds no task */
		qsort(v, *n, sizeof *v, by_priority_then_name);
	return v;
}

/* Forgets deferred tasks whose file was removed (by hand) meanwhile. */
static void deferred_prune(struct spooler *s)
{
	struct deferred *d = TAILQ_FIRST(&s->deferred), *next;

	for (; d; d = next) {
		next = TAILQ_NEXT(d, link);
		if (faccessat(s->dirfd, d->file, F_OK, 0) < 0 && errno == ENOENT)
			deferred_free(s, d);
	}
}

static void scan(struct spooler *s)
{
	double next_at = INFINITY;
	size_t n;
	struct candidate *v;

	if (child_running(&s->proc) || s->stopping)
		return;
	deferred_prune(s);
	v = list_tasks(s, &n);
	for (size_t i = 0; i < n; i++) {
		if (claim(s, v[i].name, &next_at) != 1)
			continue;
		if (start_task(s) == 0) {
			free(v);
			return;
		}
		retry_task(s, "the task program could not be started");
		release_task(s);
	}
	free(v);
	if (!isinf(next_at))
		schedule_scan(s, next_at - wall_now());
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
