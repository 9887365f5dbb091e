/* test_vassal.c — one vassal master (build/vassal FILE) run for real, without an
 * emperor, with the reference worker on loopback sockets: graceful reloads that never
 * refuse a connection nor leak an fd, the request in flight that survives a reload,
 * the no-mercy SIGKILL of a worker's process group, the respawn backoff of a crashing
 * worker, graceful and brutal stops, the command line (--check, --help, a relative
 * path with chdir:, a missing file), and 400 sockets (or an fd limit too low for them). test_vassal_reload.c holds the reload modes and edits.
 * Every test reads like a user's session and ends with nothing left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vassal_fixture.h"

/* ---- graceful reload --------------------------------------------------------------- */

/* 5 graceful reloads under a client connecting without pause: every worker pid is
 * new each time, the master's is not, no connection is refused, no fd leaks. */
static void test_graceful_reload_keeps_socket_and_fds(void **state)
{
	struct vt *v = *state;
	pid_t seen[64], now[8];
	int n_seen, fds_before;
	struct sup_load *l;

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	fds_before = sup_count_fds(v->p->pid);
	assert_true(fds_before > 0);
	n_seen = vt_workers(v, seen, 2);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_load_progress(l, 20);
	for (int i = 0; i < 5; i++) {
		vt_reload(v, SIGHUP);
		vt_load_progress(l, 20);
		assert_true(sup_pid_alive(v->p->pid)); /* the same master: it re-exec'd */
		assert_int_equal(vt_workers(v, now, 2), 2); /* its children */
		for (int k = 0; k < 2; k++) {
			assert_false(pid_in(now[k], seen, n_seen)); /* a new process */
			seen[n_seen++] = now[k];
		}
	}
	vt_load_stop_clean(l, 6); /* each of 6 generations answered */
	assert_int_equal(sup_count_fds(v->p->pid), fds_before);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* A request in flight when the reload starts is answered by the old worker. */
static void test_request_in_flight_survives_reload(void **state)
{
	struct vt *v = *state;
	pid_t old[2];
	size_t mark;
	struct sup_conn *c;
	struct sup_http r;

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	vt_workers(v, old, 2);
	mark = sup_log_size(v->p);
	c = sup_conn_open("127.0.0.1", v->port, T_MS);
	assert_non_null(c);
	vt_send(c, "GET /slow?ms=500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_int_equal(sup_wait_log(v->p, mark, "slow request: answering in 500 ms", T_MS), 0);
	vt_reload(v, SIGHUP);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "hello from pid"));
	assert_true(pid_in((pid_t)atoi(sup_http_header(&r, "X-Worker-Pid")), old, 2));
	sup_http_fini(&r);
	sup_conn_close(c);
	vt_stop(v, SIGTERM, T_MS);
}

/* A worker that ignores its stop signal is SIGKILLed with its process group (the
 * sleeper it forked) at its reload-mercy deadline, not before; the reload completes. */
static void test_no_mercy_kills_the_worker_group(void **state)
{
	struct vt *v = *state;
	pid_t worker, sleeper;
	long long t0;
	size_t mark;

	vt_config(v, &(struct vcfg){ .count = 1, .args = ", --ignore-stop, --fork-sleeper",
				      .mercy = "1s" });
	vt_start(v, 1);
	assert_int_equal(vt_workers(v, &worker, 1), 1);
	sleeper = vt_child_of(worker);
	assert_true(sleeper > 0);
	mark = sup_log_size(v->p);
	t0 = sup_now_ms();
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "no mercy after", T_MS), 0);
	assert_true(sup_now_ms() - t0 >= 900);
	assert_int_equal(sup_count_log(v->p, mark, "SIGTERM ignored (--ignore-stop)"), 1);
	vt_wait_generation(v, mark, 2);
	assert_int_equal(sup_wait_pid_dead(worker, T_MS), 0);
	assert_int_equal(sup_wait_pid_dead(sleeper, T_MS), 0);
	vt_get_ok(v, v->port, NULL);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGINT, T_MS); /* the new worker ignores SIGTERM too */
}

