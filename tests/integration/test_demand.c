/* test_demand.c — on-demand vassals and the idle stop, run for real: the emperor binds
 * an on-demand vassal's socket and starts no master until a client connects; fifty
 * clients on the cold socket all get 200; `idle:` stops the vassal (stopping-idle, then
 * on-demand again, or idle without on-demand) and leaves the port to the emperor alone,
 * the next request starts it again; a changed file re-binds; SIGHUP and removal behave as for any vassal and the port is released.
 * Who holds a port is read from /proc/net/tcp (the listener's inode, sup_tcp_listeners)
 * and every process's /proc/PID/fd. */
#include "emperor_fixture.h"

#include <dirent.h>

#define IDLE_KEYS "on-demand: true\nidle: 1s\n"

static void put_on_demand(const struct fixture *f, const char *file, int port, const char *keys)
{
	struct vassal_opts o = { .port = port, .greeting = "cold", .keys = keys };

	put_file(f->vdir, file, vassal_text(f, &o));
}

/* The inode of the socket listening on port, 0 if none. */
static unsigned long listener_inode(int port)
{
	struct sup_listener l;

	return sup_tcp_listeners(port, &l, 1) > 0 ? l.inode : 0;
}

/* How many processes hold socket inode, the first one's pid in *who. */
static int holders(unsigned long inode, pid_t *who)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	char want[64];
	int n = 0;

	assert_non_null(proc);
	snprintf(want, sizeof want, "socket:[%lu]", inode);
	while ((d = readdir(proc))) {
		char dir[64], link[600], target[128];
		struct dirent *e;
		DIR *fds;
		int pid = atoi(d->d_name), held = 0;
		if (pid <= 0)
			continue;
		snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
		if (!(fds = opendir(dir)))
			continue;
		while (!held && (e = readdir(fds))) {
			ssize_t k;
			snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
			k = readlink(link, target, sizeof target - 1);
			if (k > 0) {
				target[k] = '\0';
				held = strcmp(target, want) == 0;
			}
		}
		closedir(fds);
		if (held && n++ == 0)
			*who = pid;
	}
	closedir(proc);
	return n;
}

/* The port listens and the emperor is the only process holding it. */
static void assert_only_emperor_holds(const struct fixture *f, int port)
{
	unsigned long inode = listener_inode(port);
	pid_t who = 0;
	int n;

	if (!inode)
		fail_msg("nothing listens on 127.0.0.1:%d", port);
	n = holders(inode, &who);
	if (n != 1 || who != f->proc->pid)
		fail_msg("127.0.0.1:%d is held by %d processes (pid %d), expected the emperor (%d) alone",
			 port, n, (int)who, (int)f->proc->pid);
}

static int n_children(const struct fixture *f)
{
	pid_t kids[64];

	return sup_descendants(f->proc->pid, kids, 64);
}

/* `emperorctl status [--json]` holds needle. */
static void assert_status_json_has(const struct fixture *f, const char *needle)
{
	char *out = emperorctl_args(f, NULL, (const char *const[]){ "status", "--json", NULL }, T_MS);

	assert_non_null(out);
	if (!strstr(out, needle))
		fail_msg("no '%s' in the status JSON:\n%s", needle, out);
	free(out);
}

static void assert_status_has(const struct fixture *f, const char *needle)
{
	char *out = emperorctl(f, NULL, "status", T_MS);

	assert_non_null(out);
	if (!strstr(out, needle))
		fail_msg("no \"%s\" in the status:\n%s", needle, out);
	free(out);
}

/* ---- no master until the first connection ------------------------------------------- */

static void test_no_master_until_first_connection(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t worker;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	assert_only_emperor_holds(f, port);
	assert_int_equal(n_children(f), 0);
	assert_int_equal(count_lines(f, 0, " a: started (pid "), 0);
	assert_status_has(f, "on-demand");
	assert_status_json_has(f, "\"state\":\"on-demand\",\"on_demand\":true");

	worker = get_pid(port, NULL, 0, T_MS); /* the first request: answered, not refused */
	assert_true(worker > 0);
	assert_int_equal(sup_pid_ppid(sup_pid_ppid(worker)), f->proc->pid);
	wait_line(f, 0, " a: started (pid ");
	emperor_stop(f);
}

/* Fifty clients connect to the cold socket at once, then each sends its request:
 * every one is queued by the kernel while the master and its worker start. */
