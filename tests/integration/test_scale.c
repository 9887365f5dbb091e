/* test_scale.c — workers that follow the load (workers.count: MIN..MAX, workers.scale)
 * on a real master and hello-worker --max-conns 1 (one request at a time: the others
 * wait in the accept queue, as for a worker with one thread). Under a load of slow
 * requests from several client threads (TCP or a unix socket), the count rises one
 * worker at a time, each added only once the previous one is ready, up to MAX and not
 * beyond; once the load stops it comes back to MIN after down-after; not one request
 * fails and nothing reloads. A reload of each mode keeps the count reached. A vassal
 * with a plain count has no scaling timer: its idle master never wakes up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "vassal_fixture.h"

#define LOAD_CLIENTS 6      /* at most; a light load runs one */
#define LOAD_SLOW_MS 50
#define LOAD_MAX_MS  60000   /* a load thread never runs longer than this */

/* ---- the load: LOAD_CLIENTS threads, each one GET /slow at a time ---------------- */

struct load {
	const char *unix_path;     /* NULL: TCP on 127.0.0.1:port */
	int port;
	atomic_bool stop;
	atomic_long ok, failed;
	int clients;               /* threads started */
	long pace_ms;              /* a pause after each request (set before the threads) */
	pthread_t threads[LOAD_CLIENTS];
};

