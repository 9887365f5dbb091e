/* sup_proc.c — the processes a test runs: spawn (fork, fds, environment with the
 * run's tag, optional socket activation, exec), wait for an exit, stop, and the final
 * check that nothing is left behind. Everything the child needs is built before
 * fork(): the child only calls async-signal-safe functions, as the test may have a
 * load thread running. Spawned processes stay on a list until reaped, so a reap by
 * waitpid(-1) still records their status. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

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

#define SUP_POLL_MS      2
#define SUP_MAX_LISTEN   64
#define SUP_MAX_LEFTOVER 256
#define LISTEN_PID_SLOT  "LISTEN_PID=                    " /* room for the digits */

static struct sup_proc *sup_procs; /* spawned and not yet reaped */

void sup_poll_pause(void)
{
	struct timespec ts = {0, SUP_POLL_MS * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *sup_status_str(int status)
{
	static char buf[64];

	if (WIFEXITED(status))
		snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof buf, "killed by SIG%s", sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		snprintf(buf, sizeof buf, "wait status 0x%x", status);
	return buf;
}

/* ---- the environment ----------------------------------------------------------- */

static size_t env_name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Names a child never inherits from us: set explicitly or not at all. */
static int env_dropped(const char *kv, char *const extra[])
{
	static const char *const ours[] = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
					   "NOTIFY_SOCKET", "EMPEROR_TEST_TAG", NULL};
	size_t len = env_name_len(kv);

	for (int i = 0; ours[i]; i++)
		if (strlen(ours[i]) == len && strncmp(kv, ours[i], len) == 0)
			return 1;
	for (int i = 0; extra && extra[i]; i++)
		if (env_name_len(extra[i]) == len && strncmp(kv, extra[i], len) == 0)
			return 1;
	return 0;
}

/* Builds the child's environment. With listen fds, *pid_slot points at the value of
 * LISTEN_PID, which the child fills in. A NULL-terminated array of malloc'd strings. */
static char **env_build(char *const extra[], const struct sup_spawn_opts *o, char **pid_slot)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	for (char **e = environ; *e; e++)
		n++;
	for (int i = 0; extra && extra[i]; i++)
		n++;
	env = calloc(n + 5, sizeof *env);
	if (!env)
		return NULL;
	/* The tag first: /proc/PID/environ is searched from the start. */
	if (asprintf(&env[k++], "EMPEROR_TEST_TAG=%s", sup_tag()) < 0)
		env[k - 1] = NULL;
	for (char **e = environ; *e; e++)
		if (!env_dropped(*e, extra))
			env[k++] = strdup(*e);
	for (int i = 0; extra && extra[i]; i++)
		if (strchr(extra[i], '='))
			env[k++] = strdup(extra[i]);
	if (o->n_listen_fds > 0) {
		if (asprintf(&env[k++], "LISTEN_FDS=%d", o->n_listen_fds) < 0)
			env[k - 1] = NULL;
		env[k++] = strdup(LISTEN_PID_SLOT);
		*pid_slot = env[k - 1] ? env[k - 1] + strlen("LISTEN_PID=") : NULL;
		if (o->listen_fdnames && asprintf(&env[k++], "LISTEN_FDNAMES=%s", o->listen_fdnames) < 0)
			env[k - 1] = NULL;
	}
	for (size_t i = 0; i < k; i++)
		if (!env[i]) {
			for (size_t j = 0; j < k; j++)
				free(env[j]);
			free(env);
			return NULL;
		}
	return env;
}

static void env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* ---- the child --------------------------------------------------------------------- */

/* What the child needs, all prepared before fork(). */
struct spawn_plan {
	char *const *argv;
	char **env;
	char *pid_slot;            /* LISTEN_PID's digits, or NULL */
	const struct sup_spawn_opts *opts;
	int null_fd, log_fd, err_fd;
};

static void put_pid(char *slot, pid_t pid)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid > 0);
	while (n > 0)
		*slot++ = digits[--n];
	*slot = '\0';
}

/* Moves every fd the child keeps above the ones it will fill (0..2+n). */
static int child_move_fds(struct spawn_plan *pl, int *listen)
{
	int floor = 3 + pl->opts->n_listen_fds;

	for (int i = 0; i < pl->opts->n_listen_fds; i++)
		if ((listen[i] = fcntl(pl->opts->listen_fds[i], F_DUPFD_CLOEXEC, floor)) < 0)
			return -1;
	if ((pl->null_fd = fcntl(pl->null_fd, F_DUPFD_CLOEXEC, floor)) < 0 ||
	    (pl->log_fd = fcntl(pl->log_fd, F_DUPFD_CLOEXEC, floor)) < 0 ||
	    (pl->err_fd = fcntl(pl->err_fd, F_DUPFD_CLOEXEC, floor)) < 0)
		return -1;
	return 0;
}

