/* child.c — the child-process mechanism (see child.h): spawn, reap, curse with mercy,
 * no-mercy SIGKILL of the process group, respawn with capped exponential backoff.
 * A child that execs is started with vfork: it borrows our memory until its exec, so
 * nothing is copied (no page tables, no copy-on-write faults in either process) and we
 * are suspended for its few system calls; an in-code child is forked. Nothing here
 * blocks the loop otherwise: a child's exit arrives through its ev_child watcher,
 * deadlines through one mercy timer per set, respawns through a per-child timer, and
 * the outcome of its exec through an ev_io on the exec-status pipe (EOF: exec'd, the
 * pipe being close-on-exec; a report: the step that failed and its errno), so the
 * outcome reaches the policy the same way for both kinds. */
#include "child.h"
#include "child_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "privs.h"
#include "util.h"

/* What waits for a child's exec outcome, only while it is pending: a running child
 * costs its pointer (an emperor has 10,000). */
struct child_exec_wait {
	ev_io io;                   /* on the exec-status pipe's read end */
	struct child *c;
	char program[];             /* argv[0] or "(in-code)", for the failure message */
};

/* A process whose exit a pidfd tells, only while there is one. */
struct child_pidfd {
	ev_io io;
	struct child *c;
};

static const char no_name[] = "(a child)"; /* child_init() without memory for its name */

static void mercy_rearm(struct child_set *set);
static void mercy_arm_earliest(struct child_set *set);

const char *child_state_name(enum child_state st)
{
	static const char *const names[] = {
		[CHILD_STOPPED] = "stopped", [CHILD_WAITING] = "waiting", [CHILD_REQUESTED] = "requested",
		[CHILD_STARTING] = "starting", [CHILD_READY] = "ready",
		[CHILD_CURSED] = "cursed",
	};
	return st < ARRAY_LEN(names) ? names[st] : "?";
}

const char *child_status_text(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "ended (not our child: status unknown)");
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by SIG%s%s", parse_signal_name(WTERMSIG(status)),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "status 0x%x", status);
	return buf;
}

/* ---- in the parent ------------------------------------------------------------- */

/* Stops watching for an exec's outcome (known, or the child is being forgotten). */
static void exec_unwatch(struct child *c)
{
	struct child_exec_wait *w = c->exec_wait;

	if (!w)
		return;
	ev_io_stop(c->set->loop, &w->io);
	close(w->io.fd);
	free(w);
	c->exec_wait = NULL;
	c->exec_pending = false;
}

/* The exec's outcome is known: record it, log a failure, tell the policy. */
static void exec_known(struct child *c, const struct start_report *r)
{
	c->exec_errno = r ? r->err : 0;
	errno = c->exec_errno;
	if (r && r->step == STEP_EXEC)
		log_errno("%s: cannot start %s", c->name, c->exec_wait->program);
	else if (r)
		log_errno("%s: cannot start %s: %s", c->name, c->exec_wait->program,
			  child_step_name(r));
	exec_unwatch(c);
	if (!r && c->ready_on_exec)
		child_set_ready(c);
	c->ready_on_exec = false;
	if (c->on_exec)
		c->on_exec(c);
}

/* Reads the exec-status pipe: EOF means exec'd (or running in-code), a report means
 * a step failed (a hook's warnings before it are logged). Returns 0 when the outcome is
 * known, -1 when there is nothing yet. */
static int exec_status_read(struct child *c)
{
	struct start_report r;
	ssize_t n;

	for (;;) {
		do
			n = read(c->exec_wait->io.fd, &r, sizeof r);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof r || !r.warn)
			break;
		r.what[sizeof r.what - 1] = '\0';
		log_warn("%s (pid %d): %s: %s", c->name, (int)c->pid, r.what, strerror(r.err));
	}
	if (n < 0 && errno == EAGAIN)
		return -1;
	if (n == (ssize_t)sizeof r) {
		r.what[sizeof r.what - 1] = '\0';
		exec_known(c, &r);
	} else {
		if (n < 0)
			log_errno("%s: reading its exec status", c->name);
		exec_known(c, NULL); /* EOF (or a broken pipe): it got as far as exec */
	}
	return 0;
}

static void exec_status_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct child_exec_wait *ew = container_of(w, struct child_exec_wait, io);

	(void)loop, (void)revents;
	exec_status_read(ew->c);
}

