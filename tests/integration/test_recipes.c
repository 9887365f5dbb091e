/* test_recipes.c — the example vassals of docs/recipes/ run for real, each with its
 * third-party server as the worker (gunicorn, uWSGI, Node.js, Python's http.server,
 * lighttpd): the recipe's files are copied into a temp dir, the vassal master is
 * started on the YAML as written with PORT set in its environment, and graceful then
 * chain reloads run under clients that never pause (a new connection per request,
 * plus a keep-alive client for the servers that keep connections). Asserted: not one
 * request failed, every reload brought new worker processes, the master stops with
 * exit 0 and nothing is left behind. A missing runtime is a cmocka skip naming the
 * Debian package (`make deps` installs every one). The runtimes are looked up in
 * Debian's directories only (TEST_PATH), whatever the caller's PATH holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "vassal_fixture.h"

#define TEST_PATH "/usr/bin:/bin:/usr/sbin:/sbin"
#define START_MS 30000        /* a first start: an interpreter loads its app */
#define RELOAD_MS 30000       /* one reload, start of the new workers included */
#define MAX_FILES 6

struct recipe {
	const char *name;                 /* docs/recipes/NAME.yaml */
	const char *files[MAX_FILES];     /* more files of docs/recipes/ it needs */
	const char *needs[3];             /* programs: a name looked up in TEST_PATH, or a path */
	const char *debs;                 /* the Debian packages that hold them */
	int count;                        /* workers: count of the file */
	int graceful, chain;              /* how many reloads of each kind */
	int pid_header;                   /* answers carry X-Worker-Pid */
	int keepalive;                    /* also a keep-alive client */
	long max_graceful_ms;             /* > 0: bound of a graceful reload's duration */
	int slow;                         /* GET /slow?ms=N answers late, logging "slow request started" */
	int accept_race;                  /* a stop may drop the connection just accepted (uWSGI) */
	const char *body;                 /* in every answer */
};

/* Where docs/recipes/ is: $EMPEROR_SOURCE (the repository), else the cwd. */
static char *recipe_src(const char *file)
{
	const char *root = getenv("EMPEROR_SOURCE");
	char *p = NULL;

	assert_true(asprintf(&p, "%s/docs/recipes/%s", root ? root : ".", file) > 0);
	return p;
}