static void test_fifty_clients_on_a_cold_socket(void **state)
{
	struct fixture *f = *state;
	int port = free_port(), ok = 0;
	struct sup_conn *c[50];

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	for (int i = 0; i < 50; i++)
		assert_non_null(c[i] = sup_conn_open("127.0.0.1", port, T_MS));
	for (int i = 0; i < 50; i++)
		assert_int_equal(sup_conn_send(c[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, T_MS), 0);
	for (int i = 0; i < 50; i++) {
		struct sup_http r;
		if (sup_conn_read_response(c[i], &r, T_MS) == 0 && r.status == 200 &&
		    r.body && starts_with(r.body, "cold from pid "))
			ok++;
		if (r.status)
			sup_http_fini(&r);
		sup_conn_close(c[i]);
	}
	assert_int_equal(ok, 50);
	assert_int_equal(count_lines(f, 0, " a: started (pid "), 1);
	emperor_stop(f);
}

/* ---- idle ------------------------------------------------------------------------------ */

static void test_idle_stops_then_next_request_starts_it(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master, worker, again;
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, IDLE_KEYS);
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	worker = wait_serving(port, "cold", T_MS);
	master = started_pid(f, 0, "a");

	wait_line(f, 0, " a: stopped (idle); starts again at the next connection");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_int_equal(sup_wait_pid_dead(worker, T_MS), 0);
	assert_only_emperor_holds(f, port);
	assert_int_equal(n_children(f), 0);
	/* one state, one meaning: its sockets are watched, so it is on-demand */
	assert_status_has(f, "on-demand");
	assert_status_json_has(f, "\"state\":\"on-demand\",\"on_demand\":true");
	assert_int_equal(count_lines(f, 0, "idle: no connection on its sockets for "), 1);

	m = mark(f);
	again = get_pid(port, NULL, 0, T_MS);
	assert_true(again > 0 && again != worker);
	assert_true(started_pid(f, m, "a") != master);
	emperor_stop(f);
}

