/* test_control.c — emperorctl run for real against a real emperor (started with
 * --control in the test's temp directory): status agrees with /proc, commands answer
 * once their work is done, other uids are refused, an idle client delays nobody, the
 * metrics are valid Prometheus text and their counters move, logs are reopened and
 * `top` prints a plain table without a terminal. Each emperorctl run is bounded and
 * its output (stdout and stderr) kept in a file of the temp directory. Every test
 * ends with the emperor stopped by SIGTERM (exit 0) and no process of ours left. */
#include "emperor_fixture.h"

#include "status_proto.h"
#include "version.h"

#include <ctype.h>
#include <grp.h>
#include <json-c/json.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CTL_MS 10000      /* bound of an emperorctl run that should answer at once */
#define PROMPT_MS 2500    /* "promptly": a status answer, even beside idle clients (the
			   * failure it rules out is a wait for the 5 s read timeout) */
#define NOBODY 65534

static char ctl_path[108]; /* the running test's control socket (a sun_path) */

/* ---- the emperor with a control socket ---------------------------------------------- */

/* --control <dir>/ctl.sock, then `more` (NULL-terminated, may be NULL). */
static void ctl_emperor_start(struct fixture *f, const char *const more[])
{
	const char *extra[16] = { "--control", ctl_path };
	int n = 2;

	snprintf(ctl_path, sizeof ctl_path, "%s/ctl.sock", f->dir);
	for (int i = 0; more && more[i] && n < 15; i++)
		extra[n++] = more[i];
	extra[n] = NULL;
	emperor_start(f, extra);
}

/* A vassal of `workers` hello-workers on 127.0.0.1:port, plus `keys` (top-level lines). */
static void put_ctl_vassal(struct fixture *f, const char *file, int port, int workers,
			   const char *greeting, const char *keys)
{
	char text[2048];

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: %d, exec: [%s, --greeting, %s], ready: notify, reload-mercy: 2s}\n"
		 "stop-mercy: 3s\n%s",
		 port, workers, f->worker, greeting, keys ? keys : "");
	put_file(f->vdir, file, text);
}

static void wait_ready(struct fixture *f, size_t from, const char *name)
{
	char needle[160];

	snprintf(needle, sizeof needle, " %s: ready after ", name);
	wait_line(f, from, needle);
}

/* ---- emperorctl ------------------------------------------------------------------------- */

struct ctl_run {
	int rc;          /* exit status; -1 if killed by a signal */
	long long ms;    /* from spawn to exit */
	char *out;       /* stdout and stderr, malloc'd */
};

static char *next_out_path(const struct fixture *f)
{
	static int serial;
	char name[64];

	snprintf(name, sizeof name, "ctl-%03d.out", ++serial);
	return sup_path(f->dir, name);
}

static void no_sanitizer_report_in(const char *what, const char *text)
{
	char *copy = strdup(text), *save = NULL;

	assert_non_null(copy);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "runtime error") ||
		    strstr(line, "ERROR: LeakSanitizer"))
			fail_msg("a sanitizer report in %s: %s", what, line);
	free(copy);
}

/* Runs `emperorctl --control <ctl.sock> args...`; fails the test if it has not exited
 * after timeout_ms. */
static void ctl_runv(struct fixture *f, struct ctl_run *r, int timeout_ms, char *const args[])
{
	char *argv[32], *out = next_out_path(f), *bin = sup_bin("emperorctl");
	struct sup_proc *p;
	long long t0;
	int n = 0;

	argv[n++] = bin;
	argv[n++] = "--control";
	argv[n++] = ctl_path;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	t0 = sup_now_ms();
	p = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(p);
	if (sup_wait_exit(p, timeout_ms) < 0) {
		sup_print_tail(out, 20);
		sup_proc_free(p);
		fail_msg("emperorctl %s: no exit after %d ms", args[0], timeout_ms);
	}
	r->ms = sup_now_ms() - t0;
	r->rc = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
	r->out = sup_read_file(out);
	if (!r->out)
		r->out = strdup("");
	assert_non_null(r->out);
	no_sanitizer_report_in("emperorctl's output", r->out);
	sup_proc_free(p);
	free(out), free(bin);
}

#define CTL_RUN(f, r, ...) ctl_runv(f, r, CTL_MS, (char *const[]){ __VA_ARGS__, NULL })

/* Runs emperorctl, which must exit 0: its output, malloc'd. */
static char *ctl_ok_v(struct fixture *f, char *const args[])
{
	struct ctl_run r;

	ctl_runv(f, &r, CTL_MS, args);
	if (r.rc != 0) {
		fprintf(stderr, "emperorctl %s %s: exit %d after %lld ms:\n%s", args[0],
			args[1] ? args[1] : "", r.rc, r.ms, r.out);
		free(r.out);
		fail_msg("emperorctl %s: exit status %d, expected 0", args[0], r.rc);
	}
	return r.out;
}

#define CTL_OK(f, ...) ctl_ok_v(f, (char *const[]){ __VA_ARGS__, NULL })

/* Runs emperorctl, which must exit `rc` with `needle` in its output. */
static void ctl_expect(struct fixture *f, int rc, const char *needle, char *const args[])
{
	struct ctl_run r;

	ctl_runv(f, &r, CTL_MS, args);
	if (r.rc != rc || !strstr(r.out, needle)) {
		fprintf(stderr, "emperorctl %s: exit %d, output:\n%s", args[0], r.rc, r.out);
		free(r.out);
		fail_msg("emperorctl %s: expected exit %d and \"%s\"", args[0], rc, needle);
	}
	free(r.out);
}

#define CTL_EXPECT(f, rc, needle, ...) ctl_expect(f, rc, needle, (char *const[]){ __VA_ARGS__, NULL })

/* emperorctl without our --control: it computes its socket from `dir_opt`
 * (--dir=DIR), where no emperor listens; it must exit rc with needle in its output. */
static void ctl_bare(struct fixture *f, int rc, const char *needle, const char *dir_opt)
{
	char *out = next_out_path(f), *bin = sup_bin("emperorctl"), *text;
	char *argv[] = { bin, (char *)dir_opt, "status", NULL };
	char *env[] = { "EMPEROR_CONTROL", "EMPEROR_DIR", NULL };
	struct sup_proc *p = sup_spawn(argv, env, NULL, out);

	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, CTL_MS), 0);
	text = sup_read_file(out);
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != rc || !text || !strstr(text, needle))
		fail_msg("emperorctl %s status: %s, output: %s", dir_opt, sup_status_str(p->status), text);
	sup_proc_free(p);
	free(out), free(bin), free(text);
}

static int count_in(const char *text, const char *needle)
{
	int n = 0;

	for (const char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle))
		n++;
	return n;
}

/* ---- what status says ----------------------------------------------------------------- */

struct vrow {
	char state[16];
	pid_t pid;
	int ready, total;
	unsigned restarts, reloads;
};

/* The row of vassal `name` in the `status` table: 0, or -1 if absent. */
static int status_row(const char *table, const char *name, struct vrow *row)
{
	const char *line = table;

	for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char first[300];
		int pid;
		if (sscanf(line, "%299s", first) != 1 || strcmp(first, name) != 0)
			continue;
		if (sscanf(line, "%*s %15s %d %*s %d/%d %u %u", row->state, &pid, &row->ready,
			   &row->total, &row->restarts, &row->reloads) != 6)
			return -1;
		row->pid = (pid_t)pid;
		return 0;
	}
	return -1;
}

static struct vrow must_row(const char *table, const char *name)
{
	struct vrow row;

	if (status_row(table, name, &row) < 0) {
		fprintf(stderr, "%s", table);
		fail_msg("no row for vassal %s in the status table", name);
	}
	return row;
}

struct crow {
	char kind[16];
	pid_t pid;
	char state[16];
	unsigned respawns;
};

/* The children table of `status NAME` (KIND NAME... PID STATE UPTIME RESPAWNS RSS CPU;
 * a NAME may hold spaces, so the fields are counted from the end): their number. */
static int child_rows(const char *text, struct crow *rows, int max)
{
	char *copy = strdup(text), *save = NULL;
	bool in_table = false;
	int n = 0;

	assert_non_null(copy);
	for (char *line = strtok_r(copy, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		char *tok[16], *s2 = NULL;
		int k = 0;
		if (!in_table) {
			in_table = strncmp(line, "KIND ", 5) == 0;
			continue;
		}
		for (char *t = strtok_r(line, " ", &s2); t && k < 16; t = strtok_r(NULL, " ", &s2))
			tok[k++] = t;
		assert_true(k >= 8);
		snprintf(rows[n].kind, sizeof rows[n].kind, "%s", tok[0]);
		rows[n].pid = (pid_t)atoi(tok[k - 6]);
		snprintf(rows[n].state, sizeof rows[n].state, "%s", tok[k - 5]);
		rows[n].respawns = (unsigned)atoi(tok[k - 3]);
		n++;
	}
	free(copy);
	return n;
}

/* Live direct children of parent whose command line holds needle: their number. */
static int kids_of(pid_t parent, const char *needle, pid_t *out, int max)
{
	pid_t all[256];
	int n = sup_descendants(parent, all, 256), k = 0;

	for (int i = 0; i < n && k < max; i++) {
		char *cmd;
		if (sup_pid_ppid(all[i]) != parent || !sup_pid_alive(all[i]))
			continue;
		cmd = sup_pid_cmdline(all[i]);
		if (cmd && strstr(cmd, needle))
			out[k++] = all[i];
		free(cmd);
	}
	return k;
}

static bool pid_in(pid_t pid, const pid_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return true;
	return false;
}

/* python3 (a strict JSON parser at hand) loads `json` and runs `code` on it as d:
 * what it prints, malloc'd. Fails the test if the JSON does not parse. */
static char *python_json(struct fixture *f, const char *json, const char *code)
{
	char *in = next_out_path(f), *out = next_out_path(f), prog[1024], *printed;
	char *argv[] = { "python3", "-c", prog, in, NULL };
	struct sup_proc *p;

	snprintf(prog, sizeof prog, "import json, sys\nd = json.load(open(sys.argv[1]))\n%s\n", code);
	assert_int_equal(sup_write_file(in, json), 0);
	p = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(p);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	printed = sup_read_file(out);
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
		fprintf(stderr, "JSON:\n%s\npython3:\n%s", json, printed ? printed : "");
		fail_msg("emperorctl's JSON does not parse");
	}
	sup_proc_free(p);
	free(in), free(out);
	assert_non_null(printed);
	return printed;
}

