/* test_children.c — a vassal's mules, attached daemons and nested emperor, run for
 * real: the order in which a graceful reload tears every kind of child down (and who
 * keeps its pid), mule farm messages (each delivered once, the size limit, a queue
 * that outlives a reload), daemons adopted from a pidfile, restarted by a touch, the
 * respawn backoff of a mule that exits at once, a stop that arrives during a reload's
 * teardown, what a child never inherits from the master's handover, one kind failing
 * to start while the others start, and a re-exec with 310 sockets. Each test writes a
 * vassal file into a temp dir, runs `build/vassal FILE`, waits on log lines, files and
 * ports, and ends by stopping the master and finding nothing left
 * (children_fixture.h). The spooler has its own file, test_spooler.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "children_fixture.h"

/* ---- processes ------------------------------------------------------------------------- */

/* Live descendants of root, once there are exactly want of them. */
static int live_descendants(pid_t root, pid_t *out, int want)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t all[256];
	int n = 0;

	do {
		int total = sup_descendants(root, all, 256);
		n = 0;
		for (int i = 0; i < total && n < MAX_PIDS; i++)
			if (sup_pid_alive(all[i]))
				out[n++] = all[i];
		if (n != want)
			sup_poll_pause();
	} while (n != want && sup_now_ms() < deadline);
	if (n != want) {
		fprintf(stderr, "%d live descendants of %d, expected %d:\n", n, (int)root, want);
		for (int i = 0; i < n; i++) {
			char *cmd = sup_pid_cmdline(out[i]);
			fprintf(stderr, "  %d %s\n", (int)out[i], cmd ? cmd : "?");
			free(cmd);
		}
	}
	assert_int_equal(n, want);
	return n;
}

static int pid_in(pid_t pid, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* `touch path`: the same system calls (open O_CREAT, utimensat, close). */
static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(futimens(fd, NULL), 0);
	assert_int_equal(close(fd), 0);
}

/* ---- the teardown order of a graceful reload ------------------------------------- */

static void write_everything_vassal(struct ct *t, int nested_port)
{
	assert_int_equal(mkdir(in_dir(t, "nested"), 0750), 0);
	write_fmt(in_dir(t, "nested/n.yaml"),
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  exec: [%s, --greeting, nested]\n  ready: notify\n",
		  nested_port, t->worker);
	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  count: 2\n  exec: [%s]\n  ready: notify\n  reload-mercy: 5s\n"
		  "mules:\n"
		  "  - name: mailer\n    exec: [%s]\n    count: 2\n"
		  "  - name: audit\n    exec: [%s]\n"
		  "spooler:\n  dir: ./spool\n  exec: [sh, -c, 'exit 0']\n"
		  "daemons:\n"
		  "  - name: cache\n    exec: [sleep, '3600']\n"
		  "  - name: keeper\n    exec: [sleep, '3601']\n    survive-reload: true\n"
		  "emperor:\n  dir: ./nested\n  stop-mercy: 10s\n",
		  t->port, t->worker, t->mule, t->mule);
}

/* The nested vassal answers on its own port, from a worker other than not_pid. */
static pid_t nested_answers(int port, pid_t not_pid)
{
	struct sup_http r;
	pid_t pid;

	assert_int_equal(sup_wait_port("127.0.0.1", port, T_MS), 0);
	assert_int_equal(sup_http_get("127.0.0.1", port, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "nested from pid "));
	pid = (pid_t)atoi(sup_http_header(&r, "X-Worker-Pid"));
	sup_http_fini(&r);
	assert_true(pid > 1 && pid != not_pid);
	return pid;
}

/* 2 workers, mules mailer 1-2 and audit 1, spooler 1, daemons cache and keeper, the
 * nested emperor, its vassal and that vassal's worker. */
#define EVERYTHING_PROCS 11