/* What will wait for the exec's outcome, allocated before the spawn (NULL: no memory). */
static struct child_exec_wait *exec_wait_new(struct child *c, const struct child_exec *x)
{
	const char *program = x->run ? "(in-code)" : x->argv[0];
	struct child_exec_wait *w = malloc(sizeof *w + strlen(program) + 1);

	if (w) {
		w->c = c;
		strcpy(w->program, program);
	}
	return w;
}

/* Arms the exec-status watcher on the pipe's read end (non-blocking). */
static void exec_watch(struct child *c, int fd, struct child_exec_wait *w)
{
	exec_unwatch(c); /* a previous run's, never left open; to be sure */
	if (fd_set_nonblock(fd, 1) < 0)
		log_errno("%s: exec-status pipe: O_NONBLOCK", c->name);
	c->exec_wait = w;
	c->exec_pending = true;
	c->exec_errno = 0;
	c->ready_on_exec = false;
	ev_io_init(&w->io, exec_status_readable, fd, EV_READ);
	ev_io_start(c->set->loop, &w->io);
}

/* The process is gone: record it, clean up its group, tell the policy. */
static void child_gone(struct child *c, int status)
{
	pid_t pid = c->pid;

	/* Its exit (ev_child or pidfd) may come before the pipe's event: it wrote
	 * everything it will, so the exec's outcome is known first. */
	if (c->exec_pending && exec_status_read(c) < 0)
		exec_known(c, NULL); /* not reachable: a dead child's pipe is at EOF */
	c->pid = 0;
	c->last_status = status;
	c->last_uptime = ev_now(c->set->loop) - c->started_at;
	c->state = CHILD_STOPPED;
	if (c->kill_group_on_exit && kill(-pid, SIGKILL) == 0)
		log_info("%s: killed what was left of its process group %d", c->name, (int)pid);
	mercy_rearm(c->set);
	if (c->on_exit)
		c->on_exit(c, status);
}

static void child_reaped(struct ev_loop *loop, ev_child *w, int revents)
{
	struct child *c = container_of(w, struct child, child_watcher);

	(void)revents;
	ev_child_stop(loop, w);
	child_gone(c, w->rstatus);
}

/* Stops watching the pidfd and closes it. */
static void pidfd_unwatch(struct child *c)
{
	if (!c->pidfd)
		return;
	ev_io_stop(c->set->loop, &c->pidfd->io);
	close(c->pidfd->io.fd);
	free(c->pidfd);
	c->pidfd = NULL;
}

/* Watches the process's exit through a pidfd; -1 (errno set) if none can be had. */
static int pidfd_watch(struct child *c, pid_t pid,
		       void (*gone)(struct ev_loop *loop, ev_io *w, int revents))
{
	struct child_pidfd *p = malloc(sizeof *p);
	int fd = p ? pidfd_open(pid, 0) : -1;

	if (fd < 0) {
		free(p);
		return -1;
	}
	p->c = c;
	ev_io_init(&p->io, gone, fd, EV_READ);
	ev_io_start(c->set->loop, &p->io);
	c->pidfd = p;
	return 0;
}

static void foreign_gone(struct ev_loop *loop, ev_io *w, int revents)
{
	struct child *c = container_of(w, struct child_pidfd, io)->c;

	(void)loop, (void)revents;
	pidfd_unwatch(c);
	c->child_watcher.rpid = c->pid;
	child_gone(c, -1);
}

/* A wait status from what waitid() says. */
static int wait_status(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return W_EXITCODE(si->si_status, 0);
	return (si->si_status & 0x7f) | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

/* Our own child, watched through a pidfd (not the default loop): reaped here. */
static void pidfd_child_gone(struct ev_loop *loop, ev_io *w, int revents)
{
	struct child *c = container_of(w, struct child_pidfd, io)->c;
	siginfo_t si = { 0 };

	(void)loop, (void)revents;
	if (waitid(P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG) < 0) {
		log_errno("%s: waitid", c->name);
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	} else if (si.si_pid == 0) {
		return; /* readable before it can be reaped: the next event */
	}
	pidfd_unwatch(c);
	c->child_watcher.rpid = c->pid;
	child_gone(c, wait_status(&si));
}

/* Watches c->pid's exit: ev_child in the default loop, a pidfd in any other. */
static int watch_exit(struct child *c, struct ev_loop *loop)
{
	if (ev_is_default_loop(loop)) {
		ev_child_set(&c->child_watcher, c->pid, 0);
		ev_child_start(loop, &c->child_watcher);
		return 0;
	}
	if (pidfd_watch(c, c->pid, pidfd_child_gone) < 0) {
		log_errno("%s: pidfd_open(%d)", c->name, (int)c->pid);
		return -1;
	}
	return 0;
}

int child_adopt_foreign(struct child *c, pid_t pid)
{
	if (pidfd_watch(c, pid, foreign_gone) < 0)
		return -1;
	c->pid = pid;
	c->state = CHILD_READY;
	c->started_at = c->ready_at = ev_now(c->set->loop);
	c->asked_to_stop = false;
	return 0;
}

static void respawn_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct child *c = container_of(w, struct child, respawn_timer);

	(void)loop, (void)revents;
	c->state = CHILD_STOPPED;
	if (c->on_respawn)
		c->on_respawn(c);
}