/* ---- 1. status agrees with /proc ------------------------------------------------------- */

#define ODD_FILE "q\"uo\\te.yaml" /* a vassal named q"uo\te: JSON and labels escape it */
#define ODD_NAME "q\"uo\\te"

static void test_status_agrees_with_proc(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port(), pq = free_port();
	char keys[1024], *table, *json, *printed, *text, *mule = sup_bin("examples/mule");
	struct crow kids[16];
	int n, workers = 0, mules = 0, daemons = 0;

	snprintf(keys, sizeof keys,
		 "mules: [{name: m, exec: [%s], count: 1}]\n"
		 "daemons: [{name: d, exec: [sleep, \"1000\"], stop-mercy: 1s}]\n", mule);
	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 2, "ay", keys);
	put_ctl_vassal(f, "b.yaml", pb, 1, "bee", NULL);
	put_ctl_vassal(f, ODD_FILE, pq, 1, "odd", NULL);
	wait_ready(f, 0, "a");
	wait_ready(f, 0, "b");
	wait_ready(f, 0, ODD_NAME);

	/* status: a row per vassal, its master a live child of the emperor */
	table = CTL_OK(f, "status");
	const char *names[] = { "a", "b", ODD_NAME };
	pid_t masters[3];
	for (int i = 0; i < 3; i++) {
		struct vrow row = must_row(table, names[i]);
		masters[i] = row.pid;
		assert_string_equal(row.state, "ready");
		assert_int_equal(row.pid, started_pid(f, 0, names[i]));
		assert_true(sup_pid_alive(row.pid));
		assert_int_equal(sup_pid_ppid(row.pid), f->proc->pid);
	}
	struct vrow a = must_row(table, "a");
	assert_int_equal(a.ready, 2);
	assert_int_equal(a.total, 2);
	assert_true(strstr(table, " 2/2 ") != NULL);

	/* --json status: valid JSON, the same pids */
	json = CTL_OK(f, "--json", "status");
	printed = python_json(f, json, "for v in d['vassals']: print(v['name'], v['pid'], "
				  "v['state'], v['workers_ready'], v['workers_total'])");
	for (int i = 0; i < 3; i++) {
		char want[512];
		snprintf(want, sizeof want, "%s %d ready ", names[i], (int)masters[i]);
		if (!strstr(printed, want))
			fail_msg("--json status: no \"%s\" in:\n%s", want, printed);
	}
	char want_a[64];
	snprintf(want_a, sizeof want_a, "a %d ready 2 2\n", (int)masters[0]);
	assert_non_null(strstr(printed, want_a));
	free(json), free(printed);

	/* status a: every child, a live child of a's master */
	text = CTL_OK(f, "status", "a");
	assert_non_null(strstr(text, "vassal a: ready, pid "));
	assert_non_null(strstr(text, "workers 2/2"));
	n = child_rows(text, kids, 16);
	assert_int_equal(n, 4);
	for (int i = 0; i < n; i++) {
		assert_true(kids[i].pid > 1);
		assert_true(sup_pid_alive(kids[i].pid));
		assert_int_equal(sup_pid_ppid(kids[i].pid), masters[0]);
		assert_string_equal(kids[i].state, "ready");
		workers += strcmp(kids[i].kind, "worker") == 0;
		mules += strcmp(kids[i].kind, "mule") == 0;
		daemons += strcmp(kids[i].kind, "daemon") == 0;
	}
	assert_int_equal(workers, 2);
	assert_int_equal(mules, 1);
	assert_int_equal(daemons, 1);
	pid_t serving = get_pid(pa, NULL, 0, T_MS);
	bool listed = false;
	for (int i = 0; i < n; i++)
		listed |= kids[i].pid == serving && strcmp(kids[i].kind, "worker") == 0;
	assert_true(listed);
	free(text);

	/* --json status a: valid JSON, the same children */
	json = CTL_OK(f, "--json", "status", "a");
	printed = python_json(f, json, "print(d['name'], d['pid'], d['workers']['ready'], d['workers']['total'])\n"
				  "for c in d['children']: print(c['kind'], c['pid'])");
	char want[64];
	snprintf(want, sizeof want, "a %d 2 2\n", (int)masters[0]);
	assert_non_null(strstr(printed, want));
	for (int i = 0; i < n; i++) {
		snprintf(want, sizeof want, "%.15s %d\n", kids[i].kind, (int)kids[i].pid);
		if (!strstr(printed, want))
			fail_msg("--json status a: no \"%s\" in:\n%s", want, printed);
	}
	free(json), free(printed);

	/* an odd name is escaped, not pasted, into JSON */
	json = CTL_OK(f, "--json", "status", ODD_NAME);
	printed = python_json(f, json, "print(d['name'] == 'q\"uo\\\\te', len(d['children']))");
	assert_string_equal(printed, "True 1\n");
	free(json), free(printed);

	free(table), free(mule);
	emperor_stop(f);
}

/* A vassal whose file name is not UTF-8 (Latin-1 "café"): its name is the printable
 * "caf\xE9" everywhere, and every JSON answer is valid UTF-8 (python3 decodes
 * strictly); lib/jsonout.c replaces whatever invalid byte would still reach it. */
static void test_json_is_utf8(void **state)
{
	struct fixture *f = *state;
	int port = free_port();
	char *json, *printed;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "caf\xe9.yaml", port, 1, "latin", NULL);
	wait_ready(f, 0, "caf\\xE9"); /* the log escapes the byte */
	json = CTL_OK(f, "--json", "status");
	printed = python_json(f, json, "print([v['name'] == 'caf\\\\xE9' for v in d['vassals']])");
	assert_string_equal(printed, "[True]\n");
	free(json), free(printed);
	json = CTL_OK(f, "--json", "status", "caf\\xE9");
	printed = python_json(f, json, "print(d['name'] == 'caf\\\\xE9', len(d['children']))");
	assert_string_equal(printed, "True 1\n");
	free(json), free(printed);
	emperor_stop(f);
}

/* ---- 2. commands answer once done ------------------------------------------------------ */

/* One GET right now: answered by a worker of master that is not in old. */
static void assert_new_worker(int port, pid_t master, const pid_t *old, int n_old)
{
	pid_t pid = get_pid(port, NULL, 0, T_MS);

	if (pid <= 0 || pid_in(pid, old, n_old))
		fail_msg("127.0.0.1:%d: answered by pid %d, expected a new worker", port, (int)pid);
	assert_int_equal(sup_pid_ppid(pid), master);
	for (int i = 0; i < n_old; i++)
		assert_false(sup_pid_alive(old[i]));
}

