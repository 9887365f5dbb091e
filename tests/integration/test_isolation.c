/* test_isolation.c — the isolation half of issue 8, run for real as root: a vassal's
 * `user:`/`group:` drop (its master, workers, mule and daemon all nobody, serving on
 * a privileged port the master bound first), no-new-privileges in every child,
 * `limits:` and `umask:` in the children, tyrant mode's refusals and its drop to the
 * file's owner, the no-mercy kill and the graceful reload of a vassal whose worker
 * setsid'd a sleeper (nothing of it may survive), and the containment the emperor
 * reports. Each test starts an emperor (emperor_fixture.h) with its control socket in
 * the test's temp dir and ends by stopping it and finding nothing left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grp.h>
#include <sys/statfs.h>

#include "emperor_fixture.h"
#include "vassal_fixture.h"

#define NOBODY 65534          /* uid of nobody, gid of nogroup */
#define CGROUP2_MAGIC 0x63677270

struct iso {
	struct fixture *f;
	char *bin;                /* f->dir/bin, 0755: copies of the binaries nobody runs */
	char *vassal, *mule;      /* copies in bin (f->worker is moved there too) */
	char *ctl;                /* f->dir/ctl.sock: the emperor's control socket */
	char *stage;              /* f->dir/stage: files get their owner here, then move in */
};

/* ---- fixture ------------------------------------------------------------------------- */

/* The fixture's temp dir, opened to nobody (0755), with the binaries nobody must be
 * able to execute copied into it. */
static int iso_setup(void **state)
{
	struct iso *t = calloc(1, sizeof *t);
	void *fs = NULL;

	assert_non_null(t);
	setup(&fs);
	t->f = fs;
	assert_int_equal(chmod(t->f->dir, 0755), 0);
	t->bin = sup_path(t->f->dir, "bin");
	t->stage = sup_path(t->f->dir, "stage");
	t->ctl = sup_path(t->f->dir, "ctl.sock");
	assert_int_equal(mkdir(t->bin, 0755), 0);
	assert_int_equal(mkdir(t->stage, 0755), 0);
	free(t->f->worker);
	t->f->worker = sup_copy_bin(t->bin, "examples/hello-worker");
	t->mule = sup_copy_bin(t->bin, "examples/mule");
	t->vassal = sup_copy_bin(t->bin, "vassal");
	assert_true(t->f->worker && t->mule && t->vassal);
	assert_int_equal(chmod(t->f->worker, 0755), 0);
	assert_int_equal(chmod(t->mule, 0755), 0);
	assert_int_equal(chmod(t->vassal, 0755), 0);
	*state = t;
	return 0;
}

static int iso_teardown(void **state)
{
	struct iso *t = *state;
	void *fs = t->f;

	teardown(&fs);
	free(t->bin), free(t->vassal), free(t->mule), free(t->ctl), free(t->stage), free(t);
	return 0;
}

#define ISO_TEST(fn) cmocka_unit_test_setup_teardown(fn, iso_setup, iso_teardown)

/* The emperor on vassals.d with our control socket and vassal copy, plus extra args.
 * It starts in supplementary group 0 (root may have none): a drop that forgot
 * setgroups() would leave that to nobody. */
static void iso_emperor(struct iso *t, const char *a, const char *b, const char *c)
{
	const char *args[] = { "--control", t->ctl, "--vassal", t->vassal, a, b, c, NULL };
	gid_t saved[64], root_group = 0;
	int n = getgroups(64, saved);

	assert_true(n >= 0);
	assert_int_equal(setgroups(1, &root_group), 0);
	emperor_start(t->f, args);
	assert_int_equal(setgroups((size_t)n, saved), 0);
}

/* Written in stage/, given its owner and mode there, then renamed into vassals.d: the
 * emperor never sees it with another owner or mode. */
