/* test_preload.c — workers.preload for real: the recipe template (examples/preload.py)
 * loads a small WSGI app that appends its pid to a file at each import, then forks
 * the vassal's workers. The app's loads are counted through that file; the master's
 * children (the template and its workers, each re-parented to the master) through
 * /proc. Each test stops the master and checks nothing is left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <time.h>

#include "vassal_fixture.h"

static const char app_py[] =
	"import os\n"
	"with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'loads'), 'a') as f:\n"
	"    f.write('%d\\n' % os.getpid())\n"
	"if os.environ.get('BROKEN'):\n"
	"    raise SystemExit('app.py: broken on purpose')\n"
	"GREETING = os.environ.get('GREETING', 'hi')\n"
	"def application(environ, start_response):\n"
	"    wid = os.environ.get('VASSAL_WORKER_ID', '?')\n"
	"    body = ('%s from pid %d\\n' % (GREETING, os.getpid())).encode()\n"
	"    if environ['PATH_INFO'] == '/echo':  # the request as the app sees it\n"
	"        body = ('%s %s %s ' % (environ['REQUEST_METHOD'], environ['PATH_INFO'],\n"
	"                               environ['QUERY_STRING'])).encode() + environ['wsgi.input'].read()\n"
	"    if environ['PATH_INFO'] == '/fail':\n"
	"        raise RuntimeError('failing on purpose')\n"
	"    if environ['PATH_INFO'] == '/pieces':  # one line in two writes, 300 ms apart\n"
	"        import sys, time\n"
	"        sys.stdout.write('pieces of %s: ' % wid)\n"
	"        sys.stdout.flush()\n"
	"        time.sleep(0.3)\n"
	"        sys.stdout.write('the end of %s\\n' % wid)\n"
	"        sys.stdout.flush()\n"
	"    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
	"                              ('Content-Length', str(len(body))),\n"
	"                              ('X-Worker-Pid', str(os.getpid())), ('X-Worker-Id', wid)])\n"
	"    return [body]\n";

/* A template for the races, by $MODE: slow-answer (the worker's READY=1 before the
 * answer), die-early (worker 1's first run exits before the answer), single-fork
 * (worker 1's first run is the template's own child, not handed over), never-ready
 * (no "ready" line), silent (the workers never send READY=1). */
static const char races_py[] =
	"import os, signal, socket, time\n"
	"mode = os.environ.get('MODE', '')\n"
	"ctl = socket.socket(fileno=int(os.environ['EMPEROR_PRELOAD_FD']))\n"
	"signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
	"def reap():  # single-fork's child, killed by the master: no zombie of ours\n"
	"    try:\n"
	"        while os.waitpid(-1, os.WNOHANG)[0] > 0:\n"
	"            pass\n"
	"    except ChildProcessError:\n"
	"        pass\n"
	"def first(name):\n"
	"    if os.path.exists(name):\n"
	"        return False\n"
	"    open(name, 'w').close()\n"
	"    return True\n"
	"def worker(wid, die):\n"
	"    os.setpgid(0, 0)\n"
	"    ctl.close()\n"
	"    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
	"    if die:\n"
	"        os._exit(3)\n"
	"    while mode == 'silent':\n"
	"        time.sleep(1)\n"
	"    p = os.environ['NOTIFY_SOCKET']\n"
	"    p = '\\0' + p[1:] if p.startswith('@') else p\n"
	"    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', p)\n"
	"    while True:\n"
	"        time.sleep(1)\n"
	"def fork_twice(wid, die):\n"
	"    r, w = os.pipe()\n"
	"    mid = os.fork()\n"
	"    if mid == 0:\n"
	"        pid = os.fork()\n"
	"        if pid == 0:\n"
	"            worker(wid, die)\n"
	"        os.write(w, b'%d' % pid)\n"
	"        os._exit(0)\n"
	"    os.close(w)\n"
	"    pid = int(os.read(r, 32))\n"
	"    os.close(r)\n"
	"    os.waitpid(mid, 0)\n"
	"    return pid\n"
	"while mode == 'never-ready':\n"
	"    time.sleep(1)\n"
	"ctl.sendall(b'ready\\n')\n"
	"buf = b''\n"
	"while True:\n"
	"    data = ctl.recv(4096)\n"
	"    if not data:\n"
	"        os._exit(0)\n"
	"    buf += data\n"
	"    while b'\\n' in buf:\n"
	"        line, buf = buf.split(b'\\n', 1)\n"
	"        wid = int(line.split()[1])\n"
	"        reap()\n"
	"        if mode == 'single-fork' and wid == 1 and first('once'):\n"
	"            pid = os.fork()\n"
	"            if pid == 0:\n"
	"                worker(wid, False)\n"
	"        else:\n"
	"            die = mode == 'die-early' and wid == 1 and first('once')\n"
	"            pid = fork_twice(wid, die)\n"
	"            if mode != 'single-fork':\n"
	"                time.sleep(0.5)  # the worker speaks, or dies, first\n"
	"        ctl.sendall(b'forked %d %d\\n' % (wid, pid))\n";

