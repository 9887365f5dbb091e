/* vassal_fixture.h — what test_vassal.c and test_vassal_reload.c share: a temp dir
 * with a vassal file written from a few parameters, the master started on it with
 * sup_spawn (its log and its workers' in one file), waits on its log lines, its worker
 * processes found through /proc, a client load, and the stop that checks the exit
 * status, the sanitizers' reports in the log, zombies and leftovers. Include after
 * cmocka.h. Helpers are static and may go unused in one of the two files. */
#ifndef EMPEROR_VASSAL_FIXTURE_H
#define EMPEROR_VASSAL_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/support.h"

#define T_MS 10000            /* bound of every wait that should succeed at once */
#define VT_MAX_PIDS 64
#define VT_HELPER static __attribute__((unused))
#define VT_TEST(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

struct vt {
	char *dir;
	char *cfg;                 /* dir/v.yaml: the vassal is named "v" */
	char *log;                 /* the master's stdout and stderr, and its workers' */
	char *worker, *vassal;     /* absolute paths of the binaries */
	int port;
	struct sup_proc *p;        /* the master */
	size_t mark;               /* size of the log when p was spawned */
	unsigned gen;              /* the generation the master should be at */
};

/* A vassal file: one socket "http" on 127.0.0.1:port, hello-worker as the workers. */
struct vcfg {
	int count;
	const char *args;          /* more exec items, flow syntax: ", --delay, \"5\"" */
	const char *ready;         /* default notify */
	const char *ready_timeout; /* default 2s */
	const char *mercy;         /* reload-mercy, default 2s */
	const char *reload;        /* reload: mode, default unset (graceful) */
	const char *workers;       /* more lines under workers:, indented by 2 */
	const char *top;           /* more top-level lines */
	int port2;                 /* > 0: a second socket "admin" on 127.0.0.1:port2 */
};

VT_HELPER int vt_setup(void **state)
{
	struct vt *v = calloc(1, sizeof *v);

	assert_non_null(v);
	v->dir = sup_tmpdir();
	assert_non_null(v->dir);
	v->cfg = sup_path(v->dir, "v.yaml");
	v->log = sup_path(v->dir, "vassal.log");
	v->worker = sup_copy_bin(v->dir, "examples/hello-worker");
	v->vassal = sup_copy_bin(v->dir, "vassal");
	assert_int_equal(access(v->worker, X_OK), 0);
	assert_int_equal(access(v->vassal, X_OK), 0);
	v->port = sup_free_port();
	assert_true(v->port > 0);
	*state = v;
	return 0;
}

VT_HELPER int vt_teardown(void **state)
{
	struct vt *v = *state;

	sup_proc_free(v->p);
	sup_wait_no_leftovers(2000); /* after a failure: the next test starts clean */
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", v->dir);
	else
		sup_rmtree(v->dir);
	free(v->dir), free(v->cfg), free(v->log), free(v->worker), free(v->vassal);
	free(v);
	return 0;
}

/* The text of the vassal file c describes. */
VT_HELPER void vt_config_text(const struct vt *v, const struct vcfg *c, char *text, size_t size)
{
	char admin[128] = "", reload[64] = "";

	if (c->port2)
		snprintf(admin, sizeof admin, "  - name: admin\n    listen: 127.0.0.1:%d\n", c->port2);
	if (c->reload)
		snprintf(reload, sizeof reload, "reload: %s\n", c->reload);
	snprintf(text, size,
		 "sockets:\n  - name: http\n    listen: 127.0.0.1:%d\n%s"
		 "workers:\n  count: %d\n  exec: [%s%s]\n  ready: %s\n  ready-timeout: %s\n"
		 "  reload-mercy: %s\n%s%s%s",
		 v->port, admin, c->count, v->worker, c->args ? c->args : "",
		 c->ready ? c->ready : "notify", c->ready_timeout ? c->ready_timeout : "2s",
		 c->mercy ? c->mercy : "2s", c->workers ? c->workers : "", reload,
		 c->top ? c->top : "");
}