/* What the child's steps need, prepared before the vfork/fork: nothing in it allocates. */
static int launch_prepare(struct child *c, const struct child_exec *x, struct child_launch *l,
			  struct child_exec_wait **wait, int pfd[2])
{
	*l = (struct child_launch){ .parent = getpid() };
	l->fd_tmp = calloc(x->n_fds > 0 ? (size_t)x->n_fds : 1, sizeof *l->fd_tmp);
	*wait = exec_wait_new(c, x);
	if (!l->fd_tmp || !*wait || (!x->run && child_env_build(x, l) < 0)) {
		log_errno("%s: out of memory", c->name);
		free(l->fd_tmp);
		free(*wait);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_errno("%s: pipe", c->name);
		free(l->fd_tmp);
		free(l->envp);
		free(*wait);
		return -1;
	}
	l->errfd = pfd[1];
	return 0;
}

/* The new process: vfork for an exec (we resume once it has exec'd or exited), fork
 * for an in-code run. Every signal is blocked across it: one sent to the child before
 * it reset its dispositions (a curse right after the spawn) would otherwise run our
 * handler in the child (libev's, which swallows it, and after a vfork writes our
 * memory). Blocked, it waits until child_start() has put back the defaults, and then
 * acts; our own mask is put back as it was. */
static pid_t launch(const struct child *c, const struct child_exec *x, struct child_launch *l)
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) < 0)
		log_errno("%s: sigprocmask before fork", c->name);
	pid = x->run ? fork() : vfork();
	if (pid == 0)
		child_start(c->set, x, l);
	if (sigprocmask(SIG_SETMASK, &old, NULL) < 0)
		log_errno("%s: sigprocmask after fork", c->name);
	return pid;
}

int child_spawn(struct child *c, const struct child_exec *x)
{
	struct ev_loop *loop = c->set->loop;
	struct child_exec_wait *wait;
	struct child_launch l;
	int pfd[2];
	pid_t pid;

	if (launch_prepare(c, x, &l, &wait, pfd) < 0)
		return -1;
	pid = launch(c, x, &l);
	free(l.fd_tmp);
	free(l.envp);
	close(pfd[1]);
	if (pid < 0) {
		log_errno("%s: %s", c->name, x->run ? "fork" : "vfork");
		close(pfd[0]);
		free(wait);
		return -1;
	}
	/* The child does it too, whichever runs first wins: EACCES, it has exec'd and did
	 * it; ESRCH, it is gone already (its exit will tell). After a vfork it always has,
	 * but where vfork is a fork (valgrind) the group must be there all the same. */
	if (!x->keep_group && setpgid(pid, pid) < 0 && errno != EACCES && errno != ESRCH)
		log_errno("%s: setpgid(%d)", c->name, (int)pid);
	if (c->spawned)
		c->respawns++;
	c->spawned = true;
	c->pid = pid;
	c->state = CHILD_STARTING;
	c->started_at = ev_now(loop);
	c->ready_at = c->cursed_at = c->no_mercy_at = 0;
	c->asked_to_stop = false;
	if (watch_exit(c, loop) < 0) { /* unwatched, it could never be reaped: killed now */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pfd[0]);
		free(wait);
		c->pid = 0;
		c->state = CHILD_STOPPED;
		return -1;
	}
	exec_watch(c, pfd[0], wait);
	return 0;
}