static void put_owned(struct iso *t, const char *file, const char *text, uid_t uid, gid_t gid,
		      mode_t mode)
{
	char *tmp = sup_path(t->stage, file), *dst = sup_path(t->f->vdir, file);

	assert_int_equal(sup_write_file(tmp, text), 0);
	assert_int_equal(chown(tmp, uid, gid), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, dst), 0);
	free(tmp), free(dst);
}

/* A free loopback port below 1024: nobody cannot bind it, only the master as root. */
static int free_low_port(void)
{
	int start = 600 + (int)(random() % 300);

	for (int i = 0; i < 400; i++) {
		int port = 600 + (start - 600 + i) % 424, fd;
		sup_net_quiet(1);
		fd = sup_listen_tcp("127.0.0.1", port, NULL);
		sup_net_quiet(0);
		if (fd >= 0) {
			close(fd);
			return port;
		}
	}
	fail_msg("no free port below 1024");
	return -1;
}

/* ---- /proc ---------------------------------------------------------------------------- */

/* The value of a /proc/PID/status field ("Uid", "Umask"...), malloc'd; NULL if absent. */
static char *status_field(pid_t pid, const char *field)
{
	char path[64], *text, *save = NULL, *value = NULL;
	size_t len = strlen(field);

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	text = sup_read_file(path);
	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line && !value;
	     line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, field, len) == 0 && line[len] == ':')
			value = strdup(line + len + 1 + strspn(line + len + 1, " \t"));
	free(text);
	return value;
}

/* field of /proc/PID/status is want. */
static void assert_status(pid_t pid, const char *what, const char *field, const char *want)
{
	char *value = status_field(pid, field);

	if (!value || strcmp(value, want) != 0)
		fail_msg("%s (pid %d): %s: \"%s\", expected \"%s\"", what, (int)pid, field,
			 value ? value : "(none)", want);
	free(value);
}

/* Real, effective, saved and filesystem ids of field ("Uid" or "Gid") are all id. */
static void assert_ids_field(pid_t pid, const char *what, const char *field, unsigned id)
{
	char *value = status_field(pid, field);
	unsigned v[4];

	if (!value || sscanf(value, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) != 4 ||
	    v[0] != id || v[1] != id || v[2] != id || v[3] != id)
		fail_msg("%s (pid %d): %s: \"%s\", expected %u four times", what, (int)pid, field,
			 value ? value : "(none)", id);
	free(value);
}

static void assert_runs_as(pid_t pid, const char *what, unsigned uid, unsigned gid)
{
	assert_ids_field(pid, what, "Uid", uid);
	assert_ids_field(pid, what, "Gid", gid);
}

/* Dropped for good: nobody's ids, no supplementary group 0, no capability left, and
 * no exec can gain one back. */
static void assert_dropped(pid_t pid, const char *what)
{
	char *groups = status_field(pid, "Groups"), *save = NULL;

	assert_runs_as(pid, what, NOBODY, NOBODY);
	assert_non_null(groups);
	for (char *g = strtok_r(groups, " \t", &save); g; g = strtok_r(NULL, " \t", &save))
		if (atoi(g) == 0)
			fail_msg("%s (pid %d): still in group 0 (Groups: %s)", what, (int)pid, groups);
	free(groups);
	assert_status(pid, what, "CapEff", "0000000000000000");
	assert_status(pid, what, "CapPrm", "0000000000000000");
	assert_status(pid, what, "NoNewPrivs", "1");
}

/* Soft and hard values of a /proc/PID/limits line ("Max open files"). */
static void read_limit(pid_t pid, const char *name, char *soft, char *hard)
{
	char path[64], *text, *at;

	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	text = sup_read_file(path);
	assert_non_null(text);
	at = strstr(text, name);
	if (!at || sscanf(at + strlen(name), "%31s %31s", soft, hard) != 2)
		fail_msg("pid %d: no \"%s\" in %s", (int)pid, name, path);
	free(text);
}

static void assert_limit(pid_t pid, const char *what, const char *name, const char *want)
{
	char soft[32], hard[32];

	read_limit(pid, name, soft, hard);
	if (strcmp(soft, want) != 0 || strcmp(hard, want) != 0)
		fail_msg("%s (pid %d): %s %s %s, expected %s %s", what, (int)pid, name, soft, hard,
			 want, want);
}