static void test_commands_answer_once_done(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port();
	pid_t ma, mb, old_a[4], old_b[4];
	int na, nb;
	char *out, *table, bad[PATH_MAX];
	size_t m;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 2, "ay", NULL);
	put_ctl_vassal(f, "b.yaml", pb, 2, "bee", NULL);
	wait_ready(f, 0, "a");
	wait_ready(f, 0, "b");
	ma = started_pid(f, 0, "a");
	mb = started_pid(f, 0, "b");

	/* reload: the answer comes once the new workers serve */
	na = kids_of(ma, "hello-worker", old_a, 4);
	assert_int_equal(na, 2);
	out = CTL_OK(f, "reload", "a");
	assert_non_null(strstr(out, "a: done"));
	assert_new_worker(pa, ma, old_a, na);
	free(out);

	/* chain-reload likewise */
	nb = kids_of(mb, "hello-worker", old_b, 4);
	assert_int_equal(nb, 2);
	out = CTL_OK(f, "chain-reload", "b");
	assert_non_null(strstr(out, "b: done"));
	assert_new_worker(pb, mb, old_b, nb);
	free(out);

	/* reload --all: both, each counted */
	na = kids_of(ma, "hello-worker", old_a, 4);
	nb = kids_of(mb, "hello-worker", old_b, 4);
	out = CTL_OK(f, "reload", "--all");
	assert_non_null(strstr(out, "a: done"));
	assert_non_null(strstr(out, "b: done"));
	assert_new_worker(pa, ma, old_a, na);
	assert_new_worker(pb, mb, old_b, nb);
	free(out);
	table = CTL_OK(f, "status");
	assert_int_equal(must_row(table, "a").reloads, 2);
	assert_int_equal(must_row(table, "b").reloads, 2);
	free(table);

	/* stop: the port refuses as soon as it answers; halted, even after SIGHUP */
	out = CTL_OK(f, "stop", "a");
	assert_non_null(strstr(out, "a: done"));
	assert_int_equal(sup_port_refused("127.0.0.1", pa, T_MS), 0);
	assert_false(sup_pid_alive(ma));
	free(out);
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "a").state, "halted");
	free(table);
	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGHUP), 0);
	wait_line(f, m, "SIGHUP: rescanning");
	wait_line(f, m, " b: reloaded (SIGHUP) in ");
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "a").state, "halted");
	assert_string_equal(must_row(table, "b").state, "ready");
	free(table);
	assert_int_equal(count_lines(f, m, " a: started (pid "), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", pa, T_MS), 0);

	/* start: serves as soon as it answers */
	m = mark(f);
	out = CTL_OK(f, "start", "a");
	assert_non_null(strstr(out, "a: done"));
	ma = started_pid(f, m, "a");
	assert_int_equal(sup_pid_ppid(get_pid(pa, NULL, 0, T_MS)), ma);
	free(out);

	/* errors: unknown vassal, unknown command, usage, no emperor there */
	CTL_EXPECT(f, 1, "no such vassal 'nope'", "reload", "nope");
	CTL_EXPECT(f, 1, "no such vassal 'nope'", "status", "nope");
	CTL_EXPECT(f, 1, "no such vassal 'nope'", "stop", "nope");
	CTL_EXPECT(f, 1, "no such vassal 'nope'", "start", "nope");
	/* usage errors are told by emperorctl itself, exit 2, before any request */
	m = mark(f);
	CTL_EXPECT(f, 2, "unknown command 'frobnicate'", "frobnicate");
	CTL_EXPECT(f, 2, "usage", "--frob", "status");
	CTL_EXPECT(f, 2, "reload takes a NAME or --all", "reload");
	CTL_EXPECT(f, 2, "status takes at most a NAME", "status", "a", "b");
	CTL_EXPECT(f, 2, "--all goes with reload and stop only", "start", "--all");
	CTL_EXPECT(f, 2, "--timeout needs a value", "status", "--timeout");
	CTL_EXPECT(f, 2, "\"abc\" is not a number", "--timeout=abc", "status");
	assert_int_equal(count_lines(f, m, "control:"), 0);
	/* --opt=VALUE anywhere on the line */
	snprintf(bad, sizeof bad, "--control=%s", ctl_path);
	free(CTL_OK(f, "status", bad, "--timeout=5"));
	snprintf(bad, sizeof bad, "%s/none.sock", f->dir);
	CTL_EXPECT(f, 3, "cannot reach the emperor", "--control", bad, "status");
	ctl_bare(f, 3, "cannot reach the emperor at /", "--dir=/");
	assert_string_equal(must_row(table = CTL_OK(f, "status"), "b").state, "ready");
	free(table);

	/* stop --all: answers once every one has stopped, and they stay stopped */
	out = CTL_OK(f, "stop", "--all");
	assert_non_null(strstr(out, "a: done"));
	assert_non_null(strstr(out, "b: done"));
	free(out);
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "a").state, "halted");
	assert_string_equal(must_row(table, "b").state, "halted");
	free(table);
	assert_int_equal(sup_port_refused("127.0.0.1", pa, T_MS), 0);
	emperor_stop(f);
}

/* A reload whose vassal goes away meanwhile, and a stop of a vassal waiting to
 * respawn: each is answered at once, and a stop sticks. */
static void test_answers_whatever_happens(void **state)
{
	struct fixture *f = *state;
	const char *more[] = { "--throttle", "1s", "--max-throttle", "1s", NULL };
	int pc = free_port(), pd = free_port();
	char *argv[8], *out = next_out_path(f), *text, *table;
	struct sup_proc *waiting;
	struct ctl_run r;
	long long t0;
	size_t m;

	ctl_emperor_start(f, more);
	/* c's workers take 3 s to be ready: a reload of c is long enough to run a status
	 * and remove c, also on a loaded machine */
	put_ctl_vassal(f, "c.yaml", pc, 1, "sea, --ready-delay, \"3000\"", NULL);
	put_ctl_vassal(f, "d.yaml", pd, 1, "dee", NULL);
	wait_ready(f, 0, "c");
	wait_ready(f, 0, "d");

	m = mark(f);
	argv[0] = sup_bin("emperorctl");
	argv[1] = "--control", argv[2] = ctl_path, argv[3] = "--timeout", argv[4] = "30";
	argv[5] = "reload", argv[6] = "c", argv[7] = NULL;
	waiting = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(waiting);
	wait_line(f, m, " c: reloading (emperorctl)");
	/* c's new image has read its file and waits for its slow worker (only c reloads) */
	wait_line(f, m, ": master started (generation 2,");
	CTL_RUN(f, &r, "status");      /* meanwhile, others are served */
	assert_int_equal(r.rc, 0);
	assert_true(r.ms < PROMPT_MS);
	free(r.out);
	remove_file(f->vdir, "c.yaml");
	t0 = sup_now_ms();
	assert_int_equal(sup_wait_exit(waiting, 5000), 0);
	printf("# reload of a removed vassal answered after %lld ms\n", sup_now_ms() - t0);
	text = sup_read_file(out);
	assert_non_null(text);
	if (!WIFEXITED(waiting->status) || WEXITSTATUS(waiting->status) != 1 ||
	    !strstr(text, "c: stopped before it was ready"))
		fail_msg("reload c: %s, output: %s", sup_status_str(waiting->status), text);
	free(text), free(out), free(argv[0]);
	sup_proc_free(waiting);

	/* d's master dies: waiting to respawn, `stop d` halts it for good */
	m = mark(f);
	assert_int_equal(kill(started_pid(f, 0, "d"), SIGKILL), 0);
	wait_line(f, m, " d: died (killed by SIGKILL)");
	text = CTL_OK(f, "stop", "d");
	assert_non_null(strstr(text, "d: was waiting to respawn; halted"));
	free(text);
	t0 = sup_now_ms();
	while (sup_now_ms() - t0 < 2000) { /* twice the throttle: it would have respawned */
		assert_int_equal(count_lines(f, m, " d: started (pid "), 0);
		sup_poll_pause();
	}
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "d").state, "halted");
	assert_int_equal(status_row(table, "c", &(struct vrow){ 0 }), -1);
	free(table);
	assert_int_equal(sup_port_refused("127.0.0.1", pd, T_MS), 0);
	text = CTL_OK(f, "start", "d");
	assert_non_null(strstr(text, "d: done"));
	assert_serves(pd, "dee", get_pid(pd, NULL, 0, T_MS));
	free(text);
	emperor_stop(f);
}

static double metric(const char *text, const char *key);

/* A new record not started yet is `queued`, not `halted`: b.yaml, renamed from a.yaml
 * whose worker ignores its stop signal, waits for a's slow stop. `stop b` then takes
 * it out for good: once a has stopped, b is not started (it used to be: the wait for
 * its predecessor outlived the stop); `start b` starts it. */
static void test_queued_until_started(void **state)
{
	struct fixture *f = *state;
	struct vassal_opts o = { .port = free_port(), .greeting = "slow", .args = ", --ignore-stop",
				 .mercy = "5s" }; /* a's stop: the window for what follows */
	char *from, *to, *table, *text;
	size_t m;

	ctl_emperor_start(f, NULL);
	put_file(f->vdir, "a.yaml", vassal_text(f, &o));
	wait_vassal(f, "a", o.port, "slow");
	m = mark(f);
	from = sup_path(f->vdir, "a.yaml");
	to = sup_path(f->vdir, "b.yaml");
	assert_int_equal(rename(from, to), 0);
	free(from), free(to);
	wait_line(f, m, " b: starts when a has stopped");
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "b").state, "queued");
	assert_string_equal(must_row(table, "a").state, "stopping");
	free(table);
	text = CTL_OK(f, "metrics");
	assert_true(metric(text, "emperor_vassals{state=\"queued\"}") == 1);
	free(text);
	text = CTL_OK(f, "stop", "b");
	assert_non_null(strstr(text, "b: not started yet; halted"));
	free(text);
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "b").state, "halted");
	free(table);

	wait_line(f, m, " a: stopped (");
	sentinel(f, m); /* a scan went by after a's record had gone */
	assert_int_equal(count_lines(f, m, " b: started (pid "), 0);
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "b").state, "halted");
	assert_int_equal(status_row(table, "a", &(struct vrow){ 0 }), -1);
	free(table);
	text = CTL_OK(f, "start", "b");
	assert_non_null(strstr(text, "b: done"));
	free(text);
	wait_serving(o.port, "slow", T_MS);
	emperor_stop(f);
}

/* ---- 3. another uid is refused ----------------------------------------------------------- */

/* fork, become nobody, then exec argv (or, without argv, connect to the control
 * socket raw and copy what it says to the log); stdout and stderr to log. Waits for
 * the exit: the exit status. */