void child_set_ready(struct child *c)
{
	if (c->state != CHILD_STARTING)
		return;
	/* A child that says it is ready has exec'd: the pipe's EOF is there to read. */
	if (c->exec_pending && exec_status_read(c) < 0) {
		c->ready_on_exec = true; /* ready once its exec is known to have succeeded */
		return;
	}
	if (c->exec_errno || c->state != CHILD_STARTING)
		return;
	c->state = CHILD_READY;
	c->ready_at = ev_now(c->set->loop);
}

void child_adopt(struct child *c, pid_t pid, ev_tstamp started_at)
{
	c->pid = pid;
	c->state = CHILD_READY;
	c->started_at = c->ready_at = started_at;
	ev_child_set(&c->child_watcher, pid, 0);
	ev_child_start(c->set->loop, &c->child_watcher);
}

void child_adopt_forked(struct child *c, pid_t pid)
{
	ev_tstamp now = ev_now(c->set->loop);

	if (c->spawned)
		c->respawns++;
	c->spawned = true;
	c->pid = pid;
	c->state = CHILD_STARTING;
	c->started_at = now;
	c->ready_at = c->cursed_at = c->no_mercy_at = 0;
	c->asked_to_stop = false;
	c->exec_errno = 0;
	ev_child_set(&c->child_watcher, pid, 0);
	ev_child_start(c->set->loop, &c->child_watcher);
}

void child_requested(struct child *c)
{
	if (!child_running(c))
		c->state = CHILD_REQUESTED;
}

void child_request_failed(struct child *c)
{
	if (c->state == CHILD_REQUESTED)
		c->state = CHILD_STOPPED;
}

void child_curse(struct child *c, int sig, double mercy)
{
	ev_tstamp now = ev_now(c->set->loop);

	if (!child_running(c))
		return;
	if (c->state != CHILD_CURSED) {
		c->state = CHILD_CURSED;
		c->cursed_at = now;
		c->no_mercy_at = now + mercy;
	} else if (now + mercy < c->no_mercy_at) {
		c->no_mercy_at = now + mercy;
	}
	c->asked_to_stop = true;
	if (kill(c->pid, sig) < 0 && errno != ESRCH)
		log_errno("%s: kill(%d, SIG%s)", c->name, (int)c->pid, parse_signal_name(sig));
	mercy_rearm(c->set);
}

void child_kill(struct child *c)
{
	if (!child_running(c))
		return;
	c->asked_to_stop = true;
	if (c->state != CHILD_CURSED) {
		c->state = CHILD_CURSED;
		c->cursed_at = ev_now(c->set->loop);
	}
	c->no_mercy_at = ev_now(c->set->loop) + 5; /* try again if it is still there */
	if (c->on_kill)
		c->on_kill(c);
	/* The group, and the process itself in case it left the group (setsid). */
	if (kill(-c->pid, SIGKILL) < 0 && errno != ESRCH)
		log_errno("%s: kill(-%d, SIGKILL)", c->name, (int)c->pid);
	if (kill(c->pid, SIGKILL) < 0 && errno != ESRCH)
		log_errno("%s: kill(%d, SIGKILL)", c->name, (int)c->pid);
	mercy_rearm(c->set);
}

static void mercy_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct child_set *set = container_of(w, struct child_set, mercy_timer);
	struct child *c;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	TAILQ_FOREACH(c, &set->children, link) {
		if (c->state != CHILD_CURSED || c->no_mercy_at > now + 0.0005)
			continue;
		log_warn("%s (pid %d): no mercy after %.1fs, SIGKILL to its process group",
			 c->name, (int)c->pid, now - c->cursed_at);
		child_kill(c);
	}
	mercy_arm_earliest(set);
}

/* The mercy timer at the earliest no_mercy_at of the set's cursed children: a walk
 * over the set, done once per loop iteration by the timer itself (mercy_expired). */
static void mercy_arm_earliest(struct child_set *set)
{
	ev_tstamp earliest = INFINITY;
	struct child *c;

	TAILQ_FOREACH(c, &set->children, link)
		if (c->state == CHILD_CURSED && c->no_mercy_at < earliest)
			earliest = c->no_mercy_at;
	ev_timer_stop(set->loop, &set->mercy_timer);
	if (isinf(earliest))
		return;
	earliest -= ev_now(set->loop);
	ev_timer_set(&set->mercy_timer, earliest > 0 ? earliest : 0, 0);
	ev_timer_start(set->loop, &set->mercy_timer);
}

/* A curse, a kill or an exit changed the deadlines: the timer is due at once, and
 * walks the set then. Stopping 10,000 vassals (10,000 curses in one callback, then
 * their exits) costs a walk per loop iteration, not one per curse and per exit. */