/* How many live children of master have needle in their command line; the first
 * max of them in out. */
static int children_like(pid_t master, const char *needle, pid_t *out, int max)
{
	pid_t kids[VT_MAX_PIDS];
	int k = vt_children(master, kids, VT_MAX_PIDS), n = 0;

	for (int i = 0; i < k; i++) {
		char *cmd = sup_pid_cmdline(kids[i]);
		if (cmd && strstr(cmd, needle)) {
			if (n < max)
				out[n] = kids[i];
			n++;
		}
		free(cmd);
	}
	return n;
}

/* The children of master running needle, once there are exactly want of them (after
 * their exec: before it they show the master's command line). */
static void wait_children_like(pid_t master, const char *needle, pid_t *out, int want)
{
	long long deadline = sup_now_ms() + T_MS;
	int n;

	while ((n = children_like(master, needle, out, want)) != want && sup_now_ms() < deadline)
		sup_poll_pause();
	if (n != want)
		fail_msg("master %d: %d children running \"%s\", expected %d", (int)master, n,
			 needle, want);
}

/* Waits (bounded) until no tagged process but the emperor is alive; prints and fails
 * on what is left. */
static void wait_only_emperor(struct fixture *f, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	pid_t pids[64];
	int n, others;

	do {
		n = sup_tagged_pids(pids, 64);
		others = 0;
		for (int i = 0; i < n; i++)
			others += pids[i] != f->proc->pid;
		if (others)
			sup_poll_pause();
	} while (others && sup_now_ms() < deadline);
	for (int i = 0; others && i < n; i++) {
		char *cmd = sup_pid_cmdline(pids[i]);
		if (pids[i] != f->proc->pid)
			fprintf(stderr, "still alive: pid %d ppid %d pgid %d: %s\n", (int)pids[i],
				(int)sup_pid_ppid(pids[i]), (int)sup_pid_pgid(pids[i]), cmd ? cmd : "?");
		free(cmd);
	}
	if (others) {
		sup_print_tail(f->log, 40);
		fail_msg("%d process(es) of the vassal outlived it by %d ms", others, timeout_ms);
	}
}

/* ---- 1. user: and group: ------------------------------------------------------------- */

/* The master binds a port below 1024 as root, then it and everything it starts run
 * as nobody:nogroup, without capabilities, under no-new-privileges. */
static void test_user_group_drop(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	int port = free_low_port();
	pid_t master, workers[2], mule, daemon, pid;
	char text[2048];

	iso_emperor(t, NULL, NULL, NULL);
	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "user: nobody\ngroup: nogroup\n"
		 "workers: {count: 2, exec: [%s, --greeting, nobody], ready: notify, reload-mercy: 2s}\n"
		 "mules: [{name: m, exec: [%s]}]\n"
		 "daemons: [{name: d, exec: [sleep, \"3600\"], stop-mercy: 1s}]\n"
		 "stop-mercy: 5s\n",
		 port, f->worker, t->mule);
	put_file(f->vdir, "iso.yaml", text);
	master = started_pid(f, 0, "iso");
	wait_vassal(f, "iso", port, "nobody");
	wait_line(f, 0, "]: running as uid 65534 gid 65534 user nobody");

	wait_children_like(master, "hello-worker", workers, 2);
	wait_children_like(master, t->mule, &mule, 1);
	wait_children_like(master, "sleep 3600", &daemon, 1);
	assert_dropped(master, "master");
	assert_dropped(workers[0], "worker");
	assert_dropped(workers[1], "worker");
	assert_dropped(mule, "mule");
	assert_dropped(daemon, "daemon");

	/* Both workers answer on the privileged port the master bound before the drop. */
	for (int i = 0; i < 20; i++) {
		pid = get_pid(port, NULL, 0, T_MS);
		assert_true(pid == workers[0] || pid == workers[1]);
	}
	emperor_stop(f);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
}

