/* test_install.c — shipping: `make install` and `make uninstall` into a temporary
 * DESTDIR put every file where docs/install.md says and take every one away again
 * (the binaries, the man pages built from docs/man/, the example vassal and the worker
 * it runs, the systemd unit with its paths following PREFIX); and the emperor as PID
 * 1 of a PID namespace (`unshare --pid --fork --mount-proc`), as in a container: it
 * serves, reaps the orphans re-parented to it (one made with nsenter, one left by a
 * crashed master), stops everything on SIGTERM and exits 0. Needs root (unshare,
 * nsenter, and the man target may apt-get install scdoc). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/support.h"

#define T_MS 10000          /* bound of every wait that should succeed at once */
#define MAKE_MS 240000      /* make install: up to date, but may apt-get install scdoc */
#define MAX_PIDS 256

struct fixture {
	char *dir;               /* the test's temp directory */
	char *root;              /* the repository: where the Makefile is */
	char *build_arg;         /* BUILD=..., the build directory the test runs from */
	char *log;               /* output of make, or of unshare and the emperor */
	struct sup_proc *proc;   /* unshare (test 2) */
};

/* ---- helpers ---------------------------------------------------------------------- */

/* The repository root: the nearest directory above the build directory that holds
 * the Makefile and docs/man/ (build/ or build/asan/ alike). */
static char *find_root(void)
{
	char *dir = strdup(sup_build_dir());

	assert_non_null(dir);
	for (char *slash = strrchr(dir, '/'); slash && slash != dir; slash = strrchr(dir, '/')) {
		*slash = '\0';
		char *mk = sup_path(dir, "Makefile"), *man = sup_path(dir, "docs/man");
		int found = access(mk, R_OK) == 0 && access(man, R_OK) == 0;
		free(mk);
		free(man);
		if (found)
			return dir;
	}
	fail_msg("no Makefile above %s", sup_build_dir());
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	const char *build = sup_build_dir();
	size_t n;

	assert_non_null(f);
	f->dir = sup_tmpdir();
	assert_non_null(f->dir);
	f->root = find_root();
	n = strlen(f->root);
	/* Relative to the root when below it, as the Makefile names its own outputs. */
	if (strncmp(build, f->root, n) == 0 && build[n] == '/')
		assert_true(asprintf(&f->build_arg, "BUILD=%s", build + n + 1) > 0);
	else
		assert_true(asprintf(&f->build_arg, "BUILD=%s", build) > 0);
	f->log = sup_path(f->dir, "out.log");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->proc && !f->proc->exited)
		sup_print_tail(f->log, 60);
	sup_proc_free(f->proc); /* SIGKILL to unshare: --kill-child takes the namespace down */
	if (sup_wait_no_leftovers(T_MS) < 0)
		fprintf(stderr, "teardown: leftovers killed\n");
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", f->dir);
	else
		sup_rmtree(f->dir);
	free(f->dir), free(f->root), free(f->build_arg), free(f->log), free(f);
	return 0;
}

static void assert_exited_0(struct sup_proc *p, int timeout_ms, const char *what)
{
	if (sup_wait_exit(p, timeout_ms) < 0 || !WIFEXITED(p->status) || WEXITSTATUS(p->status)) {
		fprintf(stderr, "%s: %s\n", what, p->exited ? sup_status_str(p->status) : "still running");
		sup_print_tail(p->logpath, 40);
		fail();
	}
}

/* make -s -C ROOT -o all TARGET DESTDIR=destdir [PREFIX=prefix] BUILD=..., exit 0.
 * `-o all` takes the build as it is (the test runs after it): nothing is compiled or
 * linked again, which under `make asan` would be done without the sanitizer flags.
 * The environment's MAKEFLAGS (from a `make test` above us), PREFIX and DESTDIR are
 * not passed on: only the command line decides. */