/* ---- crash loop ------------------------------------------------------------------------ */

/* Worker 2 exits at once, again and again: it is respawned with doubling delays, while
 * worker 1 serves every request; fixing the file and SIGHUP brings worker 2 up. */
static void test_crash_loop_backs_off(void **state)
{
	struct vt *v = *state;
	double delays[32];
	int n_delays, starts;
	struct sup_load *l;

	vt_config(v, &(struct vcfg){ .count = 2, .args = ", --fail-if-id, \"2\"",
				      .workers = "  respawn-delay: 100ms\n  max-respawn-delay: 10s\n" });
	v->p = vt_spawn(v);
	/* The start does not wait for worker 2 for ever: it ends, and reloads are taken. */
	assert_int_equal(sup_wait_log(v->p, 0, "start ended: generation 1 runs with 1 of 2 workers "
				      "ready", T_MS), 0);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	/* 0.1 + 0.2 + 0.4 + 0.8 s of delays: the 5th delay is announced ~1.5 s in. */
	assert_int_equal(sup_wait_log(v->p, 0, "respawn in 1.60s", T_MS), 0);
	vt_load_progress(l, 50);
	n_delays = vt_respawn_delays(v, delays, 32);
	starts = sup_count_log(v->p, 0, "worker 2 started");
	assert_true(n_delays >= 5);
	for (int i = 1; i < n_delays; i++)
		assert_true(delays[i] > delays[i - 1] * 1.5);
	assert_true(starts >= 5 && starts < 12);
	assert_int_equal(sup_count_log(v->p, 0, "worker 1 started"), 1);
	vt_load_stop_clean(l, 1);

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_reload(v, SIGHUP);
	vt_wait_ids(v, v->port, 2);
	vt_stop(v, SIGTERM, T_MS);
}

/* ---- stops ------------------------------------------------------------------------------ */

static void test_sigterm_stops_gracefully(void **state)
{
	struct vt *v = *state;
	pid_t w[3];

	vt_config(v, &(struct vcfg){ .count = 3 });
	vt_start(v, 3);
	assert_int_equal(vt_workers(v, w, 3), 3);
	vt_stop(v, SIGTERM, T_MS);
	assert_int_equal(sup_count_log(v->p, 0, "stopping: 0 connections in flight"), 3);
	assert_int_equal(sup_port_refused("127.0.0.1", v->port, 1000), 0);
}

/* SIGINT: at once, even with workers that ignore their stop signal and fork. */
static void test_sigint_stops_at_once(void **state)
{
	struct vt *v = *state;
	pid_t w[2];

	vt_config(v, &(struct vcfg){ .count = 2, .args = ", --ignore-stop, --fork-sleeper",
				      .mercy = "30s" });
	vt_start(v, 2);
	assert_int_equal(vt_workers(v, w, 2), 2);
	assert_true(vt_child_of(w[0]) > 0 && vt_child_of(w[1]) > 0);
	vt_stop(v, SIGINT, 5000); /* not the 30 s mercy (5 s: a sanitized master's exit) */
	assert_int_equal(sup_count_log(v->p, 0, "no mercy"), 0);
}

/* A stop during a reload takes it over, whenever it arrives in the reload. */
static void test_stop_takes_over_reload(void **state)
{
	/* NULL: at once, a few times (a TERM caught just before the teardown ends and the
	 * re-exec must not be lost); then during the exec, then in the new image. */
	static const char *const after[] = {
		NULL, NULL, NULL, NULL, "reload: re-exec", "master started (generation 2",
	};
	struct vt *v = *state;

	for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
		size_t mark;

		vt_config(v, &(struct vcfg){ .count = 2 });
		vt_start(v, 2);
		mark = sup_log_size(v->p);
		assert_int_equal(kill(v->p->pid, SIGHUP), 0);
		if (after[i])
			assert_int_equal(sup_wait_log(v->p, mark, after[i], T_MS), 0);
		vt_stop(v, SIGTERM, T_MS);
		sup_proc_free(v->p);
		v->p = NULL;
	}
}