/* ---- 2. limits: ------------------------------------------------------------------------ */

/* limits: are set in every child before its exec; the master keeps its own. */
static void test_limits_in_children_only(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	struct vassal_opts o = {
		.port = free_port(), .greeting = "limited",
		.keys = "limits: {nofile: 200, core: 0}\n"
			"daemons: [{name: d, exec: [sleep, \"3600\"], stop-mercy: 1s}]\n",
	};
	char master_soft[32], master_hard[32], emp_soft[32], emp_hard[32];
	pid_t master, worker, daemon;

	iso_emperor(t, NULL, NULL, NULL);
	put_file(f->vdir, "iso.yaml", vassal_text(f, &o));
	master = started_pid(f, 0, "iso");
	worker = wait_vassal(f, "iso", o.port, "limited");
	wait_children_like(master, "sleep 3600", &daemon, 1);

	assert_limit(worker, "worker", "Max open files", "200");
	assert_limit(worker, "worker", "Max core file size", "0");
	assert_limit(daemon, "daemon", "Max open files", "200");
	assert_limit(daemon, "daemon", "Max core file size", "0");

	read_limit(master, "Max open files", master_soft, master_hard);
	read_limit(f->proc->pid, "Max open files", emp_soft, emp_hard);
	if (strcmp(master_soft, "200") == 0 || strcmp(master_soft, emp_soft) != 0 ||
	    strcmp(master_hard, emp_hard) != 0)
		fail_msg("master: Max open files %s %s, expected the emperor's %s %s", master_soft,
			 master_hard, emp_soft, emp_hard);
	emperor_stop(f);
}

/* ---- 3. umask: ------------------------------------------------------------------------- */

static void test_umask(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	struct vassal_opts o = { .port = free_port(), .greeting = "masked",
				 .keys = "umask: \"027\"\n" };
	mode_t old = umask(022); /* the emperor inherits 022: 027 can only come from the file */
	pid_t master, worker;

	iso_emperor(t, NULL, NULL, NULL);
	umask(old);
	put_file(f->vdir, "iso.yaml", vassal_text(f, &o));
	master = started_pid(f, 0, "iso");
	worker = wait_vassal(f, "iso", o.port, "masked");
	assert_status(f->proc->pid, "emperor", "Umask", "0022");
	assert_status(master, "master", "Umask", "0027");
	assert_status(worker, "worker", "Umask", "0027");
	emperor_stop(f);
}

/* ---- 4. tyrant mode ------------------------------------------------------------------ */

/* "NAME: not started (tyrant mode): ..." holds why, and the vassal's port is refused. */
static void assert_refused(struct fixture *f, const char *name, const char *why, int port)
{
	char needle[128], *rest;

	snprintf(needle, sizeof needle, " %s: not started (tyrant mode): ", name);
	wait_line(f, 0, needle);
	rest = log_rest_of_line(f, 0, needle);
	assert_non_null(rest);
	if (!strstr(rest, why))
		fail_msg("%s refused for \"%s\", expected \"%s\"", name, rest, why);
	free(rest);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
}

/* A vassal file for greeting on port, with the given owner and mode. */
static int put_tyrant_vassal(struct iso *t, const char *name, const char *greeting, uid_t uid,
			     gid_t gid, mode_t mode)
{
	struct vassal_opts o = { .port = free_port(), .greeting = greeting };
	char file[64];

	snprintf(file, sizeof file, "%s.yaml", name);
	put_owned(t, file, vassal_text(t->f, &o), uid, gid, mode);
	return o.port;
}

/* The vassal runs, its master and its worker as uid:gid (as nobody: fully dropped). */
static void assert_vassal_runs_as(struct fixture *f, const char *name, int port,
				  const char *greeting, unsigned uid, unsigned gid)
{
	pid_t master = started_pid(f, 0, name), worker = wait_vassal(f, name, port, greeting);

	if (uid == NOBODY) {
		assert_dropped(master, "master");
		assert_dropped(worker, "worker");
		return;
	}
	assert_runs_as(master, "master", uid, gid);
	assert_runs_as(worker, "worker", uid, gid);
	assert_status(worker, "worker", "NoNewPrivs", "1");
}