static void *load_client(void *arg)
{
	struct load *l = arg;
	long long deadline = sup_now_ms() + LOAD_MAX_MS;
	char path[64];
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	snprintf(path, sizeof path, "/slow?ms=%d", LOAD_SLOW_MS);
	while (!atomic_load(&l->stop) && sup_now_ms() < deadline) {
		struct sup_http r;
		int rc = l->unix_path ? sup_http_get_unix(l->unix_path, path, &r, T_MS)
				      : sup_http_get("127.0.0.1", l->port, path, &r, T_MS);
		if (rc == 0 && r.status == 200)
			atomic_fetch_add(&l->ok, 1);
		else
			atomic_fetch_add(&l->failed, 1);
		if (rc == 0)
			sup_http_fini(&r);
		if (l->pace_ms > 0) {
			struct timespec ts = { 0, l->pace_ms * 1000000L };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
	return NULL;
}

/* One load at a time, in static storage: a failed assertion leaves the test function
 * while the threads run; the teardown stops them (scale_teardown). */
static struct load the_load;
static bool load_running;

static struct load *load_start_n(int port, const char *unix_path, int clients)
{
	struct load *l = &the_load;

	assert_false(load_running);
	memset(l, 0, sizeof *l);
	load_running = true;
	l->port = port;
	l->unix_path = unix_path;
	l->pace_ms = clients == 1 ? 20 : 0; /* the light load: a worker mostly busy, not always */
	for (int i = 0; i < clients; i++) {
		assert_int_equal(pthread_create(&l->threads[i], NULL, load_client, l), 0);
		l->clients = i + 1; /* joined by load_join */
	}
	return l;
}

static struct load *load_start(int port, const char *unix_path)
{
	return load_start_n(port, unix_path, LOAD_CLIENTS);
}

static void load_join(struct load *l)
{
	atomic_store(&l->stop, true);
	for (int i = 0; i < l->clients; i++)
		pthread_join(l->threads[i], NULL);
	load_running = false;
}

/* Stops the load: every request it made got 200. */
static void load_stop_clean(struct load *l)
{
	load_join(l);
	fprintf(stderr, "load: %ld ok, %ld failed\n", atomic_load(&l->ok), atomic_load(&l->failed));
	assert_true(atomic_load(&l->ok) > 0);
	assert_int_equal(atomic_load(&l->failed), 0);
}

/* ---- the vassal ----------------------------------------------------------------------- */

/* count MIN..MAX, hello-worker --max-conns 1, up-after 100ms; listen is the socket's
 * address (127.0.0.1:port when NULL). */
static void scale_text(struct vt *v, char *text, size_t size, const char *count,
		       const char *down_after, const char *reload, const char *listen)
{
	char addr[512];

	snprintf(addr, sizeof addr, "127.0.0.1:%d", v->port);
	snprintf(text, size,
		 "sockets:\n  - name: http\n    listen: %s\n"
		 "workers:\n  count: %s\n  exec: [%s, --max-conns, \"1\"]\n  ready: notify\n"
		 "  ready-timeout: 5s\n  reload-mercy: 5s\n"
		 "  scale: {up-when-backlog: 1, up-after: 100ms, down-after: %s}\n"
		 "reload: %s\n",
		 listen ? listen : addr, count, v->worker, down_after, reload);
}

static void scale_config(struct vt *v, const char *count, const char *down_after,
			 const char *reload, const char *listen)
{
	char text[2048];

	scale_text(v, text, sizeof text, count, down_after, reload, listen);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
}

static double master_metric(struct vt *v, const char *series_fmt)
{
	char series[160], *text = sup_master_status(v->p->pid, "metrics");
	double n;

	assert_non_null(text);
	snprintf(series, sizeof series, series_fmt, "v");
	n = sup_metric(text, series);
	free(text);
	return n;
}

#define TARGET "emperor_vassal_workers_target{vassal=\"%s\"}"
#define UPS    "emperor_vassal_worker_scalings_total{vassal=\"%s\",direction=\"up\"}"
#define DOWNS  "emperor_vassal_worker_scalings_total{vassal=\"%s\",direction=\"down\"}"

/* The first line from text on that holds both a and b; NULL if none. */
static const char *line_with(const char *text, const char *a, const char *b)
{
	for (const char *p = text; (p = strstr(p, a)); p++) {
		const char *bol = p, *eol = strchr(p, '\n'), *at_b;
		while (bol > text && bol[-1] != '\n')
			bol--;
		at_b = strstr(bol, b);
		if (at_b && (!eol || at_b < eol))
			return bol;
	}
	return NULL;
}

/* Each "scale: up from N" comes after worker N's "ready in": an added worker was
 * ready before the next one was added. */
static void assert_ready_gated(struct vt *v, int min, int max)
{
	char *text = sup_read_file(v->log);

	assert_non_null(text);
	for (int n = min + 1; n < max; n++) {
		char up[64], worker[64];
		const char *at_up, *at_ready;
		snprintf(up, sizeof up, "scale: up from %d to %d workers", n, n + 1);
		snprintf(worker, sizeof worker, "worker %d (pid ", n);
		at_up = strstr(text + v->mark, up);
		at_ready = line_with(text + v->mark, worker, ") ready in");
		assert_non_null(at_up);
		assert_non_null(at_ready);
		assert_true(at_ready < at_up);
	}
	free(text);
}

/* Up to max under load, one worker at a time; held there; back to min under a light
 * load (one client: a worker always free, the queues empty), none of whose requests
 * fails while workers are stopped. */
static void scale_round(struct vt *v, const char *unix_path, int min, int max)
{
	char line[96];
	pid_t pids[VT_MAX_PIDS];
	struct load *l;

	l = load_start(v->port, unix_path);
	snprintf(line, sizeof line, "scale: up from %d to %d workers: accept queue", max - 1, max);
	assert_int_equal(sup_wait_log(v->p, v->mark, line, T_MS), 0);
	vt_workers(v, pids, max);
	snprintf(line, sizeof line, "already at the maximum of %d workers", max);
	assert_int_equal(sup_wait_log(v->p, v->mark, line, T_MS), 0);
	assert_true(master_metric(v, TARGET) == max);
	load_stop_clean(l);
	assert_ready_gated(v, min, max);
	snprintf(line, sizeof line, "scale: up from %d to", max);
	assert_int_equal(sup_count_log(v->p, v->mark, line), 0);

	l = load_start_n(v->port, unix_path, 1);
	snprintf(line, sizeof line, "scale: down from %d to %d workers: every accept queue empty",
		 min + 1, min);
	assert_int_equal(sup_wait_log(v->p, v->mark, line, T_MS), 0);
	vt_workers(v, pids, min);
	load_stop_clean(l);
	assert_true(master_metric(v, TARGET) == min);
	assert_true(master_metric(v, UPS) == max - min);
	assert_true(master_metric(v, DOWNS) == max - min);
	/* never a reload, never below the minimum */
	assert_int_equal(sup_count_log(v->p, v->mark, "reloading ("), 0);
	snprintf(line, sizeof line, "scale: down from %d to", min);
	assert_int_equal(sup_count_log(v->p, v->mark, line), 0);
}

static void test_scales_up_to_max_and_back_down(void **state)
{
	struct vt *v = *state;

	scale_config(v, "1..4", "1s", "graceful", NULL);
	vt_start(v, 1);
	scale_round(v, NULL, 1, 4);
	vt_stop(v, SIGTERM, T_MS);
}

/* The same on a unix socket: the queue comes from sock_diag (UNIX_DIAG_RQLEN). */
static void test_scales_on_a_unix_socket(void **state)
{
	struct vt *v = *state;
	char listen[512], *sock = sup_path(v->dir, "s.sock");

	snprintf(listen, sizeof listen, "unix:%s", sock);
	scale_config(v, "2..3", "1s", "graceful", listen);
	vt_start(v, 2);
	scale_round(v, sock, 2, 3);
	vt_stop(v, SIGTERM, T_MS);
	free(sock);
}

/* The master's JSON: workers.target and workers.scale. */
static int json_target(struct vt *v)
{
	char *text = sup_master_status(v->p->pid, "json");
	struct json_object *doc, *workers, *scale, *target;
	int n = -1;

	assert_non_null(text);
	doc = json_tokener_parse(text);
	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "workers", &workers));
	assert_true(json_object_object_get_ex(workers, "scale", &scale));
	assert_true(json_object_object_get_ex(scale, "target", &target));
	n = json_object_get_int(target);
	assert_true(json_object_object_get_ex(workers, "target", &target));
	assert_int_equal(json_object_get_int(target), n);
	json_object_put(doc);
	free(text);
	return n;
}