static int run_as_nobody(const char *log, char *const argv[])
{
	pid_t pid = fork();
	long long deadline = sup_now_ms() + T_MS;
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || setgroups(0, NULL) < 0 ||
		    setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(120);
		if (argv) {
			execv(argv[0], argv);
			_exit(121);
		}
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		char buf[512];
		ssize_t n;
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", ctl_path);
		if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof sun) < 0) {
			dprintf(2, "connect: %s\n", strerror(errno));
			_exit(122);
		}
		(void)!write(s, "status\n", 7);
		while ((n = read(s, buf, sizeof buf)) > 0)
			(void)!write(1, buf, (size_t)n);
		_exit(0);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (sup_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("a process run as nobody did not exit");
		}
		sup_poll_pause();
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_other_uid_refused(void **state)
{
	struct fixture *f = *state;
	int pa = free_port();
	pid_t master, worker;
	char *log = sup_path(f->dir, "nobody.out"), *bin, *text, *table;
	size_t m;
	int rc;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 1, "ay", NULL);
	worker = wait_vassal(f, "a", pa, "ay");
	master = started_pid(f, 0, "a");
	assert_int_equal(chmod(f->dir, 0711), 0); /* nobody may reach the socket's name */
	/* nobody runs a copy: the build directory may sit where nobody cannot enter (a
	 * checkout in root's home) */
	bin = sup_copy_bin(f->dir, "emperorctl");
	assert_non_null(bin);
	assert_int_equal(chmod(bin, 0755), 0);
	char *argv[] = { bin, "--control", ctl_path, "reload", "a", NULL };

	/* the socket is 0600: connect() itself is refused */
	m = mark(f);
	rc = run_as_nobody(log, argv);
	text = sup_read_file(log);
	if (rc != 3 || !strstr(text, "Permission denied"))
		fail_msg("emperorctl as nobody, socket 0600: exit %d: %s", rc, text);
	free(text);

	/* past the file mode: the peer-credential check refuses, and says so */
	assert_int_equal(chmod(ctl_path, 0666), 0);
	rc = run_as_nobody(log, argv);
	text = sup_read_file(log);
	if (rc != 1 || !strstr(text, "refused"))
		fail_msg("emperorctl as nobody, socket 0666: exit %d: %s", rc, text);
	free(text);
	rc = run_as_nobody(log, NULL);
	text = sup_read_file(log);
	if (rc != 0 || strncmp(text, "ERR refused", 11) != 0)
		fail_msg("a raw client as nobody: exit %d, read \"%s\"", rc, text);
	free(text);
	wait_count(f, m, "control: refused a client of uid 65534", 2, T_MS);

	/* nothing happened to the emperor or to a */
	assert_int_equal(count_lines(f, m, " a: reloading"), 0);
	table = CTL_OK(f, "status");
	assert_string_equal(must_row(table, "a").state, "ready");
	assert_int_equal(must_row(table, "a").pid, master);
	free(table);
	assert_serves(pa, "ay", worker);
	free(log), free(bin);
	emperor_stop(f);
}

/* ---- 4. an idle client delays nobody ------------------------------------------------------ */

static int connect_raw(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", ctl_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	return fd;
}

static void test_idle_client_delays_nobody(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), idle[3];
	struct pollfd pfd;
	struct ctl_run r;
	long long t0, waited;
	char byte;
	ssize_t n;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 1, "ay", NULL);
	wait_vassal(f, "a", pa, "ay");

	t0 = sup_now_ms();
	for (int i = 0; i < 3; i++)
		idle[i] = connect_raw();
	for (int i = 0; i < 3; i++) {
		CTL_RUN(f, &r, i == 1 ? "metrics" : "status", i == 2 ? "a" : NULL);
		if (r.rc != 0 || r.ms >= PROMPT_MS)
			fail_msg("beside idle clients: exit %d after %lld ms:\n%s", r.rc, r.ms, r.out);
		free(r.out);
	}
	/* the idle ones are dropped after the 5 s read timeout */
	pfd = (struct pollfd){ .fd = idle[0], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, (int)(t0 + 7000 - sup_now_ms())), 1);
	waited = sup_now_ms() - t0;
	n = recv(idle[0], &byte, 1, 0);
	printf("# an idle client was dropped after %lld ms\n", waited);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	assert_true(waited >= 4500);
	for (int i = 1; i < 3; i++) {
		pfd.fd = idle[i];
		assert_int_equal(poll(&pfd, 1, 1000), 1);
		assert_int_equal(recv(idle[i], &byte, 1, 0), 0);
	}
	for (int i = 0; i < 3; i++)
		close(idle[i]);
	emperor_stop(f);
}

/* ---- 4b. caps: clients, metrics clients, masters queried at once ------------------------ */

#define MAX_CLIENTS 64        /* docs/control.md: control-socket clients at once */
#define MAX_HTTP_CLIENTS 16   /* docs/control.md: --metrics clients at once */
#define FETCH_FANOUT 8        /* docs/control.md: masters one request queries at once */

static double metric(const char *text, const char *key);
static void assert_exposition(const char *text);

/* What the control socket says to a raw client that sends line (len bytes). */
static char *raw_exchange(const char *line, size_t len)
{
	int fd = connect_raw();
	char buf[512];
	size_t got = 0;
	ssize_t n;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	/* a client over the cap may be answered and closed before it sends */
	ssize_t sent = send(fd, line, len, MSG_NOSIGNAL);
	if (sent != (ssize_t)len && !(sent < 0 && (errno == EPIPE || errno == ECONNRESET)))
		fail_msg("send to the control socket: %s", strerror(errno));
	while (got < sizeof buf - 1 && poll(&pfd, 1, PROMPT_MS) == 1 &&
	       (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	return strdup(buf);
}

static void test_clients_capped(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), mport = free_port(), idle[MAX_CLIENTS];
	char addr[64], *text;
	const char *more[] = { "--metrics", addr, NULL };
	struct sup_conn *conns[MAX_HTTP_CLIENTS];
	struct sup_http r;
	struct ctl_run run;
	long long t0, deadline;
	size_t m;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", mport);
	ctl_emperor_start(f, more);
	put_ctl_vassal(f, "a.yaml", pa, 1, "ay", NULL);
	wait_vassal(f, "a", pa, "ay");
	m = mark(f);

	/* a NUL in the request line: an error at once, not a wait for the deadline */
	t0 = sup_now_ms();
	text = raw_exchange("status\0x\n", 9);
	if (strncmp(text, "ERR a NUL byte", 14) != 0 || sup_now_ms() - t0 >= PROMPT_MS)
		fail_msg("a request with a NUL: \"%s\" after %lld ms", text, sup_now_ms() - t0);
	free(text);

	/* the cap of control clients, then an answer, not a hang, to one more */
	for (int i = 0; i < MAX_CLIENTS; i++)
		idle[i] = connect_raw();
	t0 = sup_now_ms();
	text = raw_exchange("status\n", 7);
	if (strncmp(text, "ERR busy", 8) != 0 || sup_now_ms() - t0 >= PROMPT_MS)
		fail_msg("a client over the cap: \"%s\" after %lld ms", text, sup_now_ms() - t0);
	free(text);
	CTL_EXPECT(f, 1, "busy", "status");
	wait_line(f, m, "control: 64 control-socket clients at once, the cap");
	/* one leaves: served again */
	close(idle[0]);
	deadline = sup_now_ms() + T_MS;
	do {
		CTL_RUN(f, &run, "status");
		free(run.out);
		if (run.rc != 0 && sup_now_ms() > deadline)
			fail_msg("still busy after a client left");
	} while (run.rc != 0 && (sup_poll_pause(), 1));
	for (int i = 1; i < MAX_CLIENTS; i++)
		close(idle[i]);

	/* the same over HTTP: 503 to one more than the cap, served once one left */
	for (int i = 0; i < MAX_HTTP_CLIENTS; i++) {
		conns[i] = sup_conn_open("127.0.0.1", mport, T_MS);
		assert_non_null(conns[i]);
	}
	t0 = sup_now_ms();
	assert_int_equal(sup_http_get("127.0.0.1", mport, "/metrics", &r, T_MS), 0);
	if (r.status != 503 || !strstr(r.body, "busy") || sup_now_ms() - t0 >= PROMPT_MS)
		fail_msg("a metrics client over the cap: %d \"%s\" after %lld ms", r.status, r.body,
			 sup_now_ms() - t0);
	sup_http_fini(&r);
	for (int i = 0; i < MAX_HTTP_CLIENTS; i++)
		sup_conn_close(conns[i]);
	deadline = sup_now_ms() + T_MS;
	for (;;) {
		assert_int_equal(sup_http_get("127.0.0.1", mport, "/metrics", &r, T_MS), 0);
		int status = r.status;
		sup_http_fini(&r);
		if (status == 200)
			break;
		if (sup_now_ms() > deadline)
			fail_msg("metrics still %d after the clients left", status);
		sup_poll_pause();
	}
	emperor_stop(f);
}

/* A scrape of many masters queries FETCH_FANOUT of them at a time: with every master
 * stopped (SIGSTOP: each takes the connection and never answers), the emperor holds
 * no more sockets than that, and answers at the 2 s deadline. Masters that answer
 * are all there, also past the fan-out. */
static void test_fetch_fanout_capped(void **state)
{
	struct fixture *f = *state;
	enum { N = FETCH_FANOUT + 2 };
	char file[32], name[32], key[128], keys[256], *text;
	pid_t masters[N];
	int base, most;
	struct sup_proc *p;
	char *out = next_out_path(f), *bin = sup_bin("emperorctl");
	char *argv[] = { bin, "--control", ctl_path, "metrics", NULL };

	ctl_emperor_start(f, NULL);
	snprintf(keys, sizeof keys, "daemons: [{name: d, exec: [sleep, \"1000\"], stop-mercy: 1s}]\n");
	for (int i = 0; i < N; i++) {
		snprintf(file, sizeof file, "v%d.yaml", i);
		put_file(f->vdir, file, keys);
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "v%d", i);
		wait_ready(f, 0, name);
		masters[i] = started_pid(f, 0, name);
	}
	text = CTL_OK(f, "metrics");
	assert_exposition(text);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof key, "emperor_vassal_children{vassal=\"v%d\",kind=\"daemon\"}", i);
		if (metric(text, key) != 1)
			fail_msg("no %s 1 in:\n%s", key, text);
	}
	free(text);

	base = sup_count_fds(f->proc->pid);
	for (int i = 0; i < N; i++)
		assert_int_equal(kill(masters[i], SIGSTOP), 0);
	p = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(p);
	most = base;
	for (long long deadline = sup_now_ms() + T_MS; waitpid(p->pid, &p->status, WNOHANG) == 0;) {
		int n = sup_count_fds(f->proc->pid);
		most = n > most ? n : most;
		if (sup_now_ms() > deadline)
			fail_msg("emperorctl metrics: no exit after %d ms", T_MS);
		sup_poll_pause();
	}
	p->exited = 1;
	for (int i = 0; i < N; i++)
		assert_int_equal(kill(masters[i], SIGCONT), 0);
	printf("# emperor fds: %d idle, at most %d during a scrape of %d stopped masters\n",
	       base, most, N);
	assert_int_equal(WEXITSTATUS(p->status), 0);
	assert_true(most - base <= FETCH_FANOUT + 1); /* + emperorctl's own connection */
	assert_true(most - base >= FETCH_FANOUT);     /* the scrape did ask them */
	sup_proc_free(p);
	free(out), free(bin);
	emperor_stop(f);
}