static int child_setup_fds(struct spawn_plan *pl)
{
	int listen[SUP_MAX_LISTEN], first_free = 3 + pl->opts->n_listen_fds;

	if (child_move_fds(pl, listen) < 0)
		return -1;
	if (dup2(pl->null_fd, 0) < 0 || dup2(pl->log_fd, 1) < 0 || dup2(pl->log_fd, 2) < 0)
		return -1;
	for (int i = 0; i < pl->opts->n_listen_fds; i++)
		if (dup2(listen[i], 3 + i) < 0)
			return -1;
	if (close_range((unsigned)first_free, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	for (int fd = first_free; fd < 4096; fd++)
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF)
			return -1;
	return 0;
}

static _Noreturn void child_exec(struct spawn_plan *pl)
{
	sigset_t none;
	int err;

	if ((pl->opts->flags & SUP_SPAWN_NEW_PGROUP) && setpgid(0, 0) < 0)
		goto fail;
	if (child_setup_fds(pl) < 0)
		goto fail;
	/* We ignore SIGPIPE and the load thread may block signals: neither is inherited. */
	if (signal(SIGPIPE, SIG_DFL) == SIG_ERR || sigemptyset(&none) < 0 ||
	    sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		goto fail;
	if (pl->pid_slot)
		put_pid(pl->pid_slot, getpid());
	if (pl->opts->cwd && chdir(pl->opts->cwd) < 0)
		goto fail;
	execvpe(pl->argv[0], pl->argv, pl->env);
fail:
	err = errno;
	if (write(pl->err_fd, &err, sizeof err) < 0)
		_exit(126);
	_exit(127);
}

/* ---- spawn -------------------------------------------------------------------------- */

static int plan_open(struct spawn_plan *pl, int err_pipe[2])
{
	const char *log = pl->opts->logpath;

	pl->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pl->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (pipe2(err_pipe, O_CLOEXEC) < 0)
		err_pipe[0] = err_pipe[1] = -1;
	pl->err_fd = err_pipe[1];
	if (pl->null_fd >= 0 && pl->log_fd >= 0 && pl->err_fd >= 0)
		return 0;
	fprintf(stderr, "sup: spawn %s: opening /dev/null, %s or a pipe: %s\n", pl->argv[0], log,
		strerror(errno));
	return -1;
}

static void plan_close(struct spawn_plan *pl, int err_pipe[2])
{
	int fds[] = {pl->null_fd, pl->log_fd, err_pipe[0], err_pipe[1]};

	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0 && close(fds[i]) < 0)
			fprintf(stderr, "sup: close(%d): %s\n", fds[i], strerror(errno));
	env_free(pl->env);
}

/* 0 if the child exec'd (the pipe closed empty), else its errno. */
static int exec_error(int err_pipe[2])
{
	int err = 0;
	ssize_t n;

	if (close(err_pipe[1]) < 0)
		fprintf(stderr, "sup: close(pipe): %s\n", strerror(errno));
	err_pipe[1] = -1;
	do
		n = read(err_pipe[0], &err, sizeof err);
	while (n < 0 && errno == EINTR);
	return n == sizeof err ? err : 0;
}

static struct sup_proc *proc_new(const struct sup_spawn_opts *o)
{
	struct sup_proc *p = calloc(1, sizeof *p);

	if (p && !(p->logpath = strdup(o->logpath))) {
		free(p);
		p = NULL;
	}
	return p;
}

struct sup_proc *sup_spawn_ex(char *const argv[], char *const extra_env[],
			      const struct sup_spawn_opts *opts)
{
	struct spawn_plan pl = {.argv = argv, .opts = opts};
	struct sup_proc *p = proc_new(opts);
	int err_pipe[2] = {-1, -1}, err;

	if (!p || opts->n_listen_fds > SUP_MAX_LISTEN ||
	    !(pl.env = env_build(extra_env, opts, &pl.pid_slot)) || plan_open(&pl, err_pipe) < 0)
		goto fail;
	p->pid = fork();
	if (p->pid < 0) {
		fprintf(stderr, "sup: fork: %s\n", strerror(errno));
		goto fail;
	}
	if (p->pid == 0)
		child_exec(&pl);
	p->pgid = opts->flags & SUP_SPAWN_NEW_PGROUP ? p->pid : getpgrp();
	p->next = sup_procs;
	sup_procs = p;
	err = exec_error(err_pipe);
	plan_close(&pl, err_pipe);
	if (err == 0)
		return p;
	fprintf(stderr, "sup: exec %s: %s\n", argv[0], strerror(err));
	sup_wait_exit(p, 5000); /* it is in _exit(127) */
	sup_proc_free(p);
	return NULL;
fail:
	plan_close(&pl, err_pipe);
	if (p)
		free(p->logpath);
	free(p);
	return NULL;
}

struct sup_proc *sup_spawn(char *const argv[], char *const extra_env[], const char *cwd,
			   const char *logpath)
{
	struct sup_spawn_opts o = {.cwd = cwd, .logpath = logpath};

	return sup_spawn_ex(argv, extra_env, &o);
}

struct sup_proc *sup_spawn_activated(int listen_fd, char *const argv[], char *const extra_env[],
				     const char *logpath)
{
	struct sup_spawn_opts o = {
		.logpath = logpath, .listen_fds = &listen_fd, .n_listen_fds = 1, .listen_fdnames = "http",
	};

	return sup_spawn_ex(argv, extra_env, &o);
}

/* ---- reaping ------------------------------------------------------------------------ */

static void proc_reaped(pid_t pid, int status)
{
	for (struct sup_proc **pp = &sup_procs; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid != pid)
			continue;
		(*pp)->exited = 1;
		(*pp)->status = status;
		*pp = (*pp)->next;
		return;
	}
}