/* A program is there: an absolute path that exists, or a name found in TEST_PATH. */
static int have_program(const char *prog)
{
	char path[256], dirs[] = TEST_PATH;

	if (prog[0] == '/')
		return access(prog, F_OK) == 0;
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof path, "%s/%s", d, prog);
		if (access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* Copies docs/recipes/FILE to dir/FILE (FILE may have one directory level). */
static void copy_recipe_file(const char *dir, const char *file)
{
	char *src = recipe_src(file), *dst = sup_path(dir, file), *text, *slash;

	text = sup_read_file(src);
	if (!text)
		fprintf(stderr, "%s: cannot read (run from the repository, or set EMPEROR_SOURCE)\n", src);
	assert_non_null(text);
	if ((slash = strrchr(dst, '/')) && slash > dst + strlen(dir)) {
		*slash = '\0';
		assert_true(mkdir(dst, 0755) == 0 || errno == EEXIST);
		*slash = '/';
	}
	assert_int_equal(sup_write_file(dst, text), 0);
	free(text), free(src), free(dst);
}

/* The recipe's YAML with its reload: line set to mode (the file's own if NULL). */
static void write_config(struct vt *v, const char *yaml, const char *mode)
{
	char *text = strdup(yaml), *at;

	assert_non_null(text);
	if (mode && (at = strstr(text, "\nreload: "))) {
		char *eol = strchr(at + 1, '\n'), *out = NULL;

		assert_true(asprintf(&out, "%.*s\nreload: %s%s", (int)(at - text), text, mode,
				     eol ? eol : "\n") > 0);
		free(text);
		text = out;
	}
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
	free(text);
}

/* The master on v->cfg, PORT and PATH in its environment; waits until it is ready. */
static void start(struct vt *v, const struct recipe *r)
{
	char port[32], path[] = "PATH=" TEST_PATH, line[64];
	char *argv[] = { v->vassal, v->cfg, NULL }, *env[] = { port, path, NULL };

	snprintf(port, sizeof port, "PORT=%d", v->port);
	v->mark = sup_file_size(v->log);
	v->gen = 1;
	v->p = sup_spawn(argv, env, v->dir, v->log);
	assert_non_null(v->p);
	snprintf(line, sizeof line, "ready: %d workers, generation 1", r->count);
	assert_int_equal(sup_wait_log(v->p, v->mark, line, START_MS), 0);
}

/* The "ready in X ms" of the reload that completed after mark. */
static long reload_ms(struct vt *v, size_t mark)
{
	char *text = sup_read_file(v->log), *at;
	long ms = -1;

	assert_non_null(text);
	if ((at = strstr(text + mark, "reload complete: generation ")) && (at = strstr(at, " in ")))
		ms = strtol(at + 4, NULL, 10);
	free(text);
	return ms;
}

struct figures {
	long min_ms, max_ms, sum_ms;
	int n;
};

/* Sends sig, waits for the next generation; returns how long the reload took. */
static long reload(struct vt *v, int sig, const char *want_log, struct figures *f)
{
	char line[64];
	size_t mark = sup_log_size(v->p);
	long ms;

	assert_int_equal(kill(v->p->pid, sig), 0);
	snprintf(line, sizeof line, "reload complete: generation %u ready", v->gen + 1);
	assert_int_equal(sup_wait_log(v->p, mark, line, RELOAD_MS), 0);
	v->gen++;
	assert_int_equal(sup_count_log(v->p, mark, want_log), 1);
	ms = reload_ms(v, mark);
	assert_true(ms >= 0);
	f->min_ms = f->n && f->min_ms < ms ? f->min_ms : ms;
	f->max_ms = f->max_ms > ms ? f->max_ms : ms;
	f->sum_ms += ms;
	f->n++;
	return ms;
}

/* The master's workers now: none of them is in before (every one was replaced). */
static int replaced_workers(struct vt *v, const struct recipe *r, pid_t *before, int n_before)
{
	pid_t now[VT_MAX_PIDS];
	int n = vt_workers(v, now, r->count);

	for (int i = 0; i < n; i++)
		if (pid_in(now[i], before, n_before)) {
			fprintf(stderr, "%s: worker pid %d was not replaced\n", r->name, (int)now[i]);
			fail();
		}
	memcpy(before, now, sizeof now[0] * (size_t)n);
	return n;
}

static void print_figures(const struct recipe *r, const char *kind, const struct figures *f)
{
	if (f->n)
		fprintf(stderr, "%s: %d %s reloads, %ld..%ld ms (mean %ld ms)\n", r->name, f->n,
			kind, f->min_ms, f->max_ms, f->sum_ms / f->n);
}

/* Stops the load: no request failed (with accept_race, at most one per stop of a
 * worker, each the connection that worker accepted as its stop arrived). */
static void stop_load(const struct recipe *r, struct sup_load *l, const char *label, int min_pids)
{
	struct sup_load_stats s;
	char name[64];
	long max_lost = r->accept_race ? (long)r->count * (r->graceful + r->chain) : 0;

	sup_load_stop(l, &s);
	snprintf(name, sizeof name, "%s %s", r->name, label);
	sup_load_print(name, &s);
	assert_int_equal(s.connect_errors, 0);
	if (s.io_errors > max_lost) {
		fprintf(stderr, "%s: %ld failed requests, at most %ld expected (the load client "
			"gives up on a request after 15 s: compare with the reload durations above, "
			"on an overloaded machine)\n", name, s.io_errors, max_lost);
		fail();
	}
	assert_int_equal(s.non200, 0);
	assert_true(s.ok > 0);
	assert_true(s.n_pids >= min_pids);
}

/* Waits until each running load got n more 200s. */
static void progress(struct sup_load *const loads[2], long n)
{
	for (int i = 0; i < 2; i++)
		if (loads[i])
			vt_load_progress(loads[i], n);
}

/* A request the server has begun (it logged so) and answers in 1 s. */
static struct sup_conn *slow_request(struct vt *v)
{
	size_t mark = sup_log_size(v->p);
	struct sup_conn *c = sup_conn_open("127.0.0.1", v->port, T_MS);

	assert_non_null(c);
	vt_send(c, "GET /slow?ms=1000 HTTP/1.1\r\nHost: recipes\r\nConnection: close\r\n\r\n");
	assert_int_equal(sup_wait_log(v->p, mark, "slow request started", T_MS), 0);
	return c;
}

/* The slow request got its answer: the stop let it finish. */
static void slow_answered(const struct recipe *r, struct sup_conn *c, const char *kind)
{
	struct sup_http resp;

	if (sup_conn_read_response(c, &resp, T_MS) != 0) {
		fprintf(stderr, "%s: a request in flight was cut by a %s reload\n", r->name, kind);
		fail();
	}
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body, r->body));
	sup_http_fini(&resp);
	sup_conn_close(c);
}