/* The recipe's copy and the app in the test's dir. */
static int pl_setup(void **state)
{
	const char *src = getenv("EMPEROR_SOURCE");
	char *from, *to, *text, *app;
	struct vt *v;

	vt_setup(state);
	v = *state;
	assert_true(asprintf(&from, "%s/examples/preload.py", src ? src : ".") > 0);
	to = sup_path(v->dir, "preload.py");
	app = sup_path(v->dir, "app.py");
	text = sup_read_file(from);
	assert_non_null(text);
	assert_int_equal(sup_write_file(to, text), 0);
	assert_int_equal(sup_write_file(app, app_py), 0);
	free(text), free(from), free(to), free(app);
	to = sup_path(v->dir, "races.py");
	assert_int_equal(sup_write_file(to, races_py), 0);
	free(to);
	return 0;
}

#define PL_TEST(f) cmocka_unit_test_setup_teardown(f, pl_setup, vt_teardown)

static void pl_config_env(struct vt *v, int count, const char *reload, const char *greeting,
			  const char *env)
{
	char text[2048], reload_line[64] = "";

	if (reload)
		snprintf(reload_line, sizeof reload_line, "reload: %s\n", reload);
	snprintf(text, sizeof text,
		 "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		 "workers:\n  count: %d\n  exec: [python3, %s/preload.py, app:application]\n"
		 "  cwd: %s\n  preload: true\n  ready: notify\n  ready-timeout: 10s\n"
		 "  reload-mercy: 3s\n  respawn-delay: 200ms\n  env: {GREETING: %s%s}\n%s",
		 v->port, count, v->dir, v->dir, greeting, env ? env : "", reload_line);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
}

static void pl_config(struct vt *v, int count, const char *reload, const char *greeting)
{
	pl_config_env(v, count, reload, greeting, NULL);
}

/* The pids that imported the app, in order (each a template). */
static int loads(struct vt *v, pid_t *out, int max)
{
	char *path = sup_path(v->dir, "loads"), *text = sup_read_file(path), *p = text;
	int n = 0;

	for (; p && *p && n < max; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		out[n++] = (pid_t)atoi(p);
	free(text);
	free(path);
	return n;
}

static pid_t last_template(struct vt *v)
{
	pid_t all[16];
	int n = loads(v, all, 16);

	assert_true(n > 0);
	return all[n - 1];
}

/* The master's children: the template and want workers, each the master's child;
 * the workers (template left out) in out. */
static void pl_workers_of(struct vt *v, pid_t tmpl, pid_t *out, int want)
{
	pid_t all[VT_MAX_PIDS];
	int n = vt_workers(v, all, want + 1), k = 0;

	assert_true(pid_in(tmpl, all, n));
	for (int i = 0; i < n; i++)
		if (all[i] != tmpl) {
			assert_int_equal(sup_pid_ppid(all[i]), v->p->pid);
			out[k++] = all[i];
		}
	assert_int_equal(k, want);
}

static void pl_workers(struct vt *v, pid_t *out, int want)
{
	pl_workers_of(v, last_template(v), out, want);
}

/* kill -9 of one worker (victim, of tmpl's n): it comes back forked by tmpl, a new
 * pid, and the app's loads stay want_loads (a respawn loads nothing). */
static void kill_worker_see_it_forked(struct vt *v, pid_t tmpl, pid_t victim, int n,
				      int want_loads)
{
	pid_t again[8], got[16];
	size_t mark = sup_log_size(v->p);
	char line[96];

	assert_true(n <= 8);
	assert_int_equal(kill(victim, SIGKILL), 0);
	snprintf(line, sizeof line, "(pid %d) killed by SIGKILL", (int)victim);
	assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "forked by its template", T_MS), 0);
	pl_workers_of(v, tmpl, again, n);
	assert_false(pid_in(victim, again, n));
	assert_int_equal(loads(v, got, 16), want_loads);
	vt_wait_ids(v, v->port, n);
}