/* ---- 4c. a master's status socket held by someone else ---------------------------------- */

/* The emperor as PID 1 of a new PID namespace (unshare), so that its first master's
 * pid there is predictable (2): before it starts, the test binds that pid's status
 * name, "@emperor-vassal/2" (and a few beyond), as anyone on the host could. The
 * emperor must not take the impostor's answer for the master's. */
static void test_status_impostor_not_asked(void **state)
{
	struct fixture *f = *state;
	enum { FIRST = 2, N_NAMES = 24 };
	int names[N_NAMES], port = free_port();
	char text[512], *log_needle, *out;
	pid_t emperor = -1, master, answerer;
	struct sockaddr_un sun;

	for (int i = 0; i < N_NAMES; i++) {
		socklen_t len = status_sockaddr(FIRST + i, &sun);
		names[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(names[i] >= 0);
		if (bind(names[i], (struct sockaddr *)&sun, len) < 0 || listen(names[i], 8) < 0)
			fail_msg("bind @emperor-vassal/%d: %s", FIRST + i, strerror(errno));
	}
	snprintf(text, sizeof text, "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [%s], ready: notify}\n", port, f->worker);
	put_file(f->vdir, "v.yaml", text);
	snprintf(ctl_path, sizeof ctl_path, "%s/ctl.sock", f->dir);
	f->proc = sup_spawn((char *[]){ "unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
					f->emperor, "--control", ctl_path, f->vdir, NULL },
			    NULL, NULL, f->log);
	assert_non_null(f->proc);
	wait_ready(f, 0, "v");
	master = started_pid(f, 0, "v"); /* as the emperor sees it, in its namespace */
	if (master < FIRST || master >= FIRST + N_NAMES)
		fail_msg("the master is pid %d in the namespace, not one of %d..%d", (int)master, FIRST,
			 FIRST + N_NAMES - 1);
	wait_line(f, 0, ": status socket @emperor-vassal/");

	/* the impostor answers whoever asks, with a forged sample */
	answerer = fork();
	assert_true(answerer >= 0);
	if (answerer == 0) {
		struct pollfd pfd = { .fd = names[master - FIRST], .events = POLLIN };
		static const char forged[] = "emperor_vassal_workers_configured{vassal=\"forged\"} 99\n";
		for (int i = 0; i < 2 && poll(&pfd, 1, 5000) == 1; i++) {
			int c = accept(pfd.fd, NULL, NULL);
			(void)!write(c, forged, sizeof forged - 1);
			close(c);
		}
		_exit(0);
	}
	out = CTL_OK(f, "metrics");
	assert_exposition(out);
	if (strstr(out, "forged"))
		fail_msg("the impostor's sample reached the metrics:\n%s", out);
	free(out);
	out = CTL_OK(f, "status", "v");
	assert_non_null(strstr(out, "(the master did not answer)"));
	free(out);
	assert_true(asprintf(&log_needle, "control: @emperor-vassal/%d is held by pid 0 (uid 0), not by "
			     "its master %d: not asked", (int)master, (int)master) > 0);
	wait_count(f, 0, log_needle, 2, T_MS);
	free(log_needle);
	kill(answerer, SIGKILL);
	waitpid(answerer, NULL, 0);

	/* the emperor (PID 1 there) stops everything and exits 0, and so does unshare */
	assert_int_equal(kids_of(f->proc->pid, "emperor", &emperor, 1), 1);
	assert_int_equal(kill(emperor, SIGTERM), 0);
	assert_int_equal(sup_wait_exit(f->proc, T_MS), 0);
	assert_true(WIFEXITED(f->proc->status) && WEXITSTATUS(f->proc->status) == 0);
	for (int i = 0; i < N_NAMES; i++)
		close(names[i]);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* ---- 5. metrics ---------------------------------------------------------------------- */

/* The Prometheus text exposition format (0.0.4), strictly: what is accepted. */
struct family {
	char name[128];
	char type[16];       /* "" until its TYPE line */
	bool help, sampled, closed;
};

struct sample {
	int family;
	int suffix;          /* histogram: 0 none, 1 _bucket, 2 _sum, 3 _count */
	char key[640];       /* name{labels}, for duplicates */
	char group[512];     /* the labels but le, for a histogram's series */
	bool has_le;
	double le, value;
};

struct expo {
	struct family fam[64];
	int n_fam, current;
	struct sample *s;
	int n_s;
	char why[512];
	int line;
};

static int expo_fail(struct expo *x, const char *fmt, const char *arg)
{
	char what[400];

	snprintf(what, sizeof what, fmt, arg);
	snprintf(x->why, sizeof x->why, "line %d: %s", x->line, what);
	return -1;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (colons = metric names) at *p: its length, 0 if none. */
static size_t name_len(const char *p, bool colons)
{
	size_t k = 0;

	while (isalpha((unsigned char)p[k]) || p[k] == '_' || (colons && p[k] == ':') ||
	       (k > 0 && isdigit((unsigned char)p[k])))
		k++;
	return k;
}

static int family_of(struct expo *x, const char *name, size_t len)
{
	for (int i = 0; i < x->n_fam; i++)
		if (strlen(x->fam[i].name) == len && strncmp(x->fam[i].name, name, len) == 0)
			return i;
	if (x->n_fam == 64 || len >= sizeof x->fam[0].name)
		return -1;
	memset(&x->fam[x->n_fam], 0, sizeof x->fam[0]);
	memcpy(x->fam[x->n_fam].name, name, len);
	return x->n_fam++;
}

/* Lines of family i come now: they must be contiguous. */
static int family_enter(struct expo *x, int i)
{
	if (x->current == i)
		return 0;
	if (x->fam[i].closed)
		return expo_fail(x, "family %s is not contiguous", x->fam[i].name);
	if (x->current >= 0)
		x->fam[x->current].closed = true;
	x->current = i;
	return 0;
}

static int expo_comment(struct expo *x, const char *line)
{
	bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
	const char *name = line + 7;
	size_t len;
	int i;

	if (!help && !type)
		return expo_fail(x, "a comment that is neither HELP nor TYPE: %s", line);
	len = name_len(name, true);
	if (len == 0 || (name[len] != ' ' && (type || name[len] != '\0')))
		return expo_fail(x, "a bad metric name in %s", line);
	if ((i = family_of(x, name, len)) < 0 || family_enter(x, i) < 0)
		return -1;
	if (help) {
		if (x->fam[i].help)
			return expo_fail(x, "a second HELP for %s", x->fam[i].name);
		x->fam[i].help = true;
		return 0;
	}
	const char *t = name + len + 1;
	if (x->fam[i].type[0])
		return expo_fail(x, "a second TYPE for %s", x->fam[i].name);
	if (x->fam[i].sampled)
		return expo_fail(x, "TYPE after samples of %s", x->fam[i].name);
	if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
	    strcmp(t, "summary") && strcmp(t, "untyped"))
		return expo_fail(x, "unknown type %s", t);
	snprintf(x->fam[i].type, sizeof x->fam[i].type, "%s", t);
	if (strcmp(t, "counter") == 0 && (len < 6 || strncmp(name + len - 6, "_total", 6) != 0))
		return expo_fail(x, "a counter not named *_total: %s", x->fam[i].name);
	return 0;
}

static int parse_number(const char *p, double *out)
{
	char *end;

	if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0) {
		*out = p[0] == '+' ? INFINITY : -INFINITY;
		return 0;
	}
	if (strcmp(p, "NaN") == 0) {
		*out = NAN;
		return 0;
	}
	if (!*p || isspace((unsigned char)*p))
		return -1;
	*out = strtod(p, &end);
	return *end ? -1 : 0;
}

/* {name="value",...} at *pp (past the '{'): appended to key, and but le to group. */
static int expo_labels(struct expo *x, const char **pp, struct sample *s)
{
	const char *p = *pp;
	char seen[16][64];
	int n_seen = 0;

	while (*p != '}') {
		char value[256];
		size_t len = name_len(p, false), k = 0;
		if (len == 0 || len >= 64 || p[len] != '=' || p[len + 1] != '"')
			return expo_fail(x, "a bad label at: %.40s", p);
		for (int i = 0; i < n_seen; i++)
			if (strlen(seen[i]) == len && strncmp(seen[i], p, len) == 0)
				return expo_fail(x, "a label given twice: %.40s", p);
		if (n_seen < 16)
			snprintf(seen[n_seen++], 64, "%.*s", (int)len, p);
		const char *label = p;
		for (p += len + 2; *p != '"'; p++) {
			if (!*p || *p == '\n' || k + 2 >= sizeof value)
				return expo_fail(x, "an unterminated label value: %.40s", label);
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return expo_fail(x, "a bad escape in a label value: %.40s", label);
				value[k++] = *p++;
			}
			value[k++] = *p;
		}
		value[k] = '\0';
		p++;
		if (len == 2 && strncmp(label, "le", 2) == 0) {
			s->has_le = true;
			if (parse_number(value, &s->le) < 0)
				return expo_fail(x, "le is not a number: %s", value);
		} else {
			size_t g = strlen(s->group);
			snprintf(s->group + g, sizeof s->group - g, "%.*s\"%s\",", (int)len + 1, label, value);
		}
		size_t kl = strlen(s->key);
		snprintf(s->key + kl, sizeof s->key - kl, "%.*s\"%s\",", (int)len + 1, label, value);
		if (*p == ',' && p[1] != '}')
			p++;
		else if (*p != '}')
			return expo_fail(x, "a bad label list at: %.40s", p);
	}
	*pp = p + 1;
	return 0;
}

