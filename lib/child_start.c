/* child_start.c — the child's side of lib/child.c's spawn, between fork and exec:
 * process group, parent-death signal, no-new-privileges, signals, stdio, the fds at
 * 3.. (LISTEN_FDS), the environment, the working directory, then exec (or the in-code
 * run). A step that fails writes its name and errno on the exec-status pipe, which
 * the parent reads on its loop (child.c); nothing here may log or allocate. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "child_internal.h"
#include "privs.h"
#include "util.h"

extern char **environ;

/* Default dispositions (a signal the C library reserves refuses: harmless), and an
 * empty mask, which must hold: a program started with SIGTERM blocked never stops. */
static int reset_signals(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* One past the highest fd we can have open, for the loops that stand in for
 * close_range() on a kernel without it. */
static int fd_bound(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 1 << 20)
		return 1 << 20;
	return (int)rl.rlim_cur;
}

/* Moves fds[] to 3, 4, ... and everything else of ours >= 3 to close-on-exec. tmp has
 * room for n_fds (allocated by the parent before fork: any number of fds). */
static int place_fds(const struct child_exec *x, int *tmp, int *errfd)
{
	int first_free = 3 + x->n_fds;

	*errfd = fcntl(*errfd, F_DUPFD_CLOEXEC, first_free);
	if (*errfd < 0)
		return -1;
	for (int i = 0; i < x->n_fds; i++) {
		tmp[i] = fcntl(x->fds[i], F_DUPFD_CLOEXEC, first_free);
		if (tmp[i] < 0)
			return -1;
	}
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (int fd = 3, end = fd_bound(); fd < end; fd++)
			fd_set_cloexec(fd, 1); /* EBADF for the fds not open */
	for (int i = 0; i < x->n_fds; i++)
		if (dup2(tmp[i], 3 + i) < 0) /* dup2 clears FD_CLOEXEC on the copy */
			return -1;
	return 0;
}

/* close_range(), or a loop where the kernel lacks it. */
static void close_from_to(unsigned int from, unsigned int to)
{
	if (close_range(from, to, 0) == 0)
		return;
	for (unsigned int fd = from, end = (unsigned int)fd_bound(); fd <= to && fd < end; fd++)
		close((int)fd);
}

/* Closes every fd above 2 except keep[] (left at their numbers). */
static void close_all_but(const int *keep, int n)
{
	unsigned int from = 3;

	for (;;) {
		int next = -1; /* the lowest kept fd >= from */
		for (int i = 0; i < n; i++)
			if (keep[i] >= (int)from && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0) {
			close_from_to(from, ~0U);
			return;
		}
		if ((unsigned int)next > from)
			close_from_to(from, (unsigned int)next - 1);
		from = (unsigned int)next + 1;
	}
}

static int setup_stdio(int out_fd)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null < 0 || dup2(null, 0) < 0)
		return -1;
	if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0))
		return -1;
	return 0;
}

static int setup_env(const struct child_exec *x)
{
	char buf[32];

	if (x->env)
		environ = (char **)x->env;
	if (!x->fdnames)
		return 0;
	snprintf(buf, sizeof buf, "%d", x->n_listen_fds > 0 ? x->n_listen_fds : x->n_fds);
	if (setenv("LISTEN_FDS", buf, 1) < 0)
		return -1;
	snprintf(buf, sizeof buf, "%d", (int)getpid());
	if (setenv("LISTEN_PID", buf, 1) < 0)
		return -1;
	return setenv("LISTEN_FDNAMES", x->fdnames, 1);
}


const char *child_step_name(int step)
{
	static const char *const names[] = {
		[STEP_EXEC] = "exec", [STEP_SETPGID] = "setpgid",
		[STEP_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
		[STEP_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
		[STEP_STDIO] = "stdin/stdout/stderr", [STEP_FDS] = "placing its fds",
		[STEP_ENV] = "setenv(LISTEN_*)", [STEP_CHDIR] = "chdir",
		[STEP_SIGNALS] = "sigprocmask",
	};
	return step >= 0 && step < (int)ARRAY_LEN(names) ? names[step] : "?";
}

static _Noreturn void start_failed(int errfd, int step)
{
	struct start_report r = { .err = errno ? errno : EINVAL, .step = step };

	while (write(errfd, &r, sizeof r) < 0 && errno == EINTR)
		;
	_exit(127);
}

_Noreturn void child_start(const struct child_set *set, const struct child_exec *x,
				  int errfd, int *fd_tmp, pid_t parent)
{
	if (!x->keep_group && setpgid(0, 0) < 0)
		start_failed(errfd, STEP_SETPGID);
	if (x->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		start_failed(errfd, STEP_PDEATHSIG);
	if (x->die_with_parent && getppid() != parent)
		_exit(127); /* the parent is already gone: nobody to report to */
	if (privs_no_new_privs() < 0) /* promised: no exec below can gain privileges */
		start_failed(errfd, STEP_NO_NEW_PRIVS);
	if (set->in_child)
		set->in_child(set->in_child_arg);
	if (reset_signals() < 0)
		start_failed(errfd, STEP_SIGNALS);
	if (setup_stdio(x->out_fd) < 0)
		start_failed(errfd, STEP_STDIO);
	if (x->run) {
		close(errfd);
		close_all_but(x->fds, x->n_fds); /* the parent's channels and loop are not ours */
		if (x->in_child)
			x->in_child(x->in_child_arg);
		_exit(x->run(x->run_arg));
	}
	if (place_fds(x, fd_tmp, &errfd) < 0)
		start_failed(errfd, STEP_FDS);
	if (setup_env(x) < 0)
		start_failed(errfd, STEP_ENV);
	if (x->cwd && chdir(x->cwd) < 0)
		start_failed(errfd, STEP_CHDIR);
	if (x->in_child)
		x->in_child(x->in_child_arg);
	execvp(x->argv[0], x->argv);
	start_failed(errfd, STEP_EXEC);
}