/* The master's emperor_vassal_children sample of this kind is want. */
static void assert_children_metric(struct vt *v, const char *kind, int want)
{
	char series[128], *text = sup_master_status(v->p->pid, "metrics");

	assert_non_null(text);
	snprintf(series, sizeof series, "emperor_vassal_children{vassal=\"v\",kind=\"%s\"}", kind);
	if (sup_metric(text, series) != want)
		fprintf(stderr, "%s: expected %d in\n%s", series, want, text);
	assert_true(sup_metric(text, series) == want);
	free(text);
}

static void assert_gone(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(sup_wait_pid_dead(pids[i], T_MS), 0);
}

/* 4 workers from one load of the app, each answering as itself; a worker killed
 * with SIGKILL comes back forked from the same template, without a load. */
static void test_preload_serves_and_respawns(void **state)
{
	struct vt *v = *state;
	pid_t w[4], got[16];

	pl_config(v, 4, NULL, "hello");
	vt_start(v, 4);
	assert_int_equal(loads(v, got, 16), 1);
	pl_workers(v, w, 4);
	vt_wait_ids(v, v->port, 4);
	vt_get_ok(v, v->port, "hello from pid");
	assert_children_metric(v, "worker", 4);
	assert_children_metric(v, "template", 1);

	kill_worker_see_it_forked(v, last_template(v), w[1], 4, 1);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* req on a new connection to the vassal's port, and its response in r. */
static void pl_request(struct vt *v, const char *req, struct sup_http *r)
{
	struct sup_conn *c = sup_conn_open("127.0.0.1", v->port, T_MS);

	assert_non_null(c);
	vt_send(c, req);
	assert_int_equal(sup_conn_read_response(c, r, T_MS), 0);
	sup_conn_close(c);
}

/* Each forked worker writes on its own output pipe (the request's SCM_RIGHTS
 * descriptor), so that a line two workers write in pieces at the same time reaches the
 * log whole: on the template's one pipe, the two halves of each line interleaved. */
static void test_preload_workers_own_output(void **state)
{
	struct vt *v = *state;
	const char req[] = "GET /pieces HTTP/1.0\r\n\r\n";
	struct sup_conn *c[2];
	struct sup_http r;
	char line[64];
	int got[2];
	size_t mark;

	pl_config(v, 2, NULL, "hello");
	vt_start(v, 2);
	vt_wait_ids(v, v->port, 2);
	mark = sup_log_size(v->p);
	for (int i = 0; i < 2; i++) { /* the first one's worker is busy: the second goes to the other */
		c[i] = sup_conn_open("127.0.0.1", v->port, T_MS);
		assert_non_null(c[i]);
		vt_send(c[i], req);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sup_conn_read_response(c[i], &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		got[i] = atoi(sup_http_header(&r, "X-Worker-Id"));
		sup_http_fini(&r);
		sup_conn_close(c[i]);
	}
	assert_true(got[0] != got[1]); /* both workers wrote at once */
	for (int i = 0; i < 2; i++) {
		snprintf(line, sizeof line, "pieces of %d: the end of %d", got[i], got[i]);
		assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	}
	vt_stop(v, SIGTERM, T_MS);
}

/* The recipe's own HTTP/1.0 server: the app sees the request (method, the path
 * %XX-decoded, the query, the body up to Content-Length); a request line that is not
 * HTTP gets 400, an app that fails 500 and its traceback in the log, and the worker
 * serves on after both. Idle, it sleeps: no wake-up in 1 s (the wsgiref recipe woke
 * twice a second to look for its stop signal, and so stopped up to 0.5 s late). */
static void test_preload_worker_http(void **state)
{
	struct vt *v = *state;
	struct sup_http r;
	struct timespec second = { 1, 0 };
	pid_t w[1], again[1];
	long before, after;
	size_t mark;

	pl_config(v, 1, NULL, "hello");
	vt_start(v, 1);
	pl_workers(v, w, 1);
	pl_request(v, "POST /ec%68o?x=1 HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "POST /echo x=1 hello");
	sup_http_fini(&r);
	pl_request(v, "garbage\r\n", &r);
	assert_int_equal(r.status, 400);
	sup_http_fini(&r);
	mark = sup_log_size(v->p);
	pl_request(v, "GET /fail HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 500);
	sup_http_fini(&r);
	assert_int_equal(sup_wait_log(v->p, mark, "RuntimeError: failing on purpose", T_MS), 0);
	vt_get_ok(v, v->port, "hello from pid");
	pl_workers(v, again, 1);
	assert_int_equal(again[0], w[0]);

	/* a wait for the absence of events: 1 s idle, the worker's wake-ups counted from
	 * when it sleeps again (its last reply reached us before it was back in select) */
	assert_int_equal(sup_wait_pid_asleep(w[0], T_MS), 0);
	before = sup_pid_wakeups(w[0]);
	while (nanosleep(&second, &second) < 0 && errno == EINTR)
		;
	after = sup_pid_wakeups(w[0]);
	fprintf(stderr, "idle worker: %ld voluntary switches in 1 s\n", after - before);
	assert_true(before >= 0 && after - before == 0);
	vt_stop(v, SIGTERM, T_MS);
}

/* An overlap reload, a graceful one, then a chain, under a load: each starts a new
 * template (one more load, the new greeting), the old workers and the old template
 * go, and not one request fails. Then a `workers` reload (not zero-downtime by
 * design: no load), the same way. */
static void test_preload_reloads(void **state)
{
	struct vt *v = *state;
	pid_t old[4], now[4], got[16], tmpl;
	struct sup_load *l;
	size_t mark;

	pl_config(v, 4, "overlap", "g1");
	vt_start(v, 4);
	pl_workers(v, old, 4);
	tmpl = last_template(v);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	vt_load_progress(l, 50);

	pl_config(v, 4, "overlap", "g2");
	mark = sup_log_size(v->p);
	vt_reload(v, SIGHUP);
	assert_int_equal(sup_count_log(v->p, mark, "overlap reload of generation"), 1);
	assert_gone(old, 4);
	assert_int_equal(sup_wait_pid_dead(tmpl, T_MS), 0);
	assert_int_equal(loads(v, got, 16), 2);
	pl_workers(v, now, 4);
	vt_get_ok(v, v->port, "g2 from pid");
	vt_load_progress(l, 50);

	pl_config(v, 4, NULL, "g3"); /* graceful: the master re-execs */
	tmpl = last_template(v);
	vt_reload(v, SIGHUP);
	assert_gone(now, 4);
	assert_int_equal(sup_wait_pid_dead(tmpl, T_MS), 0);
	assert_int_equal(loads(v, got, 16), 3);
	pl_workers(v, old, 4);
	vt_get_ok(v, v->port, "g3 from pid");
	vt_load_progress(l, 50);

	pl_config(v, 4, "chain", "g4"); /* one worker at a time, all from one new load */
	tmpl = last_template(v);
	vt_reload(v, SIGHUP);
	assert_gone(old, 4);
	assert_int_equal(sup_wait_pid_dead(tmpl, T_MS), 0);
	assert_int_equal(loads(v, got, 16), 4);
	pl_workers(v, now, 4);
	vt_get_ok(v, v->port, "g4 from pid");
	vt_load_progress(l, 50);
	vt_load_stop_clean(l, 3);

	pl_config(v, 4, "workers", "g5"); /* each old worker replaced as it exits */
	tmpl = last_template(v);
	vt_reload(v, SIGHUP);
	assert_gone(now, 4);
	assert_int_equal(sup_wait_pid_dead(tmpl, T_MS), 0);
	assert_int_equal(loads(v, got, 16), 5);
	pl_workers(v, old, 4);
	vt_get_ok(v, v->port, "g5 from pid");
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* The template killed: a new one loads the app; the running workers serve on
 * untouched; a worker that dies afterwards is forked by the new template. */
static void test_preload_template_dies(void **state)
{
	struct vt *v = *state;
	pid_t w[3], again[3], got[16], tmpl;
	size_t mark;
	char line[96];

	pl_config(v, 3, NULL, "hello");
	vt_start(v, 3);
	pl_workers(v, w, 3);
	tmpl = last_template(v);
	mark = sup_log_size(v->p);
	assert_int_equal(kill(tmpl, SIGKILL), 0);
	snprintf(line, sizeof line, "template g1 (pid %d) killed by SIGKILL", (int)tmpl);
	assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "template g1 started", T_MS), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "ready in", T_MS), 0); /* no worker starts */
	assert_int_equal(loads(v, got, 16), 2);
	assert_true(last_template(v) != tmpl);
	pl_workers(v, again, 3);
	for (int i = 0; i < 3; i++)
		assert_true(pid_in(w[i], again, 3)); /* the same workers */
	vt_wait_ids(v, v->port, 3);

	kill_worker_see_it_forked(v, last_template(v), w[0], 3, 2);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* A new generation whose app cannot load: its template dies before it forks, the
 * overlap fails, and the old workers serve on, respawned from the old template
 * (no load); fixed, the next overlap goes through. */
static void test_preload_broken_generation(void **state)
{
	struct vt *v = *state;
	pid_t w[2], again[2], tmpl;
	size_t mark;

	pl_config(v, 2, "overlap", "g1");
	vt_start(v, 2);
	pl_workers(v, w, 2);
	tmpl = last_template(v);
	pl_config_env(v, 2, "overlap", "g2", ", BROKEN: 1");
	mark = sup_log_size(v->p);
	assert_int_equal(kill(v->p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(v->p, mark, "overlap reload failed", T_MS), 0);
	assert_int_equal(sup_count_log(v->p, mark, "worker 1 was not forked: its template exited"), 1);
	/* logged after "overlap reload failed" (worker 1's failure ended the overlap) */
	assert_int_equal(sup_wait_log(v->p, mark, "worker 2 was not forked: its template exited",
				      T_MS), 0);
	vt_get_ok(v, v->port, "g1 from pid");
	pl_workers_of(v, tmpl, again, 2); /* the old template is current again */
	assert_true(pid_in(w[0], again, 2) && pid_in(w[1], again, 2));

	kill_worker_see_it_forked(v, tmpl, w[0], 2, 2); /* loads: g1's, and g2's failed one */

	pl_config(v, 2, "overlap", "g3");
	v->gen = 2; /* the failed overlap was generation 2 */
	vt_reload(v, SIGHUP);
	assert_int_equal(sup_wait_pid_dead(tmpl, T_MS), 0);
	vt_get_ok(v, v->port, "g3 from pid");
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

static void races_config(struct vt *v, const char *mode, const char *ready, const char *timeout)
{
	char text[1024];

	snprintf(text, sizeof text,
		 "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n"
		 "workers:\n  count: 2\n  exec: [python3, %s/races.py]\n  cwd: %s\n"
		 "  preload: true\n  ready: %s\n  ready-timeout: %s\n  reload-mercy: 2s\n"
		 "  respawn-delay: 100ms\n  env: {MODE: %s}\n",
		 v->port, v->dir, v->dir, ready, timeout, mode);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
}

/* Two workers from the races template in this mode; until both are ready. */
static void races_start(struct vt *v, const char *mode)
{
	races_config(v, mode, "notify", "3s");
	v->p = vt_spawn(v);
	/* the template's and both workers' "ready in" (a start with a failure does not
	 * end with "ready: 2 workers") */
	for (long long end = sup_now_ms() + T_MS;
	     sup_count_log(v->p, v->mark, ") ready in") < 3 && sup_now_ms() < end;)
		sup_poll_pause();
	assert_int_equal(sup_count_log(v->p, v->mark, ") ready in"), 3);
}

/* READY=1 arrives before the template's answer: kept, and the worker is ready
 * (without it the worker would miss its ready-timeout). */
static void test_preload_ready_before_pid(void **state)
{
	struct vt *v = *state;

	races_start(v, "slow-answer");
	assert_int_equal(sup_count_log(v->p, v->mark, "not ready after"), 0);
	assert_int_equal(sup_count_log(v->p, v->mark, ") ready in"), 3); /* template, 2 workers */
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* A worker that dies before its pid is known: failed, forked again, served. */
static void test_preload_dies_before_pid(void **state)
{
	struct vt *v = *state;

	races_start(v, "die-early");
	assert_int_equal(sup_count_log(v->p, v->mark, "worker 1 exited before its pid was known"), 1);
	assert_int_equal(sup_count_log(v->p, v->mark, "not ready after"), 0);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* A template that forks once: the pid is not the master's child; it is killed, the
 * worker counts as failed and is asked for again. */
static void test_preload_single_fork_refused(void **state)
{
	struct vt *v = *state;
	char *text, *at;
	pid_t bad;

	races_start(v, "single-fork");
	assert_int_equal(sup_count_log(v->p, v->mark, "worker 1 was not handed over by its template"),
			 1);
	text = sup_read_file(v->log);
	assert_non_null(text);
	at = strstr(text + v->mark, "is not the master's child");
	assert_non_null(at);
	while (at > text && strncmp(at, "pid ", 4) != 0)
		at--;
	bad = (pid_t)atoi(at + 4);
	free(text);
	assert_true(bad > 1);
	assert_int_equal(sup_wait_pid_dead(bad, T_MS), 0);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, T_MS);
}

/* ready: exec — a forked worker is ready once its pid is known (these never say
 * READY=1). */
static void test_preload_ready_exec(void **state)
{
	struct vt *v = *state;

	races_config(v, "silent", "exec", "3s");
	vt_start(v, 2);
	vt_stop(v, SIGTERM, T_MS);
}

/* A template that never says "ready": stopped at ready-timeout, started again with
 * its backoff; no worker is forked meanwhile. */
static void test_preload_template_not_ready(void **state)
{
	struct vt *v = *state;
	long long end;

	races_config(v, "never-ready", "notify", "500ms");
	v->p = vt_spawn(v);
	assert_int_equal(sup_wait_log(v->p, v->mark, "not ready after 0.5s: stopping it", T_MS), 0);
	end = sup_now_ms() + T_MS;
	while (sup_count_log(v->p, v->mark, "template g1 started") < 2 && sup_now_ms() < end)
		sup_poll_pause();
	assert_int_equal(sup_count_log(v->p, v->mark, "template g1 started") >= 2, 1);
	assert_int_equal(sup_count_log(v->p, v->mark, "forked by its template"), 0);
	vt_stop(v, SIGTERM, T_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		PL_TEST(test_preload_serves_and_respawns),
		PL_TEST(test_preload_worker_http),
		PL_TEST(test_preload_workers_own_output),
		PL_TEST(test_preload_reloads),
		PL_TEST(test_preload_template_dies),
		PL_TEST(test_preload_broken_generation),
		PL_TEST(test_preload_ready_before_pid),
		PL_TEST(test_preload_dies_before_pid),
		PL_TEST(test_preload_single_fork_refused),
		PL_TEST(test_preload_ready_exec),
		PL_TEST(test_preload_template_not_ready),
	};

	sup_init();
	if (access("/usr/bin/python3", X_OK) != 0) { /* make deps installs it */
		fprintf(stderr, "test_preload: no /usr/bin/python3: run make deps\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