/* Reload with sig after rewriting the file with this mode: 3 workers after it. */
static void reload_keeps(struct vt *v, const char *mode, int sig)
{
	pid_t pids[VT_MAX_PIDS];

	scale_config(v, "1..3", "10m", mode, NULL);
	vt_reload(v, sig);
	vt_workers(v, pids, 3);
	vt_wait_ids(v, v->port, 3);
	assert_int_equal(json_target(v), 3);
	assert_true(master_metric(v, TARGET) == 3);
}

static void test_reload_keeps_the_count(void **state)
{
	struct vt *v = *state;
	char line[96];
	struct load *l;

	scale_config(v, "1..3", "10m", "graceful", NULL);
	vt_start(v, 1);
	l = load_start(v->port, NULL);
	assert_int_equal(sup_wait_log(v->p, v->mark, "scale: up from 2 to 3 workers", T_MS), 0);
	load_stop_clean(l);
	assert_int_equal(json_target(v), 3);

	reload_keeps(v, "graceful", SIGHUP);
	snprintf(line, sizeof line, "scale: 3 workers, as before the reload (range 1..3)");
	assert_int_equal(sup_count_log(v->p, v->mark, line), 1);
	reload_keeps(v, "chain", SIGUSR2);
	reload_keeps(v, "workers", SIGHUP);
	reload_keeps(v, "overlap", SIGHUP);
	/* a narrower range: the count is clamped into it (chain: no re-exec) */
	scale_config(v, "1..2", "10m", "chain", NULL);
	vt_reload(v, SIGHUP);
	assert_int_equal(json_target(v), 2);
	vt_stop(v, SIGTERM, T_MS);
}

/* Voluntary context switches of pid so far. */
static long switches(pid_t pid)
{
	long n = sup_pid_wakeups(pid);

	assert_true(n >= 0);
	return n;
}

/* A plain count keeps today's behaviour: no scaling timer (W4: no wake-up while idle),
 * no scaling series but the target. */