/* A symlink vassals.d/link.yaml to a nobody-owned 0644 file in a 0755 directory. */
static int put_symlinked_vassal(struct iso *t)
{
	struct vassal_opts o = { .port = free_port(), .greeting = "linked" };
	char *dir = sup_path(t->f->dir, "targets"), *target = sup_path(dir, "linked.yaml");

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(sup_write_file(target, vassal_text(t->f, &o)), 0);
	assert_int_equal(chown(target, NOBODY, NOBODY), 0);
	assert_int_equal(chmod(target, 0644), 0);
	make_symlink(target, t->f->vdir, "link.yaml");
	free(dir), free(target);
	return o.port;
}

/* --tyrant: root-owned and loose files are refused with the reason; a nobody-owned
 * file, or a symlink to one, runs as nobody. */
static void test_tyrant_owner_and_strict_modes(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	int root_port, others_port, group_port, owned_port, link_port;

	iso_emperor(t, "--tyrant", NULL, NULL);
	wait_line(f, 0, "tyrant mode: each vassal runs as the owner of its file");
	root_port = put_tyrant_vassal(t, "root", "rooted", 0, 0, 0644);
	others_port = put_tyrant_vassal(t, "others", "loose", NOBODY, 0, 0666);
	group_port = put_tyrant_vassal(t, "group", "shared", NOBODY, NOBODY, 0664);
	owned_port = put_tyrant_vassal(t, "owned", "mine", NOBODY, NOBODY, 0644);
	link_port = put_symlinked_vassal(t);

	assert_vassal_runs_as(f, "owned", owned_port, "mine", NOBODY, NOBODY);
	assert_vassal_runs_as(f, "link", link_port, "linked", NOBODY, NOBODY);
	assert_refused(f, "root", "owned by root", root_port);
	assert_refused(f, "others", "writable by others", others_port);
	assert_refused(f, "group", "writable by its group", group_port);
	assert_int_equal(count_lines(f, 0, ": started (pid "), 2); /* owned and link only */
	emperor_stop(f);
}

/* --tyrant-allow-root runs a root-owned file as root (and a nobody-owned one still as
 * nobody); --tyrant-nofollow refuses a symlink. */
static void test_tyrant_nofollow_and_allow_root(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	int root_port, owned_port, link_port;

	iso_emperor(t, "--tyrant", "--tyrant-nofollow", "--tyrant-allow-root");
	wait_line(f, 0, "root-owned files allowed; symlinked files refused");
	root_port = put_tyrant_vassal(t, "root", "rooted", 0, 0, 0644);
	owned_port = put_tyrant_vassal(t, "owned", "mine", NOBODY, NOBODY, 0644);
	link_port = put_symlinked_vassal(t);

	assert_vassal_runs_as(f, "root", root_port, "rooted", 0, 0);
	assert_vassal_runs_as(f, "owned", owned_port, "mine", NOBODY, NOBODY);
	assert_refused(f, "link", "symlink", link_port);
	emperor_stop(f);
}

/* A nobody-owned symlink in vassals.d to a root-only file (as /etc/shadow): the
 * emperor, root, must not read it for nobody. It is refused for its owners, and not
 * one of the file's lines reaches the log or `emperorctl status`. A root-owned link
 * to a nobody-owned file still runs as nobody (root placed it). */