/* A keep-alive connection that got one answer and then stays idle. */
static struct sup_conn *idle_keepalive(struct vt *v)
{
	struct sup_conn *c = sup_conn_open("127.0.0.1", v->port, T_MS);
	struct sup_http r;

	assert_non_null(c);
	assert_int_equal(sup_conn_get(c, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_null(strcasestr(r.head, "Connection: close"));
	sup_http_fini(&r);
	return c;
}

/* Graceful reloads (the file's reload: set to graceful), then chain reloads (the
 * file as written, reload: chain; SIGUSR2 where it says graceful). With keep-alive,
 * an idle connection open across the first graceful reload is closed by the
 * server's stop (which must not wait for the client to leave: the reload would take
 * the server's keep-alive timeout, or forever). */
static void reload_phases(struct vt *v, const struct recipe *r, const char *yaml,
			  struct sup_load *const loads[2], pid_t *workers, int n)
{
	struct figures g = { 0 }, c = { 0 };
	struct sup_conn *idle = NULL;
	int file_chains = strstr(yaml, "\nreload: chain") != NULL;

	if (file_chains)
		write_config(v, yaml, "graceful");
	if (r->keepalive)
		idle = idle_keepalive(v);
	for (int i = 0; i < r->graceful; i++) {
		struct sup_conn *slow = r->slow && i == 0 ? slow_request(v) : NULL;
		long ms = reload(v, SIGHUP, "graceful reload of generation", &g);

		if (slow)
			slow_answered(r, slow, "graceful");
		if (idle) { /* its worker is gone: it closed the connection, not waited */
			assert_int_equal(sup_conn_wait_closed(idle, T_MS), 0);
			sup_conn_close(idle);
			idle = NULL;
		}
		if (r->max_graceful_ms > 0 && ms > r->max_graceful_ms) {
			fprintf(stderr, "%s: graceful reload took %ld ms, expected at most %ld\n",
				r->name, ms, r->max_graceful_ms);
			fail();
		}
		n = replaced_workers(v, r, workers, n);
		progress(loads, 10);
	}
	write_config(v, yaml, NULL);
	for (int i = 0; i < r->chain; i++) {
		struct sup_conn *slow = r->slow && i == 0 ? slow_request(v) : NULL;

		reload(v, file_chains ? SIGHUP : SIGUSR2, "chain reload of generation", &c);
		if (slow)
			slow_answered(r, slow, "chain");
		n = replaced_workers(v, r, workers, n);
		progress(loads, 10);
	}
	print_figures(r, "graceful", &g);
	print_figures(r, "chain", &c);
}

static void run_recipe(void **state, const struct recipe *r)
{
	struct vt *v = *state;
	struct sup_load *l, *ka = NULL, *loads[2];
	pid_t workers[VT_MAX_PIDS];
	char *yaml_src, *yaml, file[64];
	int n;

	for (int i = 0; i < 3 && r->needs[i]; i++)
		if (!have_program(r->needs[i])) {
			fprintf(stderr, "SKIPPED recipe %s: %s not found in %s (Debian: apt-get "
				"install %s; `make deps` installs it)\n", r->name, r->needs[i],
				TEST_PATH, r->debs);
			skip();
		}
	snprintf(file, sizeof file, "%s.yaml", r->name);
	yaml_src = recipe_src(file);
	yaml = sup_read_file(yaml_src);
	assert_non_null(yaml);
	for (int i = 0; i < MAX_FILES && r->files[i]; i++)
		copy_recipe_file(v->dir, r->files[i]);
	write_config(v, yaml, NULL);
	start(v, r);
	vt_get_ok(v, v->port, r->body);
	n = vt_workers(v, workers, r->count);
	l = sup_load_start("127.0.0.1", v->port, "/");
	assert_non_null(l);
	if (r->keepalive) {
		ka = sup_load_start_mode("127.0.0.1", v->port, "/", SUP_LOAD_KEEPALIVE);
		assert_non_null(ka);
		vt_load_progress(ka, 10);
	}
	vt_load_progress(l, 20);
	loads[0] = l, loads[1] = ka;
	reload_phases(v, r, yaml, loads, workers, n);
	progress(loads, 10);
	stop_load(r, l, "new connections", r->pid_header ? 2 : 0);
	if (ka)
		stop_load(r, ka, "keep-alive", r->pid_header ? 2 : 0);
	vt_get_ok(v, v->port, r->body);
	vt_assert_no_zombies(v);
	vt_stop(v, SIGTERM, RELOAD_MS);
	free(yaml), free(yaml_src);
}

/* ---- the recipes ------------------------------------------------------------------- */

static void test_gunicorn(void **state)
{
	run_recipe(state, &(struct recipe){
		.name = "gunicorn", .files = { "wsgi_app.py", "gunicorn.conf.py" }, .needs = { "gunicorn" },
		.debs = "gunicorn", .count = 1, .graceful = 2, .chain = 3, .pid_header = 1, .slow = 1,
		.body = "hello from pid" });
}

static void test_uwsgi(void **state)
{
	run_recipe(state, &(struct recipe){
		.name = "uwsgi", .files = { "wsgi_app.py", "uwsgi.ini" },
		.needs = { "uwsgi", "/usr/lib/uwsgi/plugins/python3_plugin.so", "systemd-notify" },
		.debs = "uwsgi-core uwsgi-plugin-python3 systemd", .count = 2, .graceful = 2, .chain = 3,
		.pid_header = 1, .slow = 1, .accept_race = 1, .body = "hello from pid" });
}

/* Keep-alive clients: the stop drains them instead of waiting for them (a reload
 * that waited would take keepAliveTimeout, 5 s, or never end under a busy client). */
static void test_node(void **state)
{
	run_recipe(state, &(struct recipe){
		.name = "node", .files = { "node-server.js" }, .needs = { "node", "systemd-notify" },
		.debs = "nodejs systemd", .count = 2, .graceful = 2, .chain = 3, .pid_header = 1,
		.keepalive = 1, .max_graceful_ms = 4000, .slow = 1, .body = "hello from pid" });
}

static void test_python(void **state)
{
	run_recipe(state, &(struct recipe){
		.name = "python", .files = { "python-server.py" }, .needs = { "python3" },
		.debs = "python3", .count = 2, .graceful = 2, .chain = 3, .pid_header = 1, .slow = 1,
		.body = "hello from pid" });
}

/* ready: exec — chain reloads still lose nothing (connections wait in the queue). */
static void test_lighttpd(void **state)
{
	run_recipe(state, &(struct recipe){
		.name = "lighttpd", .files = { "lighttpd.conf", "lighttpd-htdocs/index.html" },
		.needs = { "/usr/sbin/lighttpd" }, .debs = "lighttpd", .count = 2, .graceful = 2,
		.chain = 3, .keepalive = 1, .max_graceful_ms = 4000, .body = "hello from lighttpd" });
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VT_TEST(test_gunicorn),
		VT_TEST(test_uwsgi),
		VT_TEST(test_node),
		VT_TEST(test_python),
		VT_TEST(test_lighttpd),
	};

	sup_init();
	if (getenv("TEST_RECIPE")) /* e.g. TEST_RECIPE=test_node: that one only */
		cmocka_set_test_filter(getenv("TEST_RECIPE"));
	return cmocka_run_group_tests_name("recipes", tests, NULL, NULL);
}