/* Writes the vassal file (atomically: the master never reads half of it). */
VT_HELPER void vt_config(struct vt *v, const struct vcfg *c)
{
	char text[4096];

	vt_config_text(v, c, text, sizeof text);
	assert_int_equal(sup_write_file_atomic(v->cfg, text), 0);
}

VT_HELPER struct sup_proc *vt_spawn(struct vt *v)
{
	char *argv[] = { v->vassal, v->cfg, NULL };
	struct sup_proc *p;

	v->mark = sup_file_size(v->log);
	v->gen = 1;
	p = sup_spawn(argv, NULL, v->dir, v->log);
	assert_non_null(p);
	return p;
}

/* Starts the master and waits until its n workers are ready. */
VT_HELPER void vt_start(struct vt *v, int n)
{
	char line[64];

	v->p = vt_spawn(v);
	snprintf(line, sizeof line, "ready: %d workers, generation 1", n);
	assert_int_equal(sup_wait_log(v->p, v->mark, line, T_MS), 0);
}

VT_HELPER void vt_wait_generation(struct vt *v, size_t mark, unsigned gen)
{
	char line[64];

	snprintf(line, sizeof line, "reload complete: generation %u ready", gen);
	assert_int_equal(sup_wait_log(v->p, mark, line, T_MS), 0);
	v->gen = gen;
}

/* Sends sig (SIGHUP, SIGUSR2) and waits until the next generation is ready. */
VT_HELPER void vt_reload(struct vt *v, int sig)
{
	size_t mark = sup_log_size(v->p);

	assert_int_equal(kill(v->p->pid, sig), 0);
	vt_wait_generation(v, mark, v->gen + 1);
}

VT_HELPER int pid_in(pid_t pid, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return 1;
	return 0;
}

/* Live children of parent, at most max. */
VT_HELPER int vt_children(pid_t parent, pid_t *out, int max)
{
	pid_t all[256];
	int n = sup_descendants(parent, all, 256), k = 0;

	for (int i = 0; i < n && k < max; i++)
		if (sup_pid_ppid(all[i]) == parent && sup_pid_alive(all[i]))
			out[k++] = all[i];
	return k;
}

/* The master's worker processes, once there are exactly want of them (out holds
 * want; more children than that are counted, never written past it). */
VT_HELPER int vt_workers(struct vt *v, pid_t *out, int want)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t all[VT_MAX_PIDS];
	int n;

	while ((n = vt_children(v->p->pid, all, VT_MAX_PIDS)) != want && sup_now_ms() < deadline)
		sup_poll_pause();
	if (n != want)
		fprintf(stderr, "master %d has %d children, expected %d\n", (int)v->p->pid, n, want);
	assert_int_equal(n, want);
	memcpy(out, all, (size_t)n * sizeof *out);
	return n;
}

/* The first child of pid (a worker's --fork-sleeper), waited for. */
VT_HELPER pid_t vt_child_of(pid_t pid)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t c = 0;

	while (vt_children(pid, &c, 1) == 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	return c;
}

/* No descendant of the master stays a zombie (reaped within 2 s). */
VT_HELPER void vt_assert_no_zombies(struct vt *v)
{
	long long deadline = sup_now_ms() + 2000;
	pid_t all[256];
	int zombies;

	do {
		int n = sup_descendants(v->p->pid, all, 256);
		zombies = 0;
		for (int i = 0; i < n; i++)
			zombies += sup_pid_state(all[i]) == 'Z';
		if (zombies)
			sup_poll_pause();
	} while (zombies && sup_now_ms() < deadline);
	for (int i = 0, n = sup_descendants(v->p->pid, all, 256); zombies && i < n; i++)
		if (sup_pid_state(all[i]) == 'Z')
			fprintf(stderr, "zombie pid %d, parent %d\n", (int)all[i], (int)sup_pid_ppid(all[i]));
	assert_int_equal(zombies, 0);
}

VT_HELPER void vt_send(struct sup_conn *c, const char *s)
{
	assert_int_equal(sup_conn_send(c, s, strlen(s), T_MS), 0);
}