static void test_tyrant_symlink_to_root_file_not_read(void **state)
{
	static const char secret[] = "s3cret-marker-4711: [a, b]\nroot:$6$s3cret-hash:19000::\n";
	struct iso *t = *state;
	struct fixture *f = t->f;
	char *target = sup_path(t->f->dir, "shadow"), *link = sup_path(t->stage, "evil.yaml");
	char *dst = sup_path(f->vdir, "evil.yaml"), *log, *status;
	int link_port;

	assert_int_equal(sup_write_file(target, secret), 0);
	assert_int_equal(chmod(target, 0600), 0);
	iso_emperor(t, "--tyrant", NULL, NULL);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(lchown(link, NOBODY, NOBODY), 0);
	assert_int_equal(rename(link, dst), 0);
	link_port = put_symlinked_vassal(t);

	assert_vassal_runs_as(f, "link", link_port, "linked", NOBODY, NOBODY);
	wait_line(f, 0, " evil: not started (tyrant mode): ");
	log = log_text(f, 0);
	if (!strstr(log, "symlink owned by uid 65534 to a file owned by uid 0"))
		fail_msg("evil.yaml refused, but not for its link's owner");
	status = emperorctl(f, t->ctl, "status", T_MS);
	assert_non_null(status);
	if (strstr(log, "s3cret") || strstr(status, "s3cret")) {
		fprintf(stderr, "%s\n%s\n", log, status);
		fail_msg("the root-only file's content was quoted");
	}
	free(log), free(status), free(target), free(link), free(dst);
	emperor_stop(f);
}

/* Tyrant mode: a file's owner may not move its vassal's cgroup outside the emperor's
 * (a '..' or an absolute cgroup.parent); the file is refused, naming the value. */
static void test_tyrant_cgroup_parent_stays_inside(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	struct vassal_opts up = { .port = free_port(), .greeting = "up",
				  .keys = "cgroup: {parent: \"../../escape\"}\n" };
	struct vassal_opts abs = { .port = free_port(), .greeting = "abs",
				   .keys = "cgroup: {parent: /system.slice}\n" };

	iso_emperor(t, "--tyrant", NULL, NULL);
	put_owned(t, "up.yaml", vassal_text(f, &up), NOBODY, NOBODY, 0644);
	put_owned(t, "abs.yaml", vassal_text(f, &abs), NOBODY, NOBODY, 0644);
	assert_refused(f, "up", "cgroup.parent \"../../escape\" is refused: an empty, '.' or '..' "
		       "component", up.port);
	assert_refused(f, "abs", "cgroup.parent \"/system.slice\" is refused: an absolute path",
		       abs.port);
	assert_int_equal(count_lines(f, 0, ": started (pid "), 0);
	emperor_stop(f);
}

/* Tyrant mode: the emperor would bind an on-demand vassal's sockets as root (a
 * privileged port, a socket file anywhere): refused for a file not owned by root. */
static void test_tyrant_refuses_on_demand(void **state)
{
	struct iso *t = *state;
	struct fixture *f = t->f;
	struct vassal_opts od = { .port = free_port(), .greeting = "od", .keys = "on-demand: true\n" };

	iso_emperor(t, "--tyrant", NULL, NULL);
	put_owned(t, "od.yaml", vassal_text(f, &od), NOBODY, NOBODY, 0644);
	assert_refused(f, "od", "on-demand is refused in tyrant mode for a file not owned by root",
		       od.port);
	assert_int_equal(count_lines(f, 0, "on-demand: socket"), 0);
	emperor_stop(f);
}

/* --tyrant-nofollow or --tyrant-allow-root without --tyrant: a usage error, exit 2.
 * (--tyrant as non-root also exits 2; we run as root, so that is not checked.) */
static void test_tyrant_options_need_tyrant(void **state)
{
	struct iso *t = *state;
	static const char *const options[] = { "--tyrant-nofollow", "--tyrant-allow-root" };

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		char *argv[] = { t->f->emperor, "--control", t->ctl, (char *)options[i], t->f->vdir, NULL };
		size_t from = sup_file_size(t->f->log);
		struct sup_proc *p = sup_spawn(argv, NULL, NULL, t->f->log);

		assert_non_null(p);
		assert_int_equal(sup_wait_exit(p, T_MS), 0);
		if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 2)
			fail_msg("emperor %s: %s, expected exit 2", options[i], sup_status_str(p->status));
		assert_int_equal(sup_wait_file(t->f->log, from, "go with --tyrant", T_MS), 0);
		sup_proc_free(p);
	}
	assert_int_equal(access(t->ctl, F_OK), -1);
	vt_assert_log_clean(t->f->log);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* ---- 5. a worker's setsid'd sleeper ----------------------------------------------------- */