static void mercy_rearm(struct child_set *set)
{
	ev_timer_stop(set->loop, &set->mercy_timer);
	ev_timer_set(&set->mercy_timer, 0, 0);
	ev_timer_start(set->loop, &set->mercy_timer);
}

/* A uniform double in [0, 1): splitmix64 seeded once per process from getrandom(), so
 * siblings forked from one parent draw different jitters (random() would repeat the
 * parent's sequence in each of them). */
static double jitter_unit(void)
{
	static uint64_t state;
	static pid_t seeded_in;
	uint64_t z;

	if (seeded_in != getpid()) {
		if (getrandom(&state, sizeof state, GRND_NONBLOCK) != (ssize_t)sizeof state)
			state ^= (uint64_t)getpid() << 32 ^ (uint64_t)(mono_now() * 1e9);
		seeded_in = getpid();
	}
	z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (double)(z >> 11) / (double)(1ULL << 53);
}

double child_next_backoff(const struct child *c)
{
	double next;

	if (c->last_uptime >= c->stable_after)
		return 0;
	next = c->backoff_cur > 0 ? c->backoff_cur * 2 : c->backoff_min;
	return next < c->backoff_max ? next : c->backoff_max;
}

void child_schedule_respawn(struct child *c)
{
	double delay = child_next_backoff(c);

	c->backoff_cur = delay;
	if (c->backoff_jitter && delay > 0)
		delay *= 0.9 + 0.2 * jitter_unit();
	c->state = CHILD_WAITING;
	ev_timer_stop(c->set->loop, &c->respawn_timer);
	ev_timer_set(&c->respawn_timer, delay, 0);
	ev_timer_start(c->set->loop, &c->respawn_timer);
}

void child_cancel_respawn(struct child *c)
{
	ev_timer_stop(c->set->loop, &c->respawn_timer);
	if (c->state == CHILD_WAITING)
		c->state = CHILD_STOPPED;
}

bool child_running(const struct child *c)
{
	return c->pid > 0;
}

double child_uptime(const struct child *c)
{
	return child_running(c) ? ev_now(c->set->loop) - c->started_at : 0;
}

int child_set_running(const struct child_set *set, int kind)
{
	const struct child *c;
	int n = 0;

	TAILQ_FOREACH(c, &set->children, link)
		if (child_running(c) && (kind < 0 || c->kind == kind))
			n++;
	return n;
}

void child_set_init(struct child_set *set, struct ev_loop *loop)
{
	set->loop = loop;
	TAILQ_INIT(&set->children);
	ev_timer_init(&set->mercy_timer, mercy_expired, 0, 0);
	ev_child_init(&set->strays_watcher, child_strays_reaped, 0, 0);
	ev_timer_init(&set->sweep_timer, child_strays_due, 0, 0);
}

void child_set_fini(struct child_set *set)
{
	struct child *c;

	ev_timer_stop(set->loop, &set->mercy_timer);
	ev_child_stop(set->loop, &set->strays_watcher);
	ev_timer_stop(set->loop, &set->sweep_timer);
	TAILQ_FOREACH(c, &set->children, link) {
		ev_child_stop(set->loop, &c->child_watcher);
		ev_timer_stop(set->loop, &c->respawn_timer);
		exec_unwatch(c);
	}
}

void child_init(struct child *c, struct child_set *set, int kind, const char *name)
{
	memset(c, 0, sizeof *c);
	c->set = set;
	c->kind = kind;
	c->name = strdup(name);
	if (!c->name)
		c->name = (char *)no_name;
	c->last_status = -1;
	c->kill_group_on_exit = true;
	c->backoff_min = 0.1;
	c->backoff_max = 30;
	c->stable_after = 10;
	ev_child_init(&c->child_watcher, child_reaped, 0, 0);
	ev_timer_init(&c->respawn_timer, respawn_due, 0, 0);
	TAILQ_INSERT_TAIL(&set->children, c, link);
}

void child_fini(struct child *c)
{
	pidfd_unwatch(c);
	ev_child_stop(c->set->loop, &c->child_watcher);
	ev_timer_stop(c->set->loop, &c->respawn_timer);
	exec_unwatch(c);
	TAILQ_REMOVE(&c->set->children, c, link);
	mercy_rearm(c->set);
	if (c->name != no_name)
		free(c->name);
	c->name = NULL;
}