static void test_reload_order_and_new_pids(void **state)
{
	struct ct *t = *state;
	int nested_port = sup_free_port();
	pid_t before[MAX_PIDS], after[MAX_PIDS], keeper, nested_worker;
	char stopped[64];
	size_t mark;

	write_everything_vassal(t, nested_port);
	start(t, 2);
	nested_worker = nested_answers(nested_port, 0);
	live_descendants(t->p->pid, before, EVERYTHING_PROCS);
	keeper = started_pid(t, 0, "daemon keeper");

	mark = sup_log_size(t->p);
	reload(t, 2);
	assert_int_equal(sup_wait_log(t->p, mark, "ready: 1 workers, generation 1", T_MS), 0);
	nested_answers(nested_port, nested_worker);
	live_descendants(t->p->pid, after, EVERYTHING_PROCS);

	/* Every child is new but the survive-reload daemon. */
	assert_true(pid_in(keeper, before, EVERYTHING_PROCS));
	assert_true(pid_in(keeper, after, EVERYTHING_PROCS));
	assert_true(sup_pid_alive(keeper));
	for (int i = 0; i < EVERYTHING_PROCS; i++)
		if (before[i] != keeper && pid_in(before[i], after, EVERYTHING_PROCS)) {
			fprintf(stderr, "pid %d survived the reload\n", (int)before[i]);
			fail();
		}
	assert_int_equal(exit_line(t, mark, "daemon keeper"), -1);
	assert_int_equal(sup_count_log(t->p, mark, "daemon keeper (pid"), 1); /* "kept across" */

	/* The teardown order: spooler, daemons, nested emperor (after its vassal),
	 * workers, mules. */
	long spooler = must_exit_line(t, mark, "spooler 1");
	long cache = must_exit_line(t, mark, "daemon cache");
	const char *nested_stop[] = { "[n] ", "vassal n[", "]: stopped", NULL };
	long nested_vassal = line_with(t->log, mark, nested_stop);
	long nested = must_exit_line(t, mark, "nested emperor");
	long w1 = must_exit_line(t, mark, "worker 1"), w2 = must_exit_line(t, mark, "worker 2");
	long m1 = must_exit_line(t, mark, "mule mailer 1"), m2 = must_exit_line(t, mark, "mule mailer 2");
	long m3 = must_exit_line(t, mark, "mule audit 1");
	long last_worker = w1 > w2 ? w1 : w2, first_worker = w1 < w2 ? w1 : w2;

	assert_true(nested_vassal >= 0);
	assert_before(spooler, "the spooler's exit", cache, "daemon cache's exit");
	assert_before(cache, "daemon cache's exit", nested_vassal, "the nested vassal's stop");
	assert_before(nested_vassal, "the nested vassal's stop", nested, "the nested emperor's exit");
	assert_before(nested, "the nested emperor's exit", first_worker, "the first worker exit");
	assert_before(last_worker, "the last worker exit", m1, "mule mailer 1's exit");
	assert_before(last_worker, "the last worker exit", m2, "mule mailer 2's exit");
	assert_before(last_worker, "the last worker exit", m3, "mule audit 1's exit");
	snprintf(stopped, sizeof stopped, "vassal v[%d]: teardown: stopping ", (int)t->p->pid);
	static const char *const steps[] = { "spooler", "daemons", "nested emperor", "workers", "mules" };
	long prev = -1;
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		const char *needles[] = { stopped, steps[i], NULL };
		long at = line_with(t->log, mark, needles);
		assert_before(prev, "the previous teardown step", at, steps[i]);
		prev = at;
	}

	/* A stop takes everything, the survive-reload daemon too. */
	stop(t);
	assert_false(sup_pid_alive(keeper));
}

/* ---- mule messages ------------------------------------------------------------------ */

#define N_MESSAGES 200
#define FARM_SIZE 3

/* Lines equal to want in the farm's out files (mailer.1.out ...). */
static int farm_lines(const struct ct *t, const char *want, int per_mule[FARM_SIZE])
{
	int total = 0;

	for (int i = 0; i < FARM_SIZE; i++) {
		char name[32];
		snprintf(name, sizeof name, "mailer.%d.out", i + 1);
		int n = count_lines(in_dir(t, name), want);
		if (per_mule)
			per_mule[i] += n;
		total += n;
	}
	return total;
}

static int farm_total_lines(const struct ct *t)
{
	int total = 0;

	for (int i = 0; i < FARM_SIZE; i++) {
		char name[32], *text;
		snprintf(name, sizeof name, "mailer.%d.out", i + 1);
		text = sup_read_file(in_dir(t, name));
		for (char *p = text; p && (p = strchr(p, '\n')); p++)
			total++;
		free(text);
	}
	return total;
}

