/* child_start.c — the child's side of lib/child.c's spawn, between vfork (or fork)
 * and exec: process group, parent-death signal, no-new-privileges, signals, stdio, the
 * fds at 3.. (LISTEN_FDS), the working directory, the pid in its environment, then exec
 * (or the in-code run). A child that execs shares the parent's memory until then
 * (vfork): everything here is a system call on what the parent prepared (the
 * environment, room for the fds; struct child_launch). Nothing allocates, locks, logs
 * or writes what the parent reads; the PATH search is ours (execvp's would read our
 * environ, not the child's). A step that fails writes its name and errno on the
 * exec-status pipe, which the parent reads on its loop (child.c). */
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

const char *child_step_name(const struct start_report *r)
{
	static const char *const names[] = {
		[STEP_EXEC] = "exec", [STEP_SETPGID] = "setpgid",
		[STEP_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
		[STEP_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
		[STEP_STDIO] = "stdin/stdout/stderr", [STEP_FDS] = "placing its fds",
		[STEP_CHDIR] = "chdir", [STEP_SIGNALS] = "sigprocmask",
	};
	if (r->step == STEP_HOOK)
		return r->what;
	return r->step >= 0 && r->step < (int)ARRAY_LEN(names) && names[r->step] ? names[r->step]
										      : "?";
}

static void report(int errfd, int step, const char *what, bool warn)
{
	struct start_report r = { .err = errno ? errno : EINVAL, .step = step, .warn = warn };
	size_t i = 0;

	for (; what && what[i] && i < sizeof r.what - 1; i++)
		r.what[i] = what[i];
	r.what[i] = '\0';
	while (errfd >= 0 && write(errfd, &r, sizeof r) < 0 && errno == EINTR)
		;
}

static _Noreturn void start_failed(int errfd, int step)
{
	report(errfd, step, NULL, false);
	_exit(127);
}

void child_warn(const struct child_report *rep, const char *what)
{
	report(rep->fd, STEP_HOOK, what, true);
}

_Noreturn void child_fail(const struct child_report *rep, const char *what)
{
	report(rep->fd, STEP_HOOK, what, false);
	_exit(127);
}

/* One candidate of the PATH search: dir + "/" + file in buf. */
static const char *path_join(char *buf, size_t size, const char *dir, size_t dir_len,
			     const char *file)
{
	size_t flen = strlen(file);

	if (dir_len + 1 + flen + 1 > size)
		return NULL;
	memcpy(buf, dir, dir_len);
	buf[dir_len] = '/';
	memcpy(buf + dir_len + 1, file, flen + 1);
	return buf;
}

/* execve, and as execvp does, a file the kernel cannot run (ENOEXEC: no "#!") run by
 * /bin/sh. */
static void exec_file(const char *file, char *const *argv, char *const *envp)
{
	size_t argc = 0;

	execve(file, argv, envp);
	if (errno != ENOEXEC)
		return;
	while (argv[argc])
		argc++;
	char *sh_argv[argc + 2];
	sh_argv[0] = (char *)"/bin/sh";
	sh_argv[1] = (char *)file;
	for (size_t i = 1; i <= argc; i++)
		sh_argv[i + 1] = argv[i];
	execve(sh_argv[0], sh_argv, envp);
	errno = ENOEXEC;
}

/* execvp's search, with the child's own PATH (envp's, else "/bin:/usr/bin"): an
 * entry that is not there is skipped, one we may not run remembered (EACCES if no
 * later one runs), any other error ends the search. Returns only on failure. */
static void exec_search(char *const *argv, char *const *envp)
{
	const char *path = "/bin:/usr/bin", *dir;
	bool denied = false;
	char buf[4096];

	if (!argv[0][0]) {
		errno = ENOENT;
		return;
	}
	if (strchr(argv[0], '/')) {
		exec_file(argv[0], argv, envp);
		return;
	}
	for (size_t i = 0; envp[i]; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			path = envp[i] + 5;
	for (dir = path;; dir++) {
		size_t len = strcspn(dir, ":");
		const char *file = path_join(buf, sizeof buf, len ? dir : ".", len ? len : 1, argv[0]);
		if (file) {
			exec_file(file, argv, envp);
			if (errno == EACCES)
				denied = true;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
				 errno != ENODEV && errno != ETIMEDOUT)
				return;
		}
		dir += len;
		if (!*dir)
			break;
	}
	errno = denied ? EACCES : ENOENT;
}

_Noreturn void child_start(const struct child_set *set, const struct child_exec *x,
			   struct child_launch *l)
{
	struct child_report rep = { .fd = l->errfd };

	if (!x->keep_group && setpgid(0, 0) < 0)
		start_failed(rep.fd, STEP_SETPGID);
	if (x->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		start_failed(rep.fd, STEP_PDEATHSIG);
	if (x->die_with_parent && getppid() != l->parent)
		_exit(127); /* the parent is already gone: nobody to report to */
	if (privs_no_new_privs() < 0) /* promised: no exec below can gain privileges */
		start_failed(rep.fd, STEP_NO_NEW_PRIVS);
	if (set->in_child)
		set->in_child(set->in_child_arg, &rep);
	if (reset_signals() < 0)
		start_failed(rep.fd, STEP_SIGNALS);
	if (setup_stdio(x->out_fd) < 0)
		start_failed(rep.fd, STEP_STDIO);
	if (x->run) {
		close(rep.fd);
		rep.fd = -1;
		close_all_but(x->fds, x->n_fds); /* the parent's channels and loop are not ours */
		if (x->in_child)
			x->in_child(x->in_child_arg, &rep);
		_exit(x->run(x->run_arg));
	}
	if (place_fds(x, l->fd_tmp, &rep.fd) < 0)
		start_failed(rep.fd, STEP_FDS);
	child_env_fill_pid(l);
	if (x->cwd && chdir(x->cwd) < 0)
		start_failed(rep.fd, STEP_CHDIR);
	if (x->in_child)
		x->in_child(x->in_child_arg, &rep);
	exec_search(x->argv, l->envp);
	start_failed(rep.fd, STEP_EXEC);
}