static void run_make(const struct fixture *f, const char *target, const char *destdir,
		     const char *prefix)
{
	char *dest_arg, *prefix_arg = NULL;
	char *argv[] = {"make", "-s", "--no-print-directory", "-C", f->root, "-o", "all",
			(char *)target, NULL, f->build_arg, NULL, NULL};
	char *env[] = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PREFIX", "DESTDIR", NULL};
	struct sup_proc *p;

	assert_true(asprintf(&dest_arg, "DESTDIR=%s", destdir) > 0);
	argv[8] = dest_arg;
	if (prefix) {
		assert_true(asprintf(&prefix_arg, "PREFIX=%s", prefix) > 0);
		argv[10] = prefix_arg;
	}
	p = sup_spawn(argv, env, NULL, f->log);
	assert_non_null(p);
	assert_exited_0(p, MAKE_MS, target);
	sup_proc_free(p);
	free(dest_arg);
	free(prefix_arg);
}

/* A malloc'd "destdir/prefix/rel". */
static char *installed(const char *destdir, const char *prefix, const char *rel)
{
	char *path;

	assert_true(asprintf(&path, "%s%s/%s", destdir, prefix, rel) > 0);
	return path;
}

static void assert_executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0777) != 0755)
		fail_msg("%s: not an executable file of mode 0755", path);
}

static void assert_file_has(const char *path, const char *needle)
{
	char *text = sup_read_file(path);

	if (!text)
		fail_msg("%s: missing", path);
	if (!strstr(text, needle))
		fail_msg("%s: no '%s' in it", path, needle);
	free(text);
}

static void assert_file_lacks(const char *path, const char *needle)
{
	char *text = sup_read_file(path);

	assert_non_null(text);
	if (strstr(text, needle))
		fail_msg("%s: '%s' is still in it", path, needle);
	free(text);
}

/* Each docs/man/NAME.SECTION.scd is installed as share/man/manSECTION/NAME.SECTION. */
static void assert_man_pages(const struct fixture *f, const char *destdir, const char *prefix)
{
	char *mandir = sup_path(f->root, "docs/man");
	DIR *d = opendir(mandir);
	struct dirent *de;
	int pages = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 7 || strcmp(de->d_name + n - 4, ".scd") != 0)
			continue;
		char page[NAME_MAX + 1], rel[NAME_MAX + 32], th[NAME_MAX + 32];
		snprintf(page, sizeof page, "%.*s", (int)(n - 4), de->d_name);
		const char *section = strrchr(page, '.') + 1;
		snprintf(rel, sizeof rel, "share/man/man%s/%s", section, page);
		snprintf(th, sizeof th, ".TH \"%.*s\" \"%s\"", (int)(section - 1 - page), page, section);
		char *path = installed(destdir, prefix, rel);
		assert_file_has(path, th);
		free(path);
		pages++;
	}
	closedir(d);
	free(mandir);
	assert_true(pages >= 3); /* emperor.8, vassal.8, vassal.yaml.5 at least */
}

static void assert_runs(const struct fixture *f, char *const argv[], const char *expect)
{
	size_t mark = sup_file_size(f->log);
	struct sup_proc *p = sup_spawn(argv, NULL, NULL, f->log);

	assert_non_null(p);
	assert_exited_0(p, T_MS, argv[0]);
	assert_int_equal(sup_count_file(f->log, mark, expect), 1);
	sup_proc_free(p);
}

static int file_count;

static int count_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)ftw;
	if (type != FTW_D && type != FTW_DP) {
		fprintf(stderr, "left behind: %s\n", path);
		file_count++;
	}
	return 0;
}

/* Files (anything but a directory) below dir. */
static int files_below(const char *dir)
{
	file_count = 0;
	assert_int_equal(nftw(dir, count_file, 16, FTW_PHYS), 0);
	return file_count;
}

/* Installs with DESTDIR (and PREFIX unless NULL, meaning the default /usr/local),
 * checks every file, uninstalls and checks that no file is left. */