/* One worker: sh that starts `sleep 300` in a session of its own (out of the worker's
 * process group, holding the listening socket), then execs a hello-worker that
 * ignores its stop signal. */
static void put_sleeper_vassal(struct fixture *f, int port, const char *reload_mercy,
			       const char *stop_mercy)
{
	char text[2048];

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [sh, -c, \"setsid sh -c 'sleep 300' & exec %s "
		 "--greeting stray --ignore-stop\"], ready: notify, reload-mercy: %s}\n"
		 "stop-mercy: %s\n",
		 port, f->worker, reload_mercy, stop_mercy);
	put_file(f->vdir, "iso.yaml", text);
}

/* The sleeper processes of worker (the setsid'd sh and its sleep, or the sleep
 * alone), once the sleep runs in a process group other than the worker's. */
static int wait_sleepers(pid_t worker, pid_t *out, int max)
{
	long long deadline = sup_now_ms() + T_MS;
	int n, escaped;

	do {
		pid_t tagged[64];
		int k = sup_tagged_pids(tagged, 64);

		n = escaped = 0;
		for (int i = 0; i < k; i++) {
			char *cmd = sup_pid_cmdline(tagged[i]);
			pid_t parent = sup_pid_ppid(tagged[i]);
			if (cmd && strstr(cmd, "sleep 300") && n < max &&
			    (parent == worker || sup_pid_ppid(parent) == worker)) {
				out[n++] = tagged[i];
				escaped |= strcmp(cmd, "sleep 300") == 0 &&
					   sup_pid_pgid(tagged[i]) != sup_pid_pgid(worker);
			}
			free(cmd);
		}
		if (!escaped)
			sup_poll_pause();
	} while (!escaped && sup_now_ms() < deadline);
	if (!escaped)
		fail_msg("worker %d: no setsid'd \"sleep 300\" below it", (int)worker);
	return n;
}

static void assert_all_dead(const pid_t *pids, int n, const char *when)
{
	for (int i = 0; i < n; i++)
		if (sup_wait_pid_dead(pids[i], 500) < 0)
			fail_msg("sleeper pid %d still alive %s", (int)pids[i], when);
}

/* Delete the file: the master's teardown kills the worker after its 1s mercy, then
 * the sleeper it adopted; nothing of the vassal is left, the port is free. */
static void test_stop_leaves_no_sleeper(void **state)
{
	struct fixture *f = ((struct iso *)*state)->f;
	int port = free_port(), n;
	pid_t worker, sleepers[4];
	size_t m;

	iso_emperor(*state, NULL, NULL, NULL);
	put_sleeper_vassal(f, port, "1s", "2s");
	worker = wait_vassal(f, "iso", port, "stray");
	n = wait_sleepers(worker, sleepers, 4);

	m = mark(f);
	remove_file(f->vdir, "iso.yaml");
	wait_line(f, m, " iso: stopping (file removed)");
	wait_line(f, m, " iso: stopped (");
	wait_only_emperor(f, 3000);
	assert_all_dead(sleepers, n, "after the vassal stopped");
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	emperor_stop(f);
}

/* The worker outlasts the vassal's stop-mercy: the emperor SIGKILLs the master, the
 * worker dies with it (PDEATHSIG), and the sleeper is killed as a stray by the
 * emperor. The worker may still be dying when the emperor looks for strays, its
 * sleeper not yet handed over to it: a race this test catches in a few runs of a
 * hundred when strays' descendants are not killed with them. */