/* The histogram family a _bucket/_sum/_count name belongs to, if declared so. */
static int histogram_part(struct expo *x, const char *name, size_t len, int *suffix)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };

	for (int k = 0; k < 3; k++) {
		size_t sl = strlen(suffixes[k]);
		if (len <= sl || strncmp(name + len - sl, suffixes[k], sl) != 0)
			continue;
		for (int i = 0; i < x->n_fam; i++)
			if (strcmp(x->fam[i].type, "histogram") == 0 && strlen(x->fam[i].name) == len - sl &&
			    strncmp(x->fam[i].name, name, len - sl) == 0) {
				*suffix = k + 1;
				return i;
			}
	}
	*suffix = 0;
	return -1;
}

static int expo_sample(struct expo *x, const char *line)
{
	size_t len = name_len(line, true);
	struct sample *s = &x->s[x->n_s];
	const char *p = line + len;
	char value[64];
	int i;

	memset(s, 0, sizeof *s);
	if (len == 0 || len >= 128)
		return expo_fail(x, "a bad metric name: %s", line);
	if ((i = histogram_part(x, line, len, &s->suffix)) < 0 && (i = family_of(x, line, len)) < 0)
		return expo_fail(x, "too many families at %s", line);
	if (family_enter(x, i) < 0)
		return -1;
	snprintf(s->key, sizeof s->key, "%.*s{", (int)len, line);
	if (*p == '{') {
		p++;
		if (expo_labels(x, &p, s) < 0)
			return -1;
	}
	if (*p != ' ' || sscanf(p + 1, "%63s", value) != 1 || parse_number(value, &s->value) < 0)
		return expo_fail(x, "a bad sample value: %s", line);
	p += 1 + strlen(value);
	if (*p && (*p != ' ' || !p[1] || strspn(p + 1, "-0123456789") != strlen(p + 1)))
		return expo_fail(x, "garbage after the value: %s", line);
	if (s->has_le != (s->suffix == 1))
		return expo_fail(x, "le on a sample that is not a _bucket, or a _bucket without: %s", line);
	if (strcmp(x->fam[i].type, "counter") == 0 && (s->value < 0 || isnan(s->value)))
		return expo_fail(x, "a counter below 0: %s", line);
	for (int k = 0; k < x->n_s; k++)
		if (strcmp(x->s[k].key, s->key) == 0)
			return expo_fail(x, "a sample given twice: %s", line);
	s->family = i;
	x->fam[i].sampled = true;
	x->n_s++;
	return 0;
}

/* Each series of a histogram: buckets by increasing le ending at +Inf, counts not
 * decreasing, then _sum and _count, the count equal to the +Inf bucket. */
static int expo_histograms(struct expo *x)
{
	for (int a = 0; a < x->n_s; a++) {
		struct sample *first = &x->s[a];
		double last_le = -INFINITY, last_count = -1, inf_count = -1;
		int sums = 0, counts = 0, buckets = 0;
		bool done_before = false;
		if (strcmp(x->fam[first->family].type, "histogram") != 0)
			continue;
		for (int b = 0; b < a; b++)
			done_before |= x->s[b].family == first->family && strcmp(x->s[b].group, first->group) == 0;
		if (done_before)
			continue;
		x->line = 0;
		for (int b = a; b < x->n_s; b++) {
			struct sample *s = &x->s[b];
			if (s->family != first->family || strcmp(s->group, first->group) != 0)
				continue;
			if (s->suffix == 1) {
				if (sums || counts || !(s->le > last_le) || s->value < last_count)
					return expo_fail(x, "histogram series {%s}: buckets out of order", s->group);
				last_le = s->le, last_count = s->value, buckets++;
				if (isinf(s->le))
					inf_count = s->value;
			} else if (s->suffix == 2) {
				sums++;
			} else if (s->suffix == 3) {
				counts++;
				if (s->value != inf_count)
					return expo_fail(x, "histogram series {%s}: _count is not the +Inf bucket", s->group);
			} else {
				return expo_fail(x, "a histogram sample without _bucket/_sum/_count: %s", s->key);
			}
		}
		if (!buckets || !isinf(last_le) || last_le < 0 || sums != 1 || counts != 1)
			return expo_fail(x, "histogram series {%s}: no +Inf bucket, _sum or _count", first->group);
	}
	return 0;
}

/* 0 if text is valid; else -1 and the reason in why. */
static int check_exposition(const char *text, char *why, size_t len)
{
	struct expo *x = calloc(1, sizeof *x);
	char *copy = strdup(text), *line, *next;
	int rc = 0;

	assert_non_null(x), assert_non_null(copy);
	x->s = calloc(4096, sizeof *x->s);
	assert_non_null(x->s);
	x->current = -1;
	if (!*text || text[strlen(text) - 1] != '\n')
		rc = expo_fail(x, "%s", "the text does not end with a newline");
	for (line = copy; rc == 0 && *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		x->line++;
		if (!*line)
			rc = expo_fail(x, "%s", "an empty line");
		else if (x->n_s == 4096)
			rc = expo_fail(x, "%s", "too many samples");
		else
			rc = line[0] == '#' ? expo_comment(x, line) : expo_sample(x, line);
	}
	if (rc == 0)
		rc = expo_histograms(x);
	snprintf(why, len, "%s", x->why);
	free(x->s), free(x), free(copy);
	return rc;
}

static void assert_exposition(const char *text)
{
	char why[512];

	if (check_exposition(text, why, sizeof why) < 0) {
		fprintf(stderr, "%s", text);
		fail_msg("not valid Prometheus text: %s", why);
	}
}

/* The checker itself rejects what it must. */
static void test_exposition_checker(void **state)
{
	static const char *const bad[] = {
		"a_total 1",                                          /* no final newline */
		"# TYPE x counter\nx 1\n",                            /* counter not *_total */
		"# TYPE x gauge\nx 1\ny 2\nx{l=\"v\"} 3\n",           /* not contiguous */
		"# TYPE x gauge\n# TYPE x gauge\nx 1\n",              /* two TYPEs */
		"x 1\n# TYPE x gauge\n",                              /* TYPE after samples */
		"x{l=\"a\"b\"} 1\n",                                  /* unescaped quote */
		"x{l=\"v\",l=\"w\"} 1\n",                             /* label twice */
		"x{l=\"v\"} 1\nx{l=\"v\"} 2\n",                       /* sample twice */
		"9x 1\n", "x one\n", "x 1 2 3\n", "\n", "# hello\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"0.5\"} 3\n"
		"h_bucket{le=\"+Inf\"} 3\nh_sum 1\nh_count 3\n",     /* le decreasing */
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n",   /* no +Inf */
		"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",         /* no _sum */
		"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
	};
	const char *good = "# HELP a_total A.\n# TYPE a_total counter\na_total{v=\"q\\\"\\\\\\n\"} 1\n"
			   "# TYPE h histogram\nh_bucket{v=\"x\",le=\"0.5\"} 1\nh_bucket{v=\"x\",le=\"+Inf\"} 2\n"
			   "h_sum{v=\"x\"} 0.7\nh_count{v=\"x\"} 2\ng 1.5e3\nu NaN 1700000000000\n";
	char why[512];

	(void)state;
	if (check_exposition(good, why, sizeof why) < 0)
		fail_msg("the checker refuses a valid text: %s", why);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (check_exposition(bad[i], why, sizeof why) == 0)
			fail_msg("the checker accepts bad text %zu:\n%s", i, bad[i]);
}