static void install_and_uninstall(const struct fixture *f, const char *prefix)
{
	const char *p = prefix ? prefix : "/usr/local";
	char *dest = sup_path(f->dir, "dest"), *path, *bin, *unit, *example, *exec_line, *start_line;
	char *ctl = sup_bin("emperorctl"), *script;

	assert_int_equal(mkdir(dest, 0755), 0);
	run_make(f, "install", dest, prefix);

	path = installed(dest, p, "bin/emperor");
	assert_executable(path);
	assert_runs(f, (char *[]){path, "--version", NULL}, "emperor ");
	assert_runs(f, (char *[]){path, "--version", NULL}, "\nfeatures: etcd ");
	free(path);
	bin = installed(dest, p, "bin/vassal");
	assert_executable(bin);
	path = installed(dest, p, "libexec/emperor/hello-worker");
	assert_executable(path);
	free(path);
	path = installed(dest, p, "bin/emperorctl"); /* installed when it is built */
	if (access(ctl, X_OK) == 0)
		assert_executable(path);
	else
		assert_int_equal(access(path, F_OK), -1);
	free(path);

	assert_man_pages(f, dest, p);

	/* emperorctl's shell completion, where bash-completion and zsh look for it */
	path = installed(dest, p, "share/bash-completion/completions/emperorctl");
	assert_true(asprintf(&script, "source '%s' && complete -p emperorctl", path) > 0);
	assert_runs(f, (char *[]){"/bin/bash", "-c", script, NULL}, "complete -F _emperorctl emperorctl");
	free(path), free(script);
	path = installed(dest, p, strcmp(p, "/usr") == 0 ? "share/zsh/vendor-completions/_emperorctl"
							 : "share/zsh/site-functions/_emperorctl");
	assert_file_has(path, "#compdef emperorctl\n");
	free(path);

	/* The example vassal runs the installed worker, and is valid. */
	example = installed(dest, p, "share/doc/emperor/examples/hello.yaml");
	assert_true(asprintf(&exec_line, "exec: [%s/libexec/emperor/hello-worker,", p) > 0);
	assert_file_has(example, exec_line);
	assert_runs(f, (char *[]){bin, "--check", example, NULL}, ": ok");

	/* The unit starts the installed emperor on /etc/emperor/vassals.d. */
	unit = installed(dest, p, "lib/systemd/system/emperor.service");
	assert_true(asprintf(&start_line, "\nExecStart=%s/bin/emperor /etc/emperor/vassals.d\n", p) > 0);
	assert_file_has(unit, start_line);
	assert_file_has(unit, "\nType=notify\n");
	assert_file_has(unit, "\nKillMode=mixed\n");
	if (strcmp(p, "/usr/local") != 0) {
		assert_file_lacks(unit, "/usr/local/");
		assert_file_lacks(example, "/usr/local/");
	}

	run_make(f, "uninstall", dest, prefix);
	assert_int_equal(files_below(dest), 0);
	path = installed(dest, p, "share/doc/emperor");
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	path = installed(dest, p, "libexec/emperor");
	assert_int_equal(access(path, F_OK), -1);
	free(path);

	free(dest), free(bin), free(unit), free(example), free(exec_line), free(start_line);
	free(ctl);
}

/* A free loopback port below the ephemeral range, so that no client socket holds it. */
static int free_port(void)
{
	srandom((unsigned)getpid() ^ (unsigned)sup_now_ms());
	for (int tries = 0; tries < 1000; tries++) {
		int port = 20000 + (int)(random() % 12000), fd;
		sup_net_quiet(1);
		fd = sup_listen_tcp("127.0.0.1", port, NULL);
		sup_net_quiet(0);
		if (fd >= 0) {
			close(fd);
			return port;
		}
	}
	fail_msg("no free port");
	return -1;
}

enum cmd_match { CMD_STARTS_WITH, CMD_CONTAINS };

/* A live descendant of root whose parent is parent and whose command line starts
 * with (or contains) needle; 0 if none yet. */
static pid_t find_child(pid_t root, pid_t parent, const char *needle, enum cmd_match match)
{
	pid_t pids[MAX_PIDS], found = 0;
	int n = sup_descendants(root, pids, MAX_PIDS);

	for (int i = 0; i < n; i++) {
		char *cmd;
		if (sup_pid_ppid(pids[i]) != parent || !sup_pid_alive(pids[i]))
			continue;
		cmd = sup_pid_cmdline(pids[i]);
		if (cmd && (match == CMD_CONTAINS ? strstr(cmd, needle) != NULL
						  : strncmp(cmd, needle, strlen(needle)) == 0))
			found = pids[i];
		free(cmd);
	}
	return found;
}