/* A reload asked for while the master stops (a slow request holds the stop) is
 * refused and logged; the request in flight completes, the master exits 0. */
static void test_reload_during_stop_is_refused(void **state)
{
	struct vt *v = *state;
	struct sup_conn *c;
	struct sup_http r;
	size_t mark;

	vt_config(v, &(struct vcfg){ .count = 1, .mercy = "10s" }); /* > the 3 s request */
	vt_start(v, 1);
	mark = sup_log_size(v->p);
	c = sup_conn_open("127.0.0.1", v->port, T_MS);
	assert_non_null(c);
	vt_send(c, "GET /slow?ms=3000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_int_equal(sup_wait_log(v->p, mark, "slow request: answering in 3000 ms", T_MS), 0);
	assert_int_equal(kill(v->p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "stopping gracefully (SIGTERM)", T_MS), 0);
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "reload (SIGHUP) refused: stopping", T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	sup_http_fini(&r);
	sup_conn_close(c);
	vt_stop(v, 0, T_MS);
	assert_int_equal(sup_count_log(v->p, mark, "reloading ("), 0);
}

/* ---- the command line --------------------------------------------------------------------- */

/* Started by hand from another directory with a relative path; chdir: and log: are
 * relative to the file's directory; a reload re-execs with the right path. */
static void test_relative_path_and_chdir(void **state)
{
	struct vt *v = *state;
	char *conf = sup_path(v->dir, "conf"), *run = sup_path(v->dir, "run");
	char *file = sup_path(conf, "rel.yaml"), *vlog = sup_path(run, "rel.log");
	char *argv[] = { v->vassal, "conf/rel.yaml", NULL };
	char text[1024];

	assert_int_equal(mkdir(conf, 0755), 0);
	assert_int_equal(mkdir(run, 0755), 0);
	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [%s], ready: notify, reload-mercy: 2s}\n"
		 "chdir: ../run\nlog: rel.log\n", v->port, v->worker);
	assert_int_equal(sup_write_file(file, text), 0);
	v->p = sup_spawn(argv, NULL, v->dir, v->log);
	assert_non_null(v->p);
	assert_int_equal(sup_wait_file(vlog, 0, "ready: 1 workers, generation 1", T_MS), 0);
	vt_get_ok(v, v->port, NULL);
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_file(vlog, 0, "reload complete: generation 2 ", T_MS), 0);
	vt_get_ok(v, v->port, NULL);
	free(v->log);
	v->log = vlog; /* the stop helper checks this log */
	vt_stop(v, SIGTERM, T_MS);
	free(conf), free(run), free(file);
}

/* Runs `vassal args...` to its end; returns its exit code, output in *out. */
static int run_vassal(struct vt *v, const char *a1, const char *a2, char **out)
{
	char *argv[] = { v->vassal, (char *)a1, (char *)a2, NULL };
	char *log = sup_path(v->dir, "cmd.log");
	struct sup_proc *p;
	int code;

	unlink(log);
	p = sup_spawn(argv, NULL, v->dir, log);
	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	assert_true(WIFEXITED(p->status));
	code = WEXITSTATUS(p->status);
	vt_assert_log_clean(log);
	*out = sup_read_file(log);
	assert_non_null(*out);
	sup_proc_free(p);
	free(log);
	return code;
}