static void test_a_plain_count_has_no_timer(void **state)
{
	struct vt *v = *state;
	long before, after;
	char *json;

	vt_config(v, &(struct vcfg){ .count = 2 });
	vt_start(v, 2);
	vt_get_ok(v, v->port, NULL);
	/* a wait for the absence of events: 1 s idle, the switches counted over it from
	 * when the master sleeps in its loop again */
	assert_int_equal(sup_wait_pid_asleep(v->p->pid, T_MS), 0);
	before = switches(v->p->pid);
	{
		struct timespec ts = { 1, 0 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	after = switches(v->p->pid);
	fprintf(stderr, "idle master: %ld voluntary switches in 1 s\n", after - before);
	assert_true(before >= 0 && after - before == 0);
	assert_true(master_metric(v, TARGET) == 2);
	assert_true(master_metric(v, UPS) == 0);
	json = sup_master_status(v->p->pid, "json");
	assert_non_null(json);
	assert_null(strstr(json, "\"scale\""));
	free(json);
	vt_stop(v, SIGTERM, T_MS);
}

/* emperorctl --control ctl args...: its exit status 0 and its output (malloc'd). */
static char *ctl(struct vt *v, const char *ctl_path, const char *a1, const char *a2)
{
	char *out = sup_path(v->dir, "ctl.out"), *text = NULL;

	assert_int_equal(sup_emperorctl(ctl_path, (const char *const[]){ a1, a2, NULL }, out, T_MS,
					&text), 0);
	assert_non_null(text);
	free(out);
	return text;
}

/* emperorctl status's line for vassal v shows ready/total = want, within T_MS. */
static void wait_status_workers(struct vt *v, const char *ctl_path, const char *want)
{
	long long deadline = sup_now_ms() + T_MS;
	char *text = NULL, needle[32];
	bool seen = false;

	snprintf(needle, sizeof needle, " %s ", want);
	while (!seen && sup_now_ms() < deadline) {
		const char *line;
		free(text);
		text = ctl(v, ctl_path, "status", NULL);
		line = strstr(text, "\nv ");
		seen = line && strstr(line, needle) && strstr(line, needle) < strchr(line + 1, '\n');
		if (!seen)
			sup_poll_pause();
	}
	if (!seen)
		fprintf(stderr, "emperorctl status, expected %s for v:\n%s", want, text);
	free(text);
	assert_true(seen);
}

/* workers_total of vassal "v" in emperorctl --json status; -1 if absent. */
static int json_workers_total(const char *text)
{
	struct json_object *doc = json_tokener_parse(text), *list, *item, *name, *total;
	int n = -1;

	assert_non_null(doc);
	assert_true(json_object_object_get_ex(doc, "vassals", &list));
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		item = json_object_array_get_idx(list, i);
		if (json_object_object_get_ex(item, "name", &name) &&
		    strcmp(json_object_get_string(name), "v") == 0 &&
		    json_object_object_get_ex(item, "workers_total", &total))
			n = json_object_get_int(total);
	}
	json_object_put(doc);
	return n;
}

/* Through the emperor: emperorctl status, its JSON and the metrics show the target. */
static void test_emperor_shows_the_target(void **state)
{
	struct vt *v = *state;
	char *vdir = sup_path(v->dir, "vassals.d"), *file = sup_path(vdir, "v.yaml");
	char *ctl_path = sup_path(v->dir, "ctl.sock"), *elog = sup_path(v->dir, "emperor.log");
	char *emperor = sup_copy_bin(v->dir, "emperor"), text[2048], *out;
	struct sup_proc *e;
	struct load *l;

	assert_int_equal(mkdir(vdir, 0755), 0);
	scale_text(v, text, sizeof text, "1..3", "1s", "graceful", NULL);
	assert_int_equal(sup_write_file(file, text), 0);
	{
		char *argv[] = { emperor, "--control", ctl_path, vdir, NULL };
		e = v->p = sup_spawn(argv, NULL, v->dir, elog); /* the teardown kills it */
	}
	assert_non_null(e);
	assert_int_equal(sup_wait_port("127.0.0.1", v->port, T_MS), 0);
	wait_status_workers(v, ctl_path, "1/1");
	l = load_start(v->port, NULL);
	wait_status_workers(v, ctl_path, "3/3");
	out = ctl(v, ctl_path, "--json", "status");
	assert_int_equal(json_workers_total(out), 3);
	free(out);
	out = ctl(v, ctl_path, "status", "v");
	assert_non_null(strstr(out, "\nscale: 3 workers (range 1..3), accept queue "));
	free(out);
	out = ctl(v, ctl_path, "metrics", NULL);
	assert_true(sup_metric(out, "emperor_vassal_workers_target{vassal=\"v\"}") == 3);
	assert_true(sup_metric(out, "emperor_vassal_worker_scalings_total{vassal=\"v\",direction=\"up\"}") == 2);
	free(out);
	load_stop_clean(l);
	wait_status_workers(v, ctl_path, "1/1");
	assert_int_equal(sup_stop(e, SIGTERM, T_MS), 0);
	assert_true(WIFEXITED(e->status) && WEXITSTATUS(e->status) == 0);
	sup_proc_free(e);
	v->p = NULL;
	vt_assert_log_clean(elog);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
	free(vdir), free(file), free(ctl_path), free(elog), free(emperor);
}

static int scale_teardown(void **state)
{
	if (load_running)
		load_join(&the_load);
	return vt_teardown(state);
}

#define SCALE_TEST(f) cmocka_unit_test_setup_teardown(f, vt_setup, scale_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		SCALE_TEST(test_scales_up_to_max_and_back_down),
		SCALE_TEST(test_scales_on_a_unix_socket),
		SCALE_TEST(test_reload_keeps_the_count),
		SCALE_TEST(test_a_plain_count_has_no_timer),
		SCALE_TEST(test_emperor_shows_the_target),
	};

	sup_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