static pid_t wait_child(pid_t root, pid_t parent, const char *needle, enum cmd_match match)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t pid;

	while (!(pid = find_child(root, parent, needle, match)) && sup_now_ms() < deadline)
		sup_poll_pause();
	if (!pid)
		fail_msg("no child of %d running '%s' after %d ms", (int)parent, needle, T_MS);
	return pid;
}

/* The pid of a process in the innermost PID namespace it belongs to (NSpid's last). */
static long innermost_pid(pid_t pid)
{
	char path[64], *status, *line, *last;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	status = sup_read_file(path);
	assert_non_null(status);
	line = strstr(status, "\nNSpid:");
	assert_non_null(line);
	line[strcspn(line + 1, "\n") + 1] = '\0';
	last = strrchr(line, '\t');
	assert_non_null(last);
	long inner = strtol(last + 1, NULL, 10);
	free(status);
	return inner;
}

/* 0 once no process below root is a zombie: a zombie is normal for a moment, between
 * a child's exit and its reaping, never for long. */
static int wait_no_zombie_below(pid_t root, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	pid_t pids[MAX_PIDS];

	for (;;) {
		int n = sup_descendants(root, pids, MAX_PIDS), zombies = 0;
		for (int i = 0; i < n; i++)
			zombies += sup_pid_state(pids[i]) == 'Z';
		if (zombies == 0)
			return 0;
		if (sup_now_ms() >= deadline) {
			for (int i = 0; i < n; i++)
				if (sup_pid_state(pids[i]) == 'Z')
					fprintf(stderr, "zombie %d, parent %d\n", (int)pids[i],
						(int)sup_pid_ppid(pids[i]));
			return -1;
		}
		sup_poll_pause();
	}
}

/* 0 once pid has vanished altogether: exited and reaped by its parent. */
static int wait_pid_reaped(pid_t pid, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (sup_pid_state(pid) != 0) {
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "pid %d: state %c, parent %d\n", (int)pid, sup_pid_state(pid),
				(int)sup_pid_ppid(pid));
			return -1;
		}
		sup_poll_pause();
	}
	return 0;
}

static void wait_hello(int port, const char *greeting)
{
	long long deadline = sup_now_ms() + T_MS;
	struct sup_http r;

	for (;;) {
		sup_net_quiet(1);
		int rc = sup_http_get("127.0.0.1", port, "/", &r, 1000);
		sup_net_quiet(0);
		if (rc == 0) {
			int ok = r.status == 200 && strncmp(r.body, greeting, strlen(greeting)) == 0;
			sup_http_fini(&r);
			if (ok)
				return;
		}
		if (sup_now_ms() >= deadline)
			fail_msg("no '%s' on 127.0.0.1:%d after %d ms", greeting, port, T_MS);
		sup_poll_pause();
	}
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_install_prefix_usr(void **state)
{
	install_and_uninstall(*state, "/usr");
}

static void test_install_default_prefix(void **state)
{
	install_and_uninstall(*state, NULL);
}

/* Waits until pid is gone, sending it SIGTERM once it has been re-parented to pid1
 * (a process killed before that is fine too): 0 once it has vanished altogether,
 * exited and reaped, never lingering as a zombie. */
static int end_orphan(pid_t pid, pid_t pid1, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	int signalled = 0;

	for (char state; (state = sup_pid_state(pid)) != 0; sup_poll_pause()) {
		if (!signalled && state != 'Z' && sup_pid_ppid(pid) == pid1)
			signalled = kill(pid, SIGTERM) == 0;
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "pid %d: state %c, parent %d (PID 1 is %d)\n", (int)pid, state,
				(int)sup_pid_ppid(pid), (int)pid1);
			return -1;
		}
	}
	return 0;
}

/* An orphan of the namespace, as `docker exec ... sh -c 'cmd &'` leaves one: the shell
 * exits at once and its sleep is re-parented to PID 1; the sleep's pid. */