static void test_check_help_version(void **state)
{
	struct vt *v = *state;
	char *out, want[512];

	vt_config(v, &(struct vcfg){ .count = 2 });
	assert_int_equal(run_vassal(v, "--check", v->cfg, &out), 0);
	snprintf(want, sizeof want, "%s: ok\n", v->cfg);
	assert_string_equal(out, want);
	free(out);
	assert_int_equal(sup_write_file(v->cfg, "sockets: []\nworkers:\n  count: lots\n  exec: [x]\n"), 0);
	assert_int_equal(run_vassal(v, "--check", v->cfg, &out), 78);
	snprintf(want, sizeof want, "%s:3:10: ", v->cfg);
	assert_non_null(strstr(out, want));
	free(out);
	assert_int_equal(run_vassal(v, "--help", NULL, &out), 0);
	assert_non_null(strstr(out, "usage: vassal"));
	free(out);
	assert_int_equal(run_vassal(v, "--version", NULL, &out), 0);
	assert_non_null(strstr(out, "vassal"));
	free(out);
	/* A bad file is not started: exit 78, the error in the log. */
	assert_int_equal(run_vassal(v, v->cfg, NULL, &out), 78);
	assert_non_null(strstr(out, want));
	free(out);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* /proc/PID/environ: the environment the process was started with, NUL-separated,
 * once it has exec'd its program (5 s at most): until then it is a copy of the master,
 * and environ shows the master's (the spawn does not wait for the exec). */
static size_t proc_environ(pid_t pid, char *buf, size_t size)
{
	char path[64], exe[4096];
	long long deadline = sup_now_ms() + 5000;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	while ((n = readlink(path, exe, sizeof exe - 1)) > 0) {
		exe[n] = '\0';
		if (strcmp(strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe, "vassal") != 0)
			break;
		assert_true(sup_now_ms() < deadline);
		sup_poll_pause();
	}
	snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, size - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* The value of name in an environ block, or NULL. */
static const char *environ_get(const char *env, size_t len, const char *name)
{
	size_t n = strlen(name);

	for (size_t off = 0; off < len; off += strlen(env + off) + 1)
		if (strncmp(env + off, name, n) == 0 && env[off + n] == '=')
			return env + off + n + 1;
	return NULL;
}

/* What the master was given for itself (the previous image's daemons, the emperor's
 * state fd, sockets and a supervisor meant for it) never reaches a worker or a mule:
 * VASSAL_DAEMONS used to leak into workers, EMPEROR_STATE_FD into every child. */
static void test_children_get_no_internal_variables(void **state)
{
	struct vt *v = *state;
	char *env_in[] = { "VASSAL_DAEMONS=ghost=1", "EMPEROR_STATE_FD=9", "LISTEN_FDS=5",
			   "LISTEN_PID=1", "LISTEN_FDNAMES=x", "NOTIFY_SOCKET=@emperor-test-not-ours",
			   NULL };
	char *argv[] = { v->vassal, v->cfg, NULL };
	static char env[65536];
	pid_t kids[2];

	vt_config(v, &(struct vcfg){ .count = 1, .ready = "exec",
				     .top = "mules: [{name: m, exec: [sleep, '60']}]\n" });
	v->mark = sup_file_size(v->log);
	v->p = sup_spawn(argv, env_in, v->dir, v->log);
	assert_non_null(v->p);
	assert_int_equal(sup_wait_log(v->p, v->mark, "ready: 1 workers, generation 1", T_MS), 0);
	vt_workers(v, kids, 2);
	for (int i = 0; i < 2; i++) {
		size_t len = proc_environ(kids[i], env, sizeof env); /* first: waits for its exec */
		char *cmd = sup_pid_cmdline(kids[i]);
		int is_mule = cmd && strncmp(cmd, "sleep", 5) == 0;
		const char *notify = environ_get(env, len, "NOTIFY_SOCKET");

		free(cmd);
		for (char **e = env_in; *e; e++) {
			char name[64];
			snprintf(name, sizeof name, "%.*s", (int)(strchr(*e, '=') - *e), *e);
			const char *got = environ_get(env, len, name);
			if (got && strcmp(*e + strlen(name) + 1, got) == 0)
				fail_msg("%s (pid %d) has the master's %s", is_mule ? "mule" : "worker",
					 (int)kids[i], *e);
		}
		assert_null(environ_get(env, len, "EMPEROR_FD"));
		assert_null(environ_get(env, len, "VASSAL_DAEMONS"));
		assert_null(environ_get(env, len, "EMPEROR_STATE_FD"));
		assert_non_null(environ_get(env, len, "EMPEROR_TEST_TAG")); /* the rest is kept */
		if (is_mule) { /* its farm's socket, its own pid */
			char pid[16];
			snprintf(pid, sizeof pid, "%d", (int)kids[i]);
			assert_null(notify);
			assert_string_equal(environ_get(env, len, "LISTEN_PID"), pid);
			assert_string_equal(environ_get(env, len, "LISTEN_FDS"), "1");
		} else { /* a worker: the master's own notify socket and its sockets */
			assert_non_null(notify);
			assert_string_equal(environ_get(env, len, "LISTEN_FDS"), "1");
			assert_string_equal(environ_get(env, len, "LISTEN_FDNAMES"), "http");
		}
	}
	vt_stop(v, SIGTERM, T_MS);
}

/* Two workers each print 300 lines of 3000 bytes at once, every line in five
 * write(2)s: each line reaches the master's output whole, never mixed with the
 * other's. Before, both workers wrote straight into the master's stdout and their
 * pieces ran together. */
static void test_two_workers_long_lines_never_mix(void **state)
{
	struct vt *v = *state;
	const char *script =
		"workers:\n  count: 2\n  ready: exec\n  reload-mercy: 2s\n  exec:\n    - /bin/sh\n"
		"    - -c\n    - >-\n"
		"      p=$$(head -c 1000 /dev/zero | tr '\\0' $$VASSAL_WORKER_ID); i=0;\n"
		"      while [ $$i -lt 300 ]; do printf 'BEGIN%s ' $$VASSAL_WORKER_ID;\n"
		"      printf '%s' \"$$p\"; printf '%s' \"$$p\"; printf '%s' \"$$p\";\n"
		"      printf ' END%s\\n' $$VASSAL_WORKER_ID; i=$$((i+1)); done;\n"
		"      echo \"worker $$VASSAL_WORKER_ID printed\"; exec sleep 60\n";
	char *text, *line, *save = NULL, body[3001];
	int whole[3] = { 0 }, broken = 0;

	assert_int_equal(sup_write_file_atomic(v->cfg, script), 0);
	v->p = vt_spawn(v);
	assert_int_equal(sup_wait_log(v->p, v->mark, "worker 1 printed", T_MS), 0);
	assert_int_equal(sup_wait_log(v->p, v->mark, "worker 2 printed", T_MS), 0);
	text = sup_read_file(v->log);
	assert_non_null(text);
	for (line = strtok_r(text + v->mark, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, "BEGIN") && !strstr(line, "END"))
			continue;
		int id = line[0] == 'B' ? line[5] - '0' : 0;
		if (id == 1 || id == 2) {
			memset(body, '0' + id, 3000);
			body[3000] = '\0';
		}
		if ((id == 1 || id == 2) && strlen(line) == 3012 && line[6] == ' ' &&
		    strncmp(line + 7, body, 3000) == 0 && line[3007] == ' ' &&
		    strncmp(line + 3008, "END", 3) == 0 && line[3011] == '0' + id)
			whole[id]++;
		else
			broken++;
	}
	free(text);
	if (broken)
		fprintf(stderr, "%d mixed or cut lines\n", broken);
	assert_int_equal(broken, 0);
	assert_int_equal(whole[1], 300);
	assert_int_equal(whole[2], 300);
	vt_stop(v, SIGTERM, T_MS);
}

/* A vassal file with n unix sockets in the test's dir and a shell worker that reports
 * what it received, then sleeps (with every fd it got). */
static void many_sockets_config(struct vt *v, int n)
{
	size_t cap = 512 + (size_t)n * (strlen(v->dir) + 64);
	char *text = malloc(cap), *p = text;

	assert_non_null(text);
	p += sprintf(p, "sockets:\n");
	for (int i = 0; i < n; i++)
		p += sprintf(p, "  - {name: s%d, listen: 'unix:%s/s%d.sock'}\n", i, v->dir, i);
	sprintf(p, "workers:\n  ready: exec\n  reload-mercy: 2s\n  exec:\n    - /bin/sh\n    - -c\n"
		   "    - echo \"worker got LISTEN_FDS=$$LISTEN_FDS last=$${LISTEN_FDNAMES##*:}\"; "
		   "exec sleep 60\n");
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
	free(text);
}

/* 400 sockets: the master binds them all and the worker gets every one on fds 3..402,
 * named in LISTEN_FDNAMES; the first and the last accept a connection. Before, the
 * worker's fd table held 256: it failed at once, without a message, respawned forever. */
static void test_four_hundred_sockets(void **state)
{
	struct vt *v = *state;
	char path[512];
	pid_t worker;
	struct sup_conn *c;

	many_sockets_config(v, 400);
	v->p = vt_spawn(v);
	assert_int_equal(sup_wait_log(v->p, v->mark, "worker got LISTEN_FDS=400 last=s399", T_MS), 0);
	assert_int_equal(sup_wait_log(v->p, v->mark, "ready: 1 workers, generation 1", T_MS), 0);
	vt_workers(v, &worker, 1);
	assert_true(sup_count_fds(worker) >= 403);
	for (int i = 0; i < 400; i += 399) {
		snprintf(path, sizeof path, "%s/s%d.sock", v->dir, i);
		c = sup_conn_open_unix(path, T_MS);
		assert_non_null(c);
		sup_conn_close(c);
	}
	assert_int_equal(sup_count_log(v->p, v->mark, "cannot start"), 0);
	assert_int_equal(sup_count_log(v->p, v->mark, "worker 1 started"), 1); /* no respawn */
	vt_stop(v, SIGTERM, T_MS);
}

/* An fd limit that cannot hold the sockets: the master says so and exits, before
 * binding anything; no worker is started. */
static void test_fd_limit_too_low_for_sockets(void **state)
{
	struct vt *v = *state;
	char *argv[] = { "/bin/sh", "-c", "ulimit -n 300 && exec \"$0\" \"$1\"", v->vassal, v->cfg,
			 NULL };
	struct sup_proc *p;

	many_sockets_config(v, 400);
	p = sup_spawn(argv, NULL, v->dir, v->log);
	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	assert_true(WIFEXITED(p->status));
	assert_int_equal(WEXITSTATUS(p->status), 1);
	assert_int_equal(sup_count_file(v->log, 0, "400 listening sockets need about 466 fds, but "
				       "the fd limit (RLIMIT_NOFILE) is 300 (hard 300): raise it"), 1);
	assert_int_equal(sup_count_file(v->log, 0, "worker 1 started"), 0);
	sup_proc_free(p);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* docs/config.md: a file that cannot be loaded, a missing one included, exits 78. */
static void test_missing_file_exits_78(void **state)
{
	struct vt *v = *state;
	char *out;

	assert_int_equal(run_vassal(v, "/nonexistent.yaml", NULL, &out), 78);
	assert_non_null(strstr(out, "/nonexistent.yaml: cannot read the vassal file, not starting "
				    "(exit 78): No such file or directory"));
	free(out);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VT_TEST(test_graceful_reload_keeps_socket_and_fds),
		VT_TEST(test_request_in_flight_survives_reload),
		VT_TEST(test_no_mercy_kills_the_worker_group),
		VT_TEST(test_crash_loop_backs_off),
		VT_TEST(test_sigterm_stops_gracefully),
		VT_TEST(test_sigint_stops_at_once),
		VT_TEST(test_stop_takes_over_reload),
		VT_TEST(test_reload_during_stop_is_refused),
		VT_TEST(test_relative_path_and_chdir),
		VT_TEST(test_check_help_version),
		VT_TEST(test_two_workers_long_lines_never_mix),
		VT_TEST(test_four_hundred_sockets),
		VT_TEST(test_children_get_no_internal_variables),
		VT_TEST(test_fd_limit_too_low_for_sockets),
		VT_TEST(test_missing_file_exits_78),
	};

	sup_init();
	return cmocka_run_group_tests_name("vassal", tests, NULL, NULL);
}