static void test_no_mercy_kill_leaves_no_sleeper(void **state)
{
	struct fixture *f = ((struct iso *)*state)->f;
	int port = free_port(), n;
	pid_t master, worker, sleepers[4];
	char needle[96];
	size_t m;

	iso_emperor(*state, NULL, NULL, NULL);
	put_sleeper_vassal(f, port, "30s", "1s");
	master = started_pid(f, 0, "iso");
	worker = wait_vassal(f, "iso", port, "stray");
	n = wait_sleepers(worker, sleepers, 4);

	m = mark(f);
	remove_file(f->vdir, "iso.yaml");
	snprintf(needle, sizeof needle, "vassal iso (pid %d): no mercy after ", (int)master);
	wait_line(f, m, needle);
	wait_line(f, m, " iso: stopped (killed by SIGKILL)");
	wait_only_emperor(f, 3000);
	assert_all_dead(sleepers, n, "after the no-mercy kill");
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	emperor_stop(f);
}

/* touch: a graceful reload; the old generation's sleeper does not outlive it. */
static void test_reload_leaves_no_sleeper(void **state)
{
	struct fixture *f = ((struct iso *)*state)->f;
	int port = free_port(), n;
	pid_t worker, fresh, sleepers[4], fresh_sleepers[4];
	size_t m;

	iso_emperor(*state, NULL, NULL, NULL);
	put_sleeper_vassal(f, port, "1s", "2s");
	worker = wait_vassal(f, "iso", port, "stray");
	n = wait_sleepers(worker, sleepers, 4);

	m = mark(f);
	touch_path(f->vdir, "iso.yaml", 0);
	wait_line(f, m, " iso: reloaded (touched) in ");
	assert_all_dead(sleepers, n, "after the reload");
	fresh = wait_other_worker(port, worker, T_MS);
	assert_serves(port, "stray", fresh);
	wait_sleepers(fresh, fresh_sleepers, 4); /* the new generation has its own */
	emperor_stop(f);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
}

/* ---- 6. containment --------------------------------------------------------------------- */

/* The emperor says how it contains vassals; without a cgroup2 mount it can only be
 * process groups and subreaping, and it says why. */
static void test_containment_logged(void **state)
{
	struct fixture *f = ((struct iso *)*state)->f;
	struct statfs sf;
	int cgroup2 = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_MAGIC;
	int groups, v2;

	iso_emperor(*state, NULL, NULL, NULL);
	groups = count_lines(f, 0, "containment: process groups and subreaping (no cgroup v2: ");
	v2 = count_lines(f, 0, "containment: cgroup v2: each vassal gets ");
	if (groups + v2 != 1)
		fail_msg("containment logged %d times, expected once", groups + v2);
	if (!cgroup2)
		assert_int_equal(count_lines(f, 0, "/sys/fs/cgroup is not a cgroup2 mount)"), 1);
	emperor_stop(f);
}

/* Run in place of every test when we are not root. */
static void test_needs_root(void **state)
{
	(void)state;
	fprintf(stderr, "test_isolation: needs root (it changes owners and drops to nobody)\n");
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		ISO_TEST(test_user_group_drop),
		ISO_TEST(test_limits_in_children_only),
		ISO_TEST(test_umask),
		ISO_TEST(test_tyrant_owner_and_strict_modes),
		ISO_TEST(test_tyrant_nofollow_and_allow_root),
		ISO_TEST(test_tyrant_options_need_tyrant),
		ISO_TEST(test_tyrant_symlink_to_root_file_not_read),
		ISO_TEST(test_tyrant_cgroup_parent_stays_inside),
		ISO_TEST(test_tyrant_refuses_on_demand),
		ISO_TEST(test_stop_leaves_no_sleeper),
		ISO_TEST(test_no_mercy_kill_leaves_no_sleeper),
		ISO_TEST(test_reload_leaves_no_sleeper),
		ISO_TEST(test_containment_logged),
	};

	const struct CMUnitTest without_root[] = { cmocka_unit_test(test_needs_root) };

	sup_init();
	if (geteuid() != 0)
		return cmocka_run_group_tests(without_root, NULL, NULL);
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