static pid_t make_namespace_orphan(const struct fixture *f, pid_t root, pid_t pid1)
{
	char *log = sup_path(f->dir, "nsenter.log"), target[16];
	struct sup_proc *p;

	snprintf(target, sizeof target, "%d", (int)pid1);
	p = sup_spawn((char *[]){"nsenter", "--target", target, "--pid", "--", "sh", "-c",
				 "sleep 30 </dev/null >/dev/null 2>&1 &", NULL},
		      NULL, NULL, log);
	assert_non_null(p);
	assert_exited_0(p, T_MS, "nsenter");
	sup_proc_free(p);
	free(log);
	return wait_child(root, pid1, "sleep 30", CMD_STARTS_WITH);
}

/* The emperor as PID 1 of a PID namespace, as in a container, with one vassal whose
 * worker leaves a background `sleep` behind. */
static void test_emperor_as_pid1(void **state)
{
	struct fixture *f = *state;
	char *vdir = sup_path(f->dir, "vassals.d"), *file = sup_path(vdir, "web.yaml");
	char *worker = sup_bin("examples/hello-worker"), *emperor = sup_bin("emperor"), *text;
	char *control = sup_path(f->dir, "control.sock"); /* not in /run, even on a failure */
	int port = free_port();
	pid_t root, pid1, master, worker_pid, orphan;

	assert_int_equal(mkdir(vdir, 0755), 0);
	assert_true(asprintf(&text,
		"sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		"workers:\n"
		"  exec: [sh, -c, 'sleep 30 </dev/null >/dev/null 2>&1 3>&- & exec \"$0\" --greeting pid1', %s]\n"
		"  ready: notify\n"
		"  reload-mercy: 2s\n"
		"stop-mercy: 3s\n", port, worker) > 0);
	assert_int_equal(sup_write_file_atomic(file, text), 0);

	/* unshare forks the namespace's first process, which execs the emperor. */
	f->proc = sup_spawn((char *[]){"unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
				       emperor, "--throttle", "100ms", "--control", control, vdir,
				       NULL},
			    NULL, NULL, f->log);
	assert_non_null(f->proc);
	root = f->proc->pid;
	assert_int_equal(sup_wait_log(f->proc, 0, "watching ", T_MS), 0);
	pid1 = wait_child(root, root, emperor, CMD_STARTS_WITH);
	assert_int_equal(innermost_pid(pid1), 1);
	wait_hello(port, "pid1 from pid ");

	orphan = make_namespace_orphan(f, root, pid1);
	assert_int_equal(kill(orphan, SIGTERM), 0);
	assert_int_equal(wait_pid_reaped(orphan, T_MS), 0);

	/* A vassal master crashes: its worker dies with it (PR_SET_PDEATHSIG) and the
	 * worker's sleep is orphaned to PID 1; both are reaped, the vassal is respawned. */
	master = wait_child(root, pid1, "vassal", CMD_CONTAINS);
	worker_pid = wait_child(root, master, "hello-worker", CMD_CONTAINS);
	orphan = wait_child(root, worker_pid, "sleep 30", CMD_STARTS_WITH);
	assert_int_equal(kill(master, SIGKILL), 0);
	assert_int_equal(sup_wait_log(f->proc, 0, "web: died (killed by SIGKILL)", T_MS), 0);
	assert_int_equal(wait_pid_reaped(worker_pid, T_MS), 0);
	assert_int_equal(end_orphan(orphan, pid1, T_MS), 0);
	wait_hello(port, "pid1 from pid ");
	assert_int_equal(wait_no_zombie_below(root, T_MS), 0);

	/* SIGTERM to PID 1: every vassal stops gracefully, the emperor exits 0, and so
	 * does unshare, which reports its child's status; nothing is left. */
	assert_int_equal(kill(pid1, SIGTERM), 0);
	assert_exited_0(f->proc, T_MS, "unshare");
	assert_int_equal(sup_count_log(f->proc, 0, "web: stopped (exited 0)"), 1);
	assert_int_equal(sup_count_log(f->proc, 0, "every vassal has stopped: exiting"), 1);
	assert_int_equal(sup_wait_no_leftovers(T_MS), 0);

	free(vdir), free(file), free(worker), free(emperor), free(text), free(control);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_install_prefix_usr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_install_default_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emperor_as_pid1, setup, teardown),
	};

	sup_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