/* The value of the sample `key` (name{labels} as printed); NAN if absent. */
static double metric(const char *text, const char *key)
{
	size_t len = strlen(key);

	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, key, len) == 0 && line[len] == ' ')
			return strtod(line + len + 1, NULL);
	return NAN;
}

static double metric_now(struct fixture *f, const char *key)
{
	char *text = CTL_OK(f, "metrics");
	double v;

	assert_exposition(text);
	v = metric(text, key);
	free(text);
	if (isnan(v))
		fail_msg("no sample %s", key);
	return v;
}

#define RELOADS_A "emperor_vassal_reload_duration_seconds_count{vassal=\"a\"}"
#define RESTARTS_A "emperor_vassal_restarts_total{vassal=\"a\"}"
#define RESPAWNS_A "emperor_vassal_worker_respawns_total{vassal=\"a\"}"

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), pb = free_port(), pq = free_port(), mport = free_port();
	char addr[64], keys[1024], *text, *mule = sup_bin("examples/mule");
	const char *more[] = { "--metrics", addr, NULL };
	pid_t master;
	struct sup_http r;
	struct sup_conn *c;
	struct ctl_run run;
	double before;
	size_t m;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", mport);
	ctl_emperor_start(f, more);
	snprintf(keys, sizeof keys, "mules: [{name: m, exec: [%s], count: 1}]\n", mule);
	put_ctl_vassal(f, "a.yaml", pa, 2, "ay", keys);
	snprintf(keys, sizeof keys, "spooler: {dir: %s/spool, exec: [\"true\"]}\n", f->dir);
	put_ctl_vassal(f, "b.yaml", pb, 1, "bee", keys);
	put_ctl_vassal(f, ODD_FILE, pq, 1, "odd", NULL);
	put_file(f->vdir, "bad.yaml", "workers: {count: many}\n");
	wait_ready(f, 0, "a");
	wait_ready(f, 0, "b");
	wait_ready(f, 0, ODD_NAME);
	wait_line(f, 0, " bad: not started");

	/* valid, with the emperor's families and every master's */
	text = CTL_OK(f, "metrics");
	assert_exposition(text);
	assert_true(metric(text, "emperor_vassals{state=\"ready\"}") == 3);
	assert_true(metric(text, "emperor_vassal_workers{vassal=\"a\"}") == 2);
	assert_true(metric(text, "emperor_build_info{version=\"" EMPEROR_VERSION "\",features=\""
			   EMPEROR_FEATURES "\"}") == 1);
	assert_true(metric(text, "process_resident_memory_bytes") > 0);
	assert_true(metric(text, "process_open_fds") > 3);
	assert_true(metric(text, "process_cpu_seconds_total") >= 0);
	assert_true(fabs(metric(text, "process_start_time_seconds") - (double)time(NULL)) < 3600);
	assert_true(metric(text, "emperor_vassal_config_error{vassal=\"a\"}") == 0);
	assert_true(metric(text, "emperor_vassal_config_error{vassal=\"bad\"}") == 1);
	assert_true(metric(text, "emperor_vassal_last_reload_timestamp_seconds{vassal=\"a\"}") == 0);
	assert_true(metric(text, "emperor_spool_queued_tasks{vassal=\"a\"}") == 0); /* no spooler */
	assert_true(metric(text, "emperor_vassal_generation{vassal=\"a\"}") == 1);
	assert_true(metric(text, "emperor_vassal_workers_configured{vassal=\"a\"}") == 2);
	assert_true(metric(text, "emperor_vassal_children{vassal=\"a\",kind=\"mule\"}") == 1);
	assert_true(metric(text, "emperor_spool_queued_tasks{vassal=\"b\"}") == 0);
	assert_true(metric(text, "emperor_vassal_restarts_total{vassal=\"q\\\"uo\\\\te\"}") == 0);
	assert_true(metric(text, "emperor_vassal_workers{vassal=\"q\\\"uo\\\\te\"}") == 1);
	free(text);

	/* a reload adds one to the histogram's count, and one to the generation; a chain
	 * reload too */
	before = metric_now(f, RELOADS_A);
	free(CTL_OK(f, "reload", "a"));
	assert_true(metric_now(f, RELOADS_A) == before + 1);
	assert_true(metric_now(f, "emperor_vassal_generation{vassal=\"a\"}") == 2);
	assert_true(fabs(metric_now(f, "emperor_vassal_last_reload_timestamp_seconds{vassal=\"a\"}") -
			 (double)time(NULL)) < 60);
	free(CTL_OK(f, "chain-reload", "a"));
	assert_true(metric_now(f, "emperor_vassal_generation{vassal=\"a\"}") == 3);

	/* the master killed and respawned: one restart */
	before = metric_now(f, RESTARTS_A);
	m = mark(f);
	assert_int_equal(kill(started_pid(f, 0, "a"), SIGKILL), 0);
	wait_line(f, m, " a: died (killed by SIGKILL)");
	master = started_pid(f, m, "a");
	wait_ready(f, m, "a");
	assert_true(metric_now(f, RESTARTS_A) == before + 1);

	assert_int_equal(sup_pid_ppid(master), f->proc->pid);

	/* over HTTP: the same text */
	assert_int_equal(sup_http_get("127.0.0.1", mport, "/metrics", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(sup_http_header(&r, "Content-Type"), "text/plain"));
	assert_exposition(r.body);
	assert_true(metric(r.body, RESTARTS_A) == 1);
	sup_http_fini(&r);

	/* a head sent in two parts is read whole before the answer */
	c = sup_conn_open("127.0.0.1", mport, T_MS);
	assert_non_null(c);
	assert_int_equal(sup_conn_send(c, "GET /metrics HTTP/1.1\r\n", 23, T_MS), 0);
	assert_int_equal(sup_conn_readable(c, 300), 0);
	assert_int_equal(sup_conn_send(c, "Host: x\r\nAccept: */*\r\n\r\n", 24, T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_exposition(r.body);
	sup_http_fini(&r);
	sup_conn_close(c);

	/* another method: 405; not HTTP: 400; each answered, then closed */
	static const char *const bad_requests[] = {
		"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", "garbage\r\n\r\n",
	};
	static const int bad_status[] = { 405, 400 };
	for (int i = 0; i < 2; i++) {
		c = sup_conn_open("127.0.0.1", mport, T_MS);
		assert_non_null(c);
		assert_int_equal(sup_conn_send(c, bad_requests[i], strlen(bad_requests[i]), T_MS), 0);
		assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
		assert_int_equal(r.status, bad_status[i]);
		assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
		sup_http_fini(&r);
		sup_conn_close(c);
	}

	/* a master that does not answer is left out after 2 s: the command answers without
	 * it (a stopped master would hold it forever without the deadline; 6 s leaves room
	 * for a loaded or sanitized run, not for a second deadline) */
	pid_t mb = started_pid(f, 0, "b");
	assert_int_equal(kill(mb, SIGSTOP), 0);
	f->stopped[f->n_stopped++] = mb;
	CTL_RUN(f, &run, "metrics");
	printf("# metrics with a stopped master: %lld ms\n", run.ms);
	assert_int_equal(run.rc, 0);
	assert_true(run.ms < 6000);
	assert_exposition(run.out);
	assert_true(isnan(metric(run.out, "emperor_vassal_workers_configured{vassal=\"b\"}")));
	assert_true(metric(run.out, "emperor_vassal_workers_configured{vassal=\"a\"}") == 2);
	free(run.out);
	CTL_RUN(f, &run, "status", "b");
	assert_int_equal(run.rc, 0);
	assert_true(run.ms < 6000);
	assert_non_null(strstr(run.out, "(the master did not answer)"));
	free(run.out);
	assert_int_equal(kill(mb, SIGCONT), 0);
	f->n_stopped--;
	free(mule);
	emperor_stop(f);
}

/* A worker killed and respawned by its master counts once, in the metrics and in
 * `status NAME`. */
static void test_worker_respawns_counted(void **state)
{
	struct fixture *f = *state;
	int pa = free_port();
	pid_t master, workers[4], again[4];
	struct crow kids[8];
	long long deadline;
	double before;
	char *text;
	int n;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 2, "ay", NULL);
	wait_ready(f, 0, "a");
	master = started_pid(f, 0, "a");

	before = metric_now(f, RESPAWNS_A);
	assert_true(before == 0);
	assert_int_equal(kids_of(master, "hello-worker", workers, 4), 2);
	assert_int_equal(kill(workers[0], SIGKILL), 0);
	deadline = sup_now_ms() + T_MS;
	while (kids_of(master, "hello-worker", again, 4) < 2 || pid_in(workers[0], again, 2)) {
		if (sup_now_ms() > deadline)
			fail_msg("worker %d was not respawned", (int)workers[0]);
		sup_poll_pause();
	}
	wait_serving(pa, "ay", T_MS);
	if (metric_now(f, RESPAWNS_A) != before + 1)
		fail_msg("%s is still %.0f after a worker was killed and respawned", RESPAWNS_A, before);
	text = CTL_OK(f, "status", "a");
	n = child_rows(text, kids, 8);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++)
		assert_int_equal(kids[i].respawns, pid_in(kids[i].pid, workers, 2) ? 0 : 1);
	free(text);
	text = CTL_OK(f, "--json", "status", "a");
	free(python_json(f, text, "assert d['workers']['respawns'] == 1, d['workers']"));
	free(text);
	emperor_stop(f);
}