/* Waits (5 s at most) until pid has exec'd its own program: until then it is a copy
 * of the master, and /proc/PID/environ shows the master's original environment. */
static void wait_exec_done(pid_t pid)
{
	char path[64], exe[4096];
	long long deadline = sup_now_ms() + 5000;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	while ((n = readlink(path, exe, sizeof exe - 1)) > 0) {
		exe[n] = '\0';
		if (strcmp(strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe, "vassal") != 0)
			return;
		assert_true(sup_now_ms() < deadline);
		poll(NULL, 0, 5);
	}
}

/* The value of key in /proc/PID/environ (malloc'd), NULL if absent, once pid has
 * exec'd. */
static char *proc_env(pid_t pid, const char *key)
{
	char path[64], buf[65536], *value = NULL;
	size_t len = 0, klen = strlen(key);
	ssize_t n;
	int fd;

	wait_exec_done(pid);
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (char *e = buf; !value && e < buf + len; e += strlen(e) + 1)
		if (strncmp(e, key, klen) == 0 && e[klen] == '=')
			value = strdup(e + klen + 1);
	return value;
}

/* One datagram of len bytes to an abstract "@..." address; 0 or -1. */
static int send_datagram(const char *addr, const char *msg, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t alen = strlen(addr);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	assert_true(fd >= 0);
	assert_true(addr[0] == '@' && alen < sizeof sun.sun_path);
	memcpy(sun.sun_path, addr, alen);
	sun.sun_path[0] = '\0';
	n = sendto(fd, msg, len, 0, (struct sockaddr *)&sun,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen));
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/* A message of len bytes "abc...zabc..." (NUL-terminated, malloc'd). */
static char *pattern(size_t len)
{
	char *s = malloc(len + 1);

	assert_non_null(s);
	for (size_t i = 0; i < len; i++)
		s[i] = (char)('a' + i % 26);
	s[len] = '\0';
	return s;
}