/* One GET / answered 200 on port; its body contains want if want is not NULL. */
VT_HELPER void vt_get_ok(struct vt *v, int port, const char *want)
{
	struct sup_http r;

	(void)v;
	assert_int_equal(sup_http_get("127.0.0.1", port, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	if (want && !strstr(r.body, want)) {
		fprintf(stderr, "body \"%s\", expected \"%s\" in it\n", r.body, want);
		fail();
	}
	sup_http_fini(&r);
}

/* GETs until every worker id 1..n has answered on port (each answer 200). */
VT_HELPER void vt_wait_ids(struct vt *v, int port, int n)
{
	long long deadline = sup_now_ms() + T_MS;
	unsigned seen = 0, all = (1u << n) - 1;

	(void)v;
	while (seen != all && sup_now_ms() < deadline) {
		struct sup_http r;
		const char *id;

		assert_int_equal(sup_http_get("127.0.0.1", port, "/", &r, T_MS), 0);
		assert_int_equal(r.status, 200);
		id = sup_http_header(&r, "X-Worker-Id");
		assert_non_null(id);
		assert_true(atoi(id) >= 1 && atoi(id) <= n);
		seen |= 1u << (atoi(id) - 1);
		sup_http_fini(&r);
	}
	assert_int_equal(seen, all);
}

/* Waits until the load got n more 200s. */
VT_HELPER void vt_load_progress(struct sup_load *l, long n)
{
	struct sup_load_stats s;

	sup_load_snapshot(l, &s);
	assert_int_equal(sup_load_wait_ok(l, s.ok + n, T_MS), 0);
}

/* Stops the load: not one request failed, at least min_pids workers answered. */
VT_HELPER void vt_load_stop_clean(struct sup_load *l, int min_pids)
{
	struct sup_load_stats s;

	sup_load_stop(l, &s);
	sup_load_print("load", &s);
	assert_int_equal(s.connect_errors, 0);
	assert_int_equal(s.io_errors, 0);
	assert_int_equal(s.non200, 0);
	assert_true(s.ok > 0);
	assert_true(s.n_pids >= min_pids);
}

/* The delays of "died young ... respawn in X s" lines, in order. */
VT_HELPER int vt_respawn_delays(struct vt *v, double *out, int max)
{
	char *text = sup_read_file(v->log), *p;
	int n = 0;

	assert_non_null(text);
	for (p = text + v->mark; n < max && (p = strstr(p, "respawn in ")); p++)
		out[n++] = strtod(p + strlen("respawn in "), NULL);
	free(text);
	return n;
}

/* Sanitizer reports (ASan, UBSan, LSan) of the master or a worker land in the log. */
VT_HELPER void vt_assert_log_clean(const char *path)
{
	static const char *const bad[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
					   "runtime error:", NULL };

	for (int i = 0; bad[i]; i++)
		if (sup_count_file(path, 0, bad[i]) > 0) {
			fprintf(stderr, "%s: \"%s\" found\n", path, bad[i]);
			sup_print_tail(path, 60);
			fail();
		}
}

/* Sends sig (0: already sent) and asserts: exit 0 within ms, "stopped" logged, no
 * sanitizer report, nothing left behind. */
VT_HELPER void vt_stop(struct vt *v, int sig, int ms)
{
	char line[64];

	if (sig)
		assert_int_equal(kill(v->p->pid, sig), 0);
	if (sup_wait_exit(v->p, ms) < 0) {
		sup_print_tail(v->log, 40);
		fail();
	}
	if (!WIFEXITED(v->p->status) || WEXITSTATUS(v->p->status) != 0) {
		fprintf(stderr, "master: %s, expected exit 0\n", sup_status_str(v->p->status));
		sup_print_tail(v->log, 40);
		fail();
	}
	snprintf(line, sizeof line, "[%d]: stopped", (int)v->p->pid);
	assert_int_equal(sup_wait_file(v->log, v->mark, line, T_MS), 0);
	vt_assert_log_clean(v->log);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

#endif