/* Reaps every zombie child, ours by spawn or adopted as subreaper. */
static void reap_children(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		proc_reaped(pid, status);
	if (pid < 0 && errno != ECHILD)
		fprintf(stderr, "sup: waitpid(-1): %s\n", strerror(errno));
}

int sup_wait_exit(struct sup_proc *p, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = p->exited ? 0 : waitpid(p->pid, &status, WNOHANG);

		if (r > 0)
			proc_reaped(p->pid, status);
		if (p->exited)
			return 0;
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "sup: waitpid(%d): %s\n", (int)p->pid, strerror(errno));
			return -1;
		}
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "sup: pid %d still running after %d ms\n", (int)p->pid, timeout_ms);
			return -1;
		}
		sup_poll_pause();
	}
}

int sup_stop(struct sup_proc *p, int sig, int timeout_ms)
{
	if (p->exited)
		return 0;
	if (kill(p->pid, sig) < 0)
		fprintf(stderr, "sup: kill(%d, SIG%s): %s\n", (int)p->pid, sigabbrev_np(sig), strerror(errno));
	if (sup_wait_exit(p, timeout_ms) == 0)
		return 0;
	fprintf(stderr, "sup: pid %d ignored SIG%s for %d ms: SIGKILL\n", (int)p->pid, sigabbrev_np(sig),
		timeout_ms);
	if (kill(p->pid, SIGKILL) < 0)
		fprintf(stderr, "sup: kill(%d, SIGKILL): %s\n", (int)p->pid, strerror(errno));
	sup_wait_exit(p, 5000);
	return -1;
}

int sup_kill_group(struct sup_proc *p, int sig)
{
	if (kill(-p->pgid, sig) == 0)
		return 0;
	fprintf(stderr, "sup: kill(-%d, SIG%s): %s\n", (int)p->pgid, sigabbrev_np(sig), strerror(errno));
	return -1;
}

void sup_proc_free(struct sup_proc *p)
{
	if (!p)
		return;
	if (!p->exited) {
		fprintf(stderr, "sup: pid %d (%s) still running when freed: SIGKILL\n", (int)p->pid,
			p->logpath);
		sup_stop(p, SIGKILL, 5000);
	}
	proc_reaped(p->pid, p->status); /* off the list in any case */
	free(p->logpath);
	free(p);
}

/* ---- leftovers ---------------------------------------------------------------------- */

static int add_unique(pid_t *out, int n, int max, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (out[i] == pid)
			return n;
	if (n < max)
		out[n++] = pid;
	return n;
}

/* Tagged live processes plus every descendant of ours, zombies included. */
static int leftovers(pid_t *out, int max)
{
	pid_t found[SUP_MAX_LEFTOVER];
	int n = 0, k;

	k = sup_tagged_pids(found, SUP_MAX_LEFTOVER);
	for (int i = 0; i < k; i++)
		n = add_unique(out, n, max, found[i]);
	k = sup_descendants(getpid(), found, SUP_MAX_LEFTOVER);
	for (int i = 0; i < k; i++)
		n = add_unique(out, n, max, found[i]);
	return n;
}

static void print_proc(pid_t pid)
{
	char *cmd = sup_pid_cmdline(pid);

	fprintf(stderr, "sup: leftover pid %d ppid %d pgid %d state %c: %s\n", (int)pid,
		(int)sup_pid_ppid(pid), (int)sup_pid_pgid(pid), sup_pid_state(pid) ?: '?',
		cmd && *cmd ? cmd : "(no cmdline)");
	free(cmd);
}

/* Kills what a failed test left, so the next test starts clean. */
static void kill_leftovers(const pid_t *pids, int n)
{
	long long deadline = sup_now_ms() + 2000;

	for (int i = 0; i < n; i++) {
		print_proc(pids[i]);
		if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
			fprintf(stderr, "sup: kill(%d, SIGKILL): %s\n", (int)pids[i], strerror(errno));
	}
	do {
		reap_children();
		sup_poll_pause();
	} while (sup_descendants(getpid(), (pid_t[1]){0}, 1) > 0 && sup_now_ms() < deadline);
}

int sup_wait_no_leftovers(int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	pid_t pids[SUP_MAX_LEFTOVER];
	int n;

	for (;;) {
		reap_children();
		n = leftovers(pids, SUP_MAX_LEFTOVER);
		if (n == 0)
			return 0;
		if (sup_now_ms() >= deadline)
			break;
		sup_poll_pause();
	}
	fprintf(stderr, "sup: %d process%s left after %d ms (tag %s):\n", n, n == 1 ? "" : "es",
		timeout_ms, sup_tag());
	kill_leftovers(pids, n);
	return -1;
}