/* A connection kept open keeps the vassal up past its idle time. */
static void test_open_connection_keeps_it_up(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	struct sup_conn *c;
	struct sup_http r;
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, IDLE_KEYS);
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	assert_non_null(c = sup_conn_open("127.0.0.1", port, T_MS));
	assert_int_equal(sup_conn_get(c, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	sup_http_fini(&r);
	wait_line(f, 0, " a: ready after ");
	m = mark(f);
	/* three idle periods with the connection open: a second request on it is
	 * answered by the same run (no stop between) */
	long long until = sup_now_ms() + 3000;
	while (sup_now_ms() < until)
		sup_poll_pause();
	assert_int_equal(count_lines(f, m, " a: stopped (idle)"), 0);
	assert_int_equal(sup_conn_get(c, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	sup_http_fini(&r);
	sup_conn_close(c);
	wait_line(f, m, " a: stopped (idle)");
	emperor_stop(f);
}

/* Without on-demand, an idle vassal stays stopped (its port closed) until its file
 * changes. */
static void test_idle_without_on_demand_waits_for_the_file(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master;
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "idle: 1s\n");
	wait_serving(port, "cold", T_MS);
	master = started_pid(f, 0, "a");
	wait_line(f, 0, " a: stopped (idle); starts again when its file changes");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	assert_status_has(f, "idle");
	m = mark(f);
	sentinel(f, m); /* a scan went by: still no start */
	assert_int_equal(count_lines(f, 0, " a: started (pid "), 1);

	touch_path(f->vdir, "a.yaml", 0);
	wait_serving(port, "cold", T_MS);
	assert_true(started_pid(f, m, "a") != master);
	emperor_stop(f);
}

/* A vassal with `idle: 1s` whose worker ignores its stop signal: its idle stop lasts
 * the master's mercy (5 s), a window for what the tests do meanwhile. */
static pid_t put_slow_idler(struct fixture *f, int port, const char *keys)
{
	struct vassal_opts o = { .port = port, .greeting = "cold", .args = ", --ignore-stop",
				 .mercy = "5s", .keys = keys };

	put_file(f->vdir, "a.yaml", vassal_text(f, &o));
	wait_serving(port, "cold", T_MS);
	wait_line(f, 0, " a: stopping for being idle");
	return started_pid(f, 0, "a");
}

/* The emperor's SIGHUP while a's master stops for being idle: no reload is sent. */
static void sighup_while_stopping_idle(struct fixture *f)
{
	size_t m;

	assert_status_has(f, "stopping-idle");
	assert_status_json_has(f, "\"state\":\"stopping-idle\"");
	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_line(f, m, "SIGHUP: rescanning");
	sentinel(f, m); /* the SIGHUP's reloads were all decided before this scan */
	assert_int_equal(count_lines(f, m, " a: reloading ("), 0);
	assert_int_equal(count_lines(f, 0, " a: stopped (idle)"), 0); /* still in the window */
	assert_status_json_has(f, "\"state\":\"stopping-idle\"");
}

/* While its master stops for being idle, the vassal is stopping-idle, not ready, and
 * the emperor's SIGHUP sends it no reload; its exit then makes it idle. */
static void test_idle_stop_takes_no_reload(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master;

	emperor_start(f, NULL);
	master = put_slow_idler(f, port, "idle: 1s\n");
	sighup_while_stopping_idle(f);
	wait_line(f, 0, " a: stopped (idle); starts again when its file changes");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_status_json_has(f, "\"state\":\"idle\"");
	assert_int_equal(count_lines(f, 0, " a: started (pid "), 1);
	assert_int_equal(count_lines(f, 0, "cannot happen"), 0);
	emperor_stop(f);
}

/* The same with on-demand: after the SIGHUP left it alone, its stop makes it on-demand
 * and the next connection starts a new master. */
static void test_on_demand_idle_stop_takes_no_reload(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master, again;
	size_t m;

	emperor_start(f, NULL);
	master = put_slow_idler(f, port, IDLE_KEYS);
	sighup_while_stopping_idle(f);
	m = mark(f);
	wait_line(f, 0, " a: stopped (idle); starts again at the next connection");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_status_json_has(f, "\"state\":\"on-demand\"");
	again = get_pid(port, NULL, 0, T_MS);
	assert_true(again > 0);
	assert_true(started_pid(f, m, "a") != master);
	assert_int_equal(count_lines(f, 0, "cannot happen"), 0);
	emperor_stop(f);
}

/* A touch while its master stops for being idle is not lost: restarting, and once the
 * master has exited, a new one serves (as a touch of an idle vassal starts it). */
static void test_touch_during_idle_stop_restarts_it(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t master;
	size_t m;

	emperor_start(f, NULL);
	master = put_slow_idler(f, port, "idle: 1s\n");
	m = mark(f);
	touch_path(f->vdir, "a.yaml", 0);
	wait_line(f, m, " a: touched while it stops for being idle: it starts again once stopped");
	assert_int_equal(count_lines(f, m, " a: stopped (idle"), 0); /* still in the window */
	assert_status_has(f, "restarting");
	assert_status_json_has(f, "\"state\":\"restarting\"");
	assert_int_equal(count_lines(f, m, " a: reloading ("), 0);

	wait_line(f, m, " a: stopped (idle, ");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	wait_line(f, m, " a: ready after ");
	assert_true(started_pid(f, m, "a") != master);
	wait_serving(port, "cold", T_MS);
	assert_int_equal(count_lines(f, 0, "cannot happen"), 0);
	emperor_stop(f);
}

/* A process's voluntary context switches (its wake-ups). */
static long wakeups(pid_t pid)
{
	long n = sup_pid_wakeups(pid);

	if (n < 0) /* gone: a difference of two -1 would read as "no wake-up" */
		fail_msg("pid %d: gone, no voluntary_ctxt_switches", (int)pid);
	return n;
}

/* Without idle: no periodic wake-up of the master at all; with idle: 8s, its one
 * timer, every 2 s: both masters watched over the same 2.5 s of quiet (8 s, not less:
 * the idle stop, 6 s or more after the last request, stays well after the window
 * even when the waits before it are slow). */
static void test_idle_timer_only_when_set(void **state)
{
	struct fixture *f = *state;
	int plain = free_port(), timed = free_port();
	pid_t m_plain, m_timed;
	long n_plain, n_timed, until;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", plain, "");
	put_on_demand(f, "b.yaml", timed, "idle: 8s\n");
	wait_serving(plain, "cold", T_MS);
	wait_serving(timed, "cold", T_MS);
	m_plain = started_pid(f, 0, "a");
	m_timed = started_pid(f, 0, "b");
	wait_line(f, 0, " a: ready after ");
	wait_line(f, 0, " b: ready after ");
	assert_int_equal(sup_wait_pid_asleep(m_plain, T_MS), 0);
	n_plain = wakeups(m_plain);
	assert_int_equal(sup_wait_pid_asleep(m_timed, T_MS), 0);
	n_timed = wakeups(m_timed);
	until = sup_now_ms() + 2500;
	while (sup_now_ms() < until)
		sup_poll_pause();
	n_plain = wakeups(m_plain) - n_plain;
	n_timed = wakeups(m_timed) - n_timed;
	if (n_plain != 0 || n_timed < 1 || n_timed > 5)
		fail_msg("wake-ups in 2.5 s: %ld without idle (expected 0), %ld with idle: 8s "
			 "(expected 1 or 2)", n_plain, n_timed);
	assert_int_equal(count_lines(f, 0, " b: stopped (idle)"), 0);
	emperor_stop(f);
}

/* ---- a changed file, SIGHUP, removal ---------------------------------------------------- */

static void test_changed_file_rebinds(void **state)
{
	struct fixture *f = *state;
	int port = free_port(), other = free_port();
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	m = mark(f);
	put_on_demand(f, "a.yaml", other, "on-demand: true\n");
	wait_line(f, m, " a: on-demand: waiting for a connection");
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	assert_only_emperor_holds(f, other);
	wait_serving(other, "cold", T_MS);
	emperor_stop(f);
}

static void test_sighup_as_for_any_vassal(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	pid_t worker;
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_line(f, m, "SIGHUP: rescanning");
	wait_line(f, m, " a: on-demand: waiting for a connection"); /* file read again */
	assert_int_equal(n_children(f), 0);
	assert_only_emperor_holds(f, port);

	worker = wait_serving(port, "cold", T_MS);
	wait_line(f, 0, " a: ready after ");
	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_line(f, m, " a: reloaded (SIGHUP) in ");
	wait_other_worker(port, worker, T_MS);
	emperor_stop(f);
}

static void test_removal_releases_the_port(void **state)
{
	struct fixture *f = *state;
	int port = free_port(), other = free_port();
	pid_t master;
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	put_on_demand(f, "b.yaml", other, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	wait_line(f, 0, " b: on-demand: waiting for a connection");

	m = mark(f); /* removed while waiting: no master ever ran */
	remove_file(f->vdir, "a.yaml");
	wait_line(f, m, " a: removed (file removed)");
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);

	wait_serving(other, "cold", T_MS); /* removed while running */
	master = started_pid(f, 0, "b");
	m = mark(f);
	remove_file(f->vdir, "b.yaml");
	wait_line(f, m, " b: stopped (exited 0)");
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", other, T_MS), 0);
	assert_int_equal(listener_inode(other), 0);
	emperor_stop(f);
}

/* `emperorctl COMMAND a` (stop or start): 0 once it answered done. */
static int ctl_on(const struct fixture *f, const char *cmd)
{
	char *out = emperorctl_args(f, NULL, (const char *const[]){ cmd, "a", NULL }, T_MS);

	free(out);
	return out ? 0 : -1;
}

/* emperorctl stop closes an on-demand vassal's sockets (halted); start binds them
 * again and answers at once (no master until a connection). */
static void test_emperorctl_stop_and_start(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	size_t m;

	emperor_start(f, NULL);
	put_on_demand(f, "a.yaml", port, "on-demand: true\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	assert_int_equal(ctl_on(f, "stop"), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", port, T_MS), 0);
	assert_status_has(f, "halted");
	m = mark(f);
	assert_int_equal(ctl_on(f, "start"), 0);
	wait_line(f, m, " a: on-demand: waiting for a connection");
	assert_only_emperor_holds(f, port);
	assert_int_equal(n_children(f), 0);
	wait_serving(port, "cold", T_MS);
	emperor_stop(f);
}

/* SIGUSR2: the same listening sockets (same inodes) go across the exec, for a vassal
 * waiting for a connection and for a running one (kept for after its master's stop);
 * nothing is bound again. */
static void test_upgrade_hands_the_sockets_across(void **state)
{
	struct fixture *f = *state;
	int waiting = free_port(), running = free_port();
	unsigned long ino_waiting, ino_running;
	pid_t emperor, master;
	size_t m, served;

	emperor_start(f, NULL);
	emperor = f->proc->pid;
	put_on_demand(f, "a.yaml", waiting, "on-demand: true\n");
	/* 6 s, not 1 s: the master must still run when SIGUSR2 comes and its ppid is read,
	 * after an emperor re-exec, on a loaded machine (the stop comes 4.5 s or more after
	 * the request) */
	put_on_demand(f, "b.yaml", running, "on-demand: true\nidle: 6s\n");
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	wait_line(f, 0, " b: on-demand: waiting for a connection");
	served = mark(f); /* b's idle clock starts here: its stop may come before SIGUSR2 */
	wait_serving(running, "cold", T_MS);
	master = started_pid(f, 0, "b");
	wait_line(f, 0, " b: ready after ");
	ino_waiting = listener_inode(waiting);
	ino_running = listener_inode(running);

	m = mark(f);
	assert_int_equal(kill(emperor, SIGUSR2), 0);
	wait_line(f, m, " watching ");
	wait_line(f, m, "kept 127.0.0.1:"); /* a's: taken by the new image's first scan */
	assert_int_equal(count_lines(f, m, "on-demand: socket http: listening on"), 0);
	assert_int_equal(listener_inode(waiting), ino_waiting);
	assert_only_emperor_holds(f, waiting);
	assert_int_equal(sup_pid_ppid(master), emperor);

	wait_line(f, served, " b: stopped (idle); starts again at the next connection");
	assert_int_equal(listener_inode(running), ino_running);
	assert_only_emperor_holds(f, running);
	assert_int_equal(count_lines(f, m, "on-demand: socket http: listening on"), 0);
	wait_serving(running, "cold", T_MS);
	wait_serving(waiting, "cold", T_MS);
	emperor_stop(f);
}

/* SIGUSR2 while a renamed on-demand vassal's old name still stops (its worker ignores
 * the stop signal: 4 s of mercy): the new name waits for it in the new image too, then
 * takes the socket handed across (same inode, nothing bound again), not a fresh one
 * bound after the old image's leftovers were closed. */
static void test_upgrade_keeps_a_renamed_files_sockets(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	struct vassal_opts o = { .port = port, .greeting = "cold", .args = ", --ignore-stop",
				 .mercy = "4s", .keys = "on-demand: true\n" };
	char *from = sup_path(f->vdir, "a.yaml"), *to = sup_path(f->vdir, "b.yaml");
	unsigned long inode;
	pid_t master;
	size_t m;

	emperor_start(f, NULL);
	put_file(f->vdir, "a.yaml", vassal_text(f, &o));
	wait_line(f, 0, " a: on-demand: waiting for a connection");
	wait_serving(port, "cold", T_MS);
	master = started_pid(f, 0, "a");
	wait_line(f, 0, " a: ready after ");
	inode = listener_inode(port);
	assert_int_equal(rename(from, to), 0);
	wait_line(f, 0, " b: starts when a has stopped");

	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGUSR2), 0);
	wait_line(f, m, " watching ");
	wait_line(f, m, " b: starts when a has stopped"); /* the new image's first scan */
	assert_int_equal(sup_wait_pid_dead(master, T_MS), 0);
	wait_line(f, m, " b: on-demand: waiting for a connection");
	assert_int_equal(count_lines(f, m, "on-demand: socket http: listening on"), 0);
	assert_int_equal(listener_inode(port), inode);
	assert_only_emperor_holds(f, port);
	wait_serving(port, "cold", T_MS);
	free(from), free(to);
	emperor_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_no_master_until_first_connection),
		TEST(test_fifty_clients_on_a_cold_socket),
		TEST(test_idle_stops_then_next_request_starts_it),
		TEST(test_open_connection_keeps_it_up),
		TEST(test_idle_without_on_demand_waits_for_the_file),
		TEST(test_idle_stop_takes_no_reload),
		TEST(test_on_demand_idle_stop_takes_no_reload),
		TEST(test_touch_during_idle_stop_restarts_it),
		TEST(test_idle_timer_only_when_set),
		TEST(test_changed_file_rebinds),
		TEST(test_sighup_as_for_any_vassal),
		TEST(test_removal_releases_the_port),
		TEST(test_emperorctl_stop_and_start),
		TEST(test_upgrade_hands_the_sockets_across),
		TEST(test_upgrade_keeps_a_renamed_files_sockets),
	};

	sup_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