/* ---- 6. reopen-logs ---------------------------------------------------------------------- */

static void test_reopen_logs(void **state)
{
	struct fixture *f = *state;
	int pa = free_port();
	char keys[PATH_MAX + 16], *log = sup_path(f->dir, "a.log"), *rotated = sup_path(f->dir, "a.log.1");
	char *text;
	size_t rotated_size;

	snprintf(keys, sizeof keys, "log: %s\n", log);
	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 1, "ay", keys);
	wait_ready(f, 0, "a");
	assert_int_equal(sup_wait_file(log, 0, "master started", T_MS), 0);

	assert_int_equal(rename(log, rotated), 0);  /* what logrotate does */
	rotated_size = sup_file_size(rotated);
	text = CTL_OK(f, "reopen-logs");
	assert_non_null(strstr(text, "asked 1 vassals"));
	assert_non_null(strstr(text, "a: done"));
	free(text);
	/* answered once the master has reopened: its line is there already */
	assert_int_equal(sup_count_file(log, 0, "log reopened"), 1);
	free(CTL_OK(f, "reload", "a"));
	assert_int_equal(sup_wait_file(log, 0, "reload complete", T_MS), 0);
	assert_int_equal(sup_count_file(rotated, rotated_size, "reload complete"), 0);
	assert_int_equal(sup_count_file(rotated, rotated_size, "log reopened"), 0);
	assert_true(sup_count_file(rotated, 0, "master started") >= 1);

	text = sup_read_file(log);
	no_sanitizer_report_in(log, text);
	free(text);
	emperor_stop(f);
	text = sup_read_file(rotated);
	no_sanitizer_report_in(rotated, text);
	free(text), free(log), free(rotated);
}

/* ---- 6b. logs ---------------------------------------------------------------------------- */

/* A worker that prints a line of its own, with no timestamp, before it becomes the
 * hello-worker (same pid: sh execs it). */
static void put_plain_printer(struct fixture *f, const char *file, int port, const char *word)
{
	char text[2048];

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [/bin/sh, -c, 'echo %s; exec \"$0\" --greeting hi', %s],"
		 " ready: notify, reload-mercy: 2s}\nstop-mercy: 3s\n", port, word, f->worker);
	put_file(f->vdir, file, text);
}

/* "YYYY-MM-DD HH:MM:SS.mmm " at the start of line. */
static bool stamped(const char *line)
{
	int y, mo, d, h, mi, s, ms, n = 0;

	return sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d.%3d %n", &y, &mo, &d, &h, &mi, &s, &ms, &n) == 7 && n == 24;
}

static void test_logs(void **state)
{
	struct fixture *f = *state;
	int pa = free_port();
	char *text, *line, *out = sup_path(f->dir, "follow.out"), *bin = sup_bin("emperorctl");
	char *argv[] = { bin, "--control", ctl_path, "logs", "a", "-f", "-n", "1", NULL };
	struct sup_proc *p;
	size_t m;

	ctl_emperor_start(f, NULL);
	put_plain_printer(f, "a.yaml", pa, "plain-words-from-a");
	wait_ready(f, 0, "a");

	/* every line kept, each with a time: the plain one given the time it arrived */
	text = CTL_OK(f, "logs", "a");
	line = strstr(text, "plain-words-from-a");
	assert_non_null(line);
	while (line > text && line[-1] != '\n')
		line--;
	assert_true(stamped(line));
	assert_non_null(strstr(text, "vassal a["));
	assert_non_null(strstr(text, "master started"));
	free(text);
	text = CTL_OK(f, "logs", "a", "-n", "2");
	assert_int_equal(count_in(text, "\n"), 2);
	free(text);
	CTL_EXPECT(f, 1, "no such vassal 'nobody'", "logs", "nobody");

	/* bounded: of 20000 lines (about 110 KiB) the last ones are kept, not all */
	put_plain_printer(f, "big.yaml", free_port(), "start-of-big; seq 1 20000");
	wait_ready(f, 0, "big");
	text = CTL_OK(f, "logs", "big");
	assert_non_null(strstr(text, " 20000\n"));
	assert_null(strstr(text, "start-of-big"));
	assert_true(count_in(text, "\n") > 2000 && count_in(text, "\n") < 10000);
	free(text);
	CTL_EXPECT(f, 2, "-f and -n go with logs only", "status", "-f");

	/* -f: the last line, then what comes, until interrupted */
	p = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(p);
	m = mark(f);
	assert_int_equal(sup_wait_file(out, 0, "\n", T_MS), 0);
	free(CTL_OK(f, "reload", "a"));
	wait_line(f, m, " a: reloaded ");
	assert_int_equal(sup_wait_file(out, 0, "plain-words-from-a", T_MS), 0); /* the new worker's */
	assert_int_equal(sup_wait_file(out, 0, "reload complete", T_MS), 0);
	assert_int_equal(sup_stop(p, SIGINT, T_MS), 0);
	assert_true(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGINT);
	sup_proc_free(p);
	text = CTL_OK(f, "status", "--json"); /* the emperor is fine after its follower left */
	assert_non_null(strstr(text, "\"name\":\"a\""));
	free(text);
	free(out), free(bin);
	emperor_stop(f);
}

/* --log-format json: every line of the emperor's stderr is one JSON object, the
 * vassals' lines too (their fields taken from our text format). */
static void test_log_format_json(void **state)
{
	struct fixture *f = *state;
	int pa = free_port(), vassal_lines = 0;
	char *text, *save = NULL;
	char *argv[] = { f->emperor, "--log-format", "json", "--control", ctl_path, f->vdir, NULL };

	snprintf(ctl_path, sizeof ctl_path, "%s/ctl.sock", f->dir);
	f->proc = sup_spawn(argv, NULL, NULL, f->log); /* emperor_start waits for a text line */
	assert_non_null(f->proc);
	wait_line(f, 0, "\"message\":\"watching ");
	put_plain_printer(f, "a.yaml", pa, "plain-words-from-a");
	wait_line(f, 0, "a: ready after ");
	wait_line(f, 0, "plain-words-from-a");
	emperor_stop(f);
	text = sup_read_file(f->log);
	assert_non_null(text);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(l), *x;
		if (!o || !json_object_is_type(o, json_type_object))
			fail_msg("not a JSON object: %s", l);
		static const char *const keys[] = { "time", "ident", "pid", "level", "message" };
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (!json_object_object_get_ex(o, keys[i], &x))
				fail_msg("no %s in %s", keys[i], l);
		if (json_object_object_get_ex(o, "vassal", &x) && strcmp(json_object_get_string(x), "a") == 0)
			vassal_lines++;
		json_object_put(o);
	}
	assert_true(vassal_lines >= 3);
	free(text);
}

/* ---- 7. top ---------------------------------------------------------------------------- */

static void test_top_without_tty(void **state)
{
	struct fixture *f = *state;
	int pa = free_port();
	struct ctl_run r;

	ctl_emperor_start(f, NULL);
	put_ctl_vassal(f, "a.yaml", pa, 1, "ay", NULL);
	wait_ready(f, 0, "a");

	for (int form = 0; form < 2; form++) {
		if (form == 0)
			ctl_runv(f, &r, 5000, (char *const[]){ "top", "--iterations", "2", NULL });
		else
			ctl_runv(f, &r, 5000, (char *const[]){ "--iterations", "2", "top", NULL });
		if (r.rc != 0 || count_in(r.out, "emperorctl top ") != 2 || count_in(r.out, "\nVASSAL ") != 2 ||
		    count_in(r.out, "\na ") != 2 || count_in(r.out, " ready ") != 2 || strchr(r.out, '\033'))
			fail_msg("top --iterations 2: exit %d, output:\n%s", r.rc, r.out);
		free(r.out);
	}
	emperor_stop(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_status_agrees_with_proc),
		TEST(test_json_is_utf8),
		TEST(test_commands_answer_once_done),
		TEST(test_answers_whatever_happens),
		TEST(test_queued_until_started),
		TEST(test_other_uid_refused),
		TEST(test_idle_client_delays_nobody),
		TEST(test_clients_capped),
		TEST(test_fetch_fanout_capped),
		TEST(test_status_impostor_not_asked),
		cmocka_unit_test(test_exposition_checker),
		TEST(test_metrics),
		TEST(test_worker_respawns_counted),
		TEST(test_reopen_logs),
		TEST(test_logs),
		TEST(test_log_format_json),
		TEST(test_top_without_tty),
	};

	sup_init();
	if (getenv("EMPEROR_TEST_FILTER"))
		cmocka_set_test_filter(getenv("EMPEROR_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