static void wait_farm_line(const struct ct *t, const char *want)
{
	long long deadline = sup_now_ms() + T_MS;

	while (farm_lines(t, want, NULL) == 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_int_equal(farm_lines(t, want, NULL), 1);
}

static void test_mule_messages(void **state)
{
	struct ct *t = *state;
	int per_mule[FARM_SIZE] = { 0 }, mules_used = 0;
	char *addr, *msg;
	long long deadline;
	pid_t worker;

	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  count: 2\n  exec: [%s]\n  ready: notify\n"
		  "mules:\n  - name: mailer\n    count: %d\n"
		  "    exec: [sh, -c, 'exec %s --out %s/mailer.$MULE_ID.out']\n",
		  t->port, t->worker, FARM_SIZE, t->mule, t->dir);
	start(t, 2);
	wait_count(t, 0, "waiting for messages on fd 3", FARM_SIZE);

	/* 200 messages through the workers: each delivered to exactly one mule. */
	for (int k = 1; k <= N_MESSAGES; k++) {
		char path[64];
		struct sup_http r;
		snprintf(path, sizeof path, "/mule?farm=mailer&msg=m%d", k);
		assert_int_equal(sup_http_get("127.0.0.1", t->port, path, &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		sup_http_fini(&r);
	}
	deadline = sup_now_ms() + T_MS;
	while (farm_total_lines(t) < N_MESSAGES && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_int_equal(farm_total_lines(t), N_MESSAGES);
	for (int k = 1; k <= N_MESSAGES; k++) {
		char want[16];
		snprintf(want, sizeof want, "m%d", k);
		if (farm_lines(t, want, per_mule) != 1) {
			fprintf(stderr, "message %s received %d times\n", want, farm_lines(t, want, NULL));
			fail();
		}
	}
	for (int i = 0; i < FARM_SIZE; i++)
		mules_used += per_mule[i] > 0;
	printf("mule messages: %d / %d / %d across the farm\n", per_mule[0], per_mule[1], per_mule[2]);
	assert_true(mules_used > 1);

	/* The size limit: 64 KiB (MULE_MSG_MAX) is delivered whole, 60 KiB too; one byte
	 * more is dropped by the reference mule, never delivered cut short. */
	worker = started_pid(t, 0, "worker 1");
	addr = proc_env(worker, "MULE_MAILER_SOCKET");
	assert_non_null(addr);
	msg = pattern(60 * 1024);
	assert_int_equal(send_datagram(addr, msg, 60 * 1024), 0);
	wait_farm_line(t, msg);
	free(msg);
	msg = pattern(64 * 1024);
	assert_int_equal(send_datagram(addr, msg, 64 * 1024), 0);
	wait_farm_line(t, msg);
	free(msg);
	msg = pattern(64 * 1024 + 1);
	assert_int_equal(send_datagram(addr, msg, 64 * 1024 + 1), 0);
	wait_count(t, 0, "dropped a message of 65537 bytes", 1);
	assert_int_equal(farm_total_lines(t), N_MESSAGES + 2);
	free(msg);
	free(addr);
	stop(t);
}

/* Messages queued for a slow mule when the vassal reloads are all taken: the workers
 * stop first, and a mule takes what is queued before it exits. */
#define N_QUEUED 40

static void test_mule_queue_survives_reload(void **state)
{
	struct ct *t = *state;
	char *out = strdup(in_dir(t, "slow.out")), *addr, msg[16];
	long long deadline;
	pid_t mule;

	write_fmt(t->cfg, "mules:\n  - name: slow\n    exec: [%s, --delay, '20', --out, %s]\n",
		  t->mule, out);
	start(t, 0);
	mule = started_pid(t, 0, "mule slow 1");
	wait_count(t, 0, "waiting for messages on fd 3", 1);
	addr = proc_env(mule, "MULE_SLOW_SOCKET");
	assert_non_null(addr);
	for (int k = 1; k <= N_QUEUED; k++) {
		snprintf(msg, sizeof msg, "q%d", k);
		assert_int_equal(send_datagram(addr, msg, strlen(msg)), 0);
	}
	reload(t, 2);
	deadline = sup_now_ms() + T_MS;
	for (int k = 1; k <= N_QUEUED; k++) {
		snprintf(msg, sizeof msg, "q%d", k);
		while (count_lines(out, msg) == 0 && sup_now_ms() < deadline)
			sup_poll_pause();
		if (count_lines(out, msg) != 1) {
			fprintf(stderr, "message %s taken %d times\n", msg, count_lines(out, msg));
			sup_print_tail(t->log, 30);
			fail();
		}
	}
	/* Most were still queued when the stop came (40 x 20 ms). */
	long drained = number_after(t->log, 0, "stopped (");
	printf("slow mule: %ld of %d messages taken after its stop signal\n", drained, N_QUEUED);
	assert_true(drained > 0);
	free(addr);
	free(out);
	stop(t);
}

/* ---- a daemon adopted from its pidfile ------------------------------------------------ */

/* The master's own account (SIGUSR1) names pid for the daemon "smart". */
static void assert_status_pid(struct ct *t, pid_t pid)
{
	size_t mark = sup_log_size(t->p);
	char line[96];

	assert_int_equal(kill(t->p->pid, SIGUSR1), 0);
	snprintf(line, sizeof line, "status: daemon smart pid %d ready", (int)pid);
	assert_int_equal(sup_wait_log(t->p, mark, line, T_MS), 0);
}

static void test_daemon_pidfile_adopted(void **state)
{
	struct ct *t = *state;
	char *argv[] = { "sleep", "60", NULL };
	struct sup_spawn_opts o = { .logpath = in_dir(t, "sleep.log"), .flags = SUP_SPAWN_NEW_PGROUP };
	char *pidfile = strdup(in_dir(t, "smart.pid")), *marker = strdup(in_dir(t, "marker"));
	char line[160];
	long long deadline;
	size_t mark;
	pid_t own;

	/* A live process (not the master's child) is named in the pidfile. */
	t->extra = sup_spawn_ex(argv, NULL, &o);
	assert_non_null(t->extra);
	write_fmt(pidfile, "%d\n", (int)t->extra->pid);
	write_fmt(t->cfg,
		  "daemons:\n  - name: smart\n    pidfile: ./smart.pid\n    stop-mercy: 2s\n"
		  "    survive-reload: true\n"
		  "    exec: [sh, -c, 'echo $$$$ > %s; touch %s; exec sleep 3600']\n",
		  pidfile, marker);
	start(t, 0);
	snprintf(line, sizeof line, "daemon smart: adopted pid %d from ./smart.pid",
		 (int)t->extra->pid);
	assert_int_equal(sup_wait_log(t->p, 0, line, T_MS), 0);
	assert_status_pid(t, t->extra->pid);

	/* survive-reload: the adopted process is kept, and still watched. */
	mark = sup_log_size(t->p);
	reload(t, 2);
	snprintf(line, sizeof line, "daemon smart (pid %d) kept across the reload", (int)t->extra->pid);
	assert_int_equal(sup_count_log(t->p, mark, line), 1);
	assert_status_pid(t, t->extra->pid);
	assert_int_equal(sup_count_log(t->p, 0, "daemon smart started"), 0);
	assert_int_equal(access(marker, F_OK), -1);
	assert_true(sup_pid_alive(t->extra->pid));

	/* Its end is seen: the master starts the daemon itself. */
	mark = sup_log_size(t->p);
	assert_int_equal(sup_stop(t->extra, SIGKILL, T_MS), 0);
	own = started_pid(t, mark, "daemon smart");
	assert_true(own != t->extra->pid);
	assert_true(exit_line(t, mark, "daemon smart") >= 0);
	deadline = sup_now_ms() + T_MS;
	while (access(marker, F_OK) < 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_int_equal(access(marker, F_OK), 0);
	assert_true(sup_pid_alive(own));
	assert_int_equal(sup_count_log(t->p, 0, "daemon smart started"), 1);

	/* Its own daemon is kept across a reload too, and a stop ends it. */
	reload(t, 3);
	assert_status_pid(t, own);
	assert_int_equal(sup_count_log(t->p, 0, "daemon smart started"), 1);
	free(pidfile), free(marker);
	stop(t);
	assert_false(sup_pid_alive(own));
}

/* ---- a daemon's touch ---------------------------------------------------------------- */

static void test_daemon_touch_restarts(void **state)
{
	struct ct *t = *state;
	char *flag = strdup(in_dir(t, "restart.flag"));
	pid_t first, second, third;
	size_t mark;

	write_fmt(t->cfg, "daemons:\n  - name: toucher\n    exec: [sleep, '3600']\n"
		  "    touch: [./restart.flag]\n");
	start(t, 0);
	first = started_pid(t, 0, "daemon toucher");

	mark = sup_log_size(t->p);
	touch(flag); /* creates it */
	second = started_pid(t, mark, "daemon toucher");
	assert_true(second != first);
	assert_int_equal(sup_wait_pid_dead(first, T_MS), 0);

	mark = sup_log_size(t->p);
	touch(flag); /* an existing file: only its times change */
	third = started_pid(t, mark, "daemon toucher");
	assert_true(third != second);
	assert_int_equal(sup_wait_pid_dead(second, T_MS), 0);
	assert_true(sup_pid_alive(third));
	/* One restart per touch, none "unasked", no backoff. */
	assert_int_equal(sup_count_log(t->p, 0, "daemon toucher started"), 3);
	assert_int_equal(sup_count_log(t->p, 0, "restart.flag touched"), 2);
	assert_int_equal(sup_count_log(t->p, 0, "daemon toucher: restarting it"), 2);
	assert_int_equal(sup_count_log(t->p, 0, "unasked"), 0);
	free(flag);
	stop(t);
}

/* ---- a mule that exits at once --------------------------------------------------------- */

static void test_crashing_mule_backoff(void **state)
{
	const char *needles[] = { "mule crash 1 started", NULL };
	struct ct *t = *state;
	int n = 0, in_first_2s = 0;
	pid_t steady, worker;
	double at[16];

	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  exec: [%s]\n  ready: notify\n"
		  "mules:\n  - name: crash\n    exec: [sh, -c, 'exit 1']\n"
		  "  - name: steady\n    exec: [%s]\n",
		  t->port, t->worker, t->mule);
	start(t, 1);
	steady = started_pid(t, 0, "mule steady 1");
	worker = started_pid(t, 0, "worker 1");
	/* Starts at 0, 0.1, 0.3, 0.7, 1.5 s: the delays double from 100 ms. */
	wait_count(t, 0, "mule crash 1 started", 5);
	for (long off = line_with(t->log, 0, needles); off >= 0 && n < 16;
	     off = line_with(t->log, (size_t)off + 1, needles))
		at[n++] = stamp_at(t->log, off);
	/* The master's word: 0.10, 0.20, 0.40, 0.80 s. The starts' own stamps agree,
	 * loosely (the loop's clock may lag the log's by a few ms; no backoff at all
	 * would be a few ms per start). */
	for (int i = 1; i < 5; i++) {
		char delay[64];
		double gap = at[i] - at[i - 1], nominal = 0.1 * (1 << (i - 1));
		assert_true(sup_count_log(t->p, 0, "mule crash 1 died young") >= i);
		snprintf(delay, sizeof delay, "respawn in %.2fs", nominal);
		assert_int_equal(sup_count_log(t->p, 0, delay), 1);
		printf("crashing mule: start %d after %.3f s (backoff %.1f s)\n", i + 1, gap, nominal);
		assert_true(gap >= nominal * 0.5 && gap < nominal + 1.0);
	}
	/* So: a handful of starts in its first 2 s, not hundreds. */
	for (int i = 0; i < n; i++)
		in_first_2s += at[i] < at[0] + 2.0;
	assert_true(in_first_2s >= 4 && in_first_2s <= 6);
	/* The others did not notice. */
	assert_true(sup_pid_alive(steady) && sup_pid_alive(worker));
	assert_int_equal(exit_line(t, 0, "mule steady 1"), -1);
	assert_int_equal(exit_line(t, 0, "worker 1"), -1);
	size_t end = sup_log_size(t->p); /* the crashing mule goes on starting: one snapshot */
	assert_int_equal(sup_count_file_range(t->p->logpath, 0, end, "started (pid"),
			 sup_count_file_range(t->p->logpath, 0, end, "mule crash 1 started") + 2);
	stop(t);
}

/* ---- a stop during a reload's teardown ------------------------------------------------- */

/* A SIGTERM that arrives after the reload's daemons step (here: while a worker that
 * ignores its stop signal holds the workers step) stops the survive-reload daemon
 * gracefully too: the stop runs the daemons step again. Before, the master exited
 * without stopping it (the kernel's PDEATHSIG killed it, unlogged). */
static void test_stop_during_reload_stops_survivors(void **state)
{
	struct ct *t = *state;
	char line[96];
	size_t mark;
	pid_t keeper;

	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  exec: [%s, --ignore-stop]\n  ready: notify\n  reload-mercy: 3s\n"
		  "daemons:\n  - name: keeper\n    exec: [sleep, '3601']\n    survive-reload: true\n",
		  t->port, t->worker);
	start(t, 1);
	keeper = started_pid(t, 0, "daemon keeper");
	mark = sup_log_size(t->p);
	assert_int_equal(kill(t->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(t->p, mark, "teardown: stopping workers", T_MS), 0);
	assert_int_equal(sup_count_log(t->p, mark, "teardown: stopping daemons"), 0); /* spared */
	stop(t);
	assert_false(sup_pid_alive(keeper));
	snprintf(line, sizeof line, "daemon keeper (pid %d) killed by SIGTERM", (int)keeper);
	if (sup_count_file(t->log, mark, line) != 1) {
		fprintf(stderr, "no \"%s\": the survive-reload daemon was not stopped\n", line);
		sup_print_tail(t->log, 30);
		fail();
	}
	assert_int_equal(sup_count_file(t->log, mark, "the stop takes over the reload"), 1);
	assert_int_equal(sup_count_file(t->log, mark, "re-exec"), 0);
}

/* ---- what a worker inherits ------------------------------------------------------------- */

/* The survive-reload daemons' handover (VASSAL_DAEMONS) and the reload state reach
 * the next image, never its workers, mules or daemons. */
static void test_handover_not_inherited(void **state)
{
	static const char *const internal[] = { "VASSAL_DAEMONS", "VASSAL_RELOAD_STATE",
						"VASSAL_CONFIG_FD", "EMPEROR_FD" };
	struct ct *t = *state;
	pid_t keeper, kids[3];
	size_t mark;

	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  exec: [%s]\n  ready: notify\n"
		  "mules:\n  - name: m\n    exec: [%s]\n"
		  "daemons:\n  - name: keeper\n    exec: [sleep, '3601']\n    survive-reload: true\n"
		  "  - name: other\n    exec: [sleep, '3602']\n",
		  t->port, t->worker, t->mule);
	start(t, 1);
	keeper = started_pid(t, 0, "daemon keeper");
	mark = sup_log_size(t->p);
	reload(t, 2);
	kids[0] = started_pid(t, mark, "worker 1");
	kids[1] = started_pid(t, mark, "mule m 1");
	kids[2] = started_pid(t, mark, "daemon other");
	assert_true(sup_pid_alive(keeper)); /* it was handed over */
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < sizeof internal / sizeof *internal; i++) {
			char *v = proc_env(kids[k], internal[i]);
			if (v) {
				fprintf(stderr, "pid %d inherited %s=%s\n", (int)kids[k], internal[i], v);
				fail();
			}
		}
	stop(t);
}

/* ---- one kind failing to start ------------------------------------------------------------ */

/* A mule whose program is missing is logged and retried; the daemon, the spooler and
 * the worker start all the same. (An exec's failure is known only after the spawn,
 * on the loop: the mule kind itself "started".) */
static void test_failing_kind_does_not_stop_others(void **state)
{
	struct ct *t = *state;

	write_fmt(t->cfg,
		  "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		  "workers:\n  exec: [%s]\n  ready: notify\n"
		  "mules:\n  - name: broken\n    exec: [./no-such-mule]\n"
		  "spooler:\n  dir: ./spool\n  exec: [sh, -c, 'exit 0']\n"
		  "daemons:\n  - name: d\n    exec: [sleep, '3600']\n",
		  t->port, t->worker);
	start(t, 1);
	assert_true(sup_pid_alive(started_pid(t, 0, "daemon d")));
	assert_true(sup_pid_alive(started_pid(t, 0, "spooler 1")));
	/* retried with backoff (100 ms, then 200 ms ...): once or more by now */
	assert_true(sup_count_log(t->p, 0, "mule broken 1: cannot start ./no-such-mule") >= 1);
	stop(t);
}

/* ---- a re-exec with many sockets ------------------------------------------------------- */

#define MANY_SOCKETS 310

/* Every socket is handed to the new image, past the 300 fds the handover once had
 * room for (the master then exited 1 instead of reloading). */
static void test_reexec_many_sockets(void **state)
{
	struct ct *t = *state;
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);
	char line[96];
	size_t mark;

	assert_non_null(f);
	assert_int_equal(mkdir(in_dir(t, "s"), 0750), 0);
	fprintf(f, "sockets:\n");
	for (int i = 0; i < MANY_SOCKETS; i++)
		fprintf(f, "  - name: s%d\n    listen: unix:./s/%d.sock\n", i, i);
	fprintf(f, "daemons:\n  - name: d\n    exec: [sleep, '3600']\n");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(sup_write_file_atomic(t->cfg, text), 0);
	free(text);
	start(t, 0);
	mark = sup_log_size(t->p);
	reload(t, 2);
	snprintf(line, sizeof line, "generation 1 -> 2, %d sockets kept open", MANY_SOCKETS);
	assert_int_equal(sup_count_log(t->p, mark, line), 1);
	/* That the new image takes every one of them over (rather than binding some
	 * again) is vsock.c's: its LISTEN_FDS table is capped separately. */
	stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TEST(test_reload_order_and_new_pids),
		CT_TEST(test_mule_messages),
		CT_TEST(test_mule_queue_survives_reload),
		CT_TEST(test_daemon_pidfile_adopted),
		CT_TEST(test_daemon_touch_restarts),
		CT_TEST(test_crashing_mule_backoff),
		CT_TEST(test_stop_during_reload_stops_survivors),
		CT_TEST(test_handover_not_inherited),
		CT_TEST(test_failing_kind_does_not_stop_others),
		CT_TEST(test_reexec_many_sockets),
	};

	sup_init();
	if (getenv("CHILDREN_TEST")) /* one test by name (a glob), for debugging */
		cmocka_set_test_filter(getenv("CHILDREN_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
