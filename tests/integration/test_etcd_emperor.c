/* test_etcd_emperor.c — emperors fed by a real etcd (one member, loopback): three
 * emperors with different --node names, each on its own directory, run the keys of
 * PREFIX/vassals/all/ and of their own PREFIX/vassals/NODE/ as vassals (put, change,
 * touch, delete, a bad value), publish their vassals' status under
 * PREFIX/status/NODE/, answer `emperorctl cluster --json`; an etcd outage disturbs
 * no vassal, and a node that missed a delete (stopped while etcd was restarted and
 * compacted) stops the vassal after its resync; an emperor started while etcd is
 * down runs its mirror, and keeps its etcd-fed vassals across SIGUSR2; it signs in
 * (user and password file) and speaks TLS with a client certificate; with three etcd
 * members, the leader's death disturbs no vassal and the watch goes on; 1,000 keys at
 * once all start. The test speaks to etcd through its JSON gateway with libcurl. Each
 * test has its own key prefix. ETCD_EMPEROR_FIGURES=1 runs, instead of the tests, a
 * measurement of put → serving on three nodes (docs/cluster.md's figures come from
 * the bench's W7, bench/cluster.py). */
#include "emperor_fixture.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "etcd.h"
#include "util.h"

#define N_NODES 3
#define LONG_MS 120000      /* bound of the 1,000 vassals' start (2-core machine) */
#define COUNT_PAUSE_MS 20   /* between two counts of a long log: reading it costs */

/* The emperors of a test, each on its own directory, control socket and mirror. */
struct cluster {
	char prefix[32];
	struct fixture *node[N_NODES];
	char name[N_NODES][16];
	int n;
	struct sup_load *load;   /* a test's load on a vassal: a failed test's is stopped and
				  * joined by test_teardown */
};

static struct sup_etcd *etcd;
static CURL *curl;
static struct cluster *current;  /* what a failed test leaves to its teardown */
static struct sup_etcd *shared;  /* while a test runs its own etcd in `etcd` */
static int via;                  /* the member the test's requests go to */
static long post_timeout_ms = 5000;

/* ---- etcd through its JSON gateway ----------------------------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct strbuf *b = arg;

	strbuf_append(b, p, size * n);
	return size * n;
}

/* POST path with body; the answer parsed (NULL on a transport error). */
static struct json_object *etcd_post(const char *path, struct json_object *body)
{
	struct strbuf out = { 0 };
	char url[256];
	struct json_object *answer = NULL;
	long status = 0;

	snprintf(url, sizeof url, "%s%s", etcd->endpoints[via], path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_object_to_json_string(body));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, post_timeout_ms);
	if (curl_easy_perform(curl) == CURLE_OK &&
	    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200 &&
	    out.p)
		answer = json_tokener_parse(out.p);
	if (!answer)
		fprintf(stderr, "etcd %s: HTTP %ld: %s\n", path, status, out.p ? out.p : "");
	strbuf_free(&out);
	json_object_put(body);
	return answer;
}

static struct json_object *b64(const char *s, size_t len)
{
	char *enc = etcd_b64_encode(s, len);
	struct json_object *o = json_object_new_string(enc);

	free(enc);
	return o;
}

static int64_t header_revision(struct json_object *answer)
{
	struct json_object *h, *rev;

	if (!answer || !json_object_object_get_ex(answer, "header", &h) ||
	    !json_object_object_get_ex(h, "revision", &rev))
		return -1;
	return json_object_get_int64(rev);
}

/* Puts value at key; the store's revision after it. */
static int64_t kv_put(const char *key, const char *value)
{
	struct json_object *body = json_object_new_object(), *answer;
	int64_t rev;

	json_object_object_add(body, "key", b64(key, strlen(key)));
	json_object_object_add(body, "value", b64(value, strlen(value)));
	answer = etcd_post("/v3/kv/put", body);
	rev = header_revision(answer);
	json_object_put(answer);
	assert_true(rev > 0);
	return rev;
}

/* Puts value at key, again and again while the cluster has no leader; when it took. */
static long long kv_put_retry(const char *key, const char *value, int ms)
{
	long long deadline = sup_now_ms() + ms;

	post_timeout_ms = 1000; /* a put waiting on a dead leader is dropped, not waited for */
	for (;;) {
		struct json_object *body = json_object_new_object(), *answer;
		json_object_object_add(body, "key", b64(key, strlen(key)));
		json_object_object_add(body, "value", b64(value, strlen(value)));
		answer = etcd_post("/v3/kv/put", body);
		int64_t rev = header_revision(answer);
		json_object_put(answer);
		if (rev > 0) {
			post_timeout_ms = 5000;
			return sup_now_ms();
		}
		if (sup_now_ms() > deadline) {
			post_timeout_ms = 5000;
			fail_msg("put %s: not taken in %d ms", key, ms);
		}
		sup_poll_pause();
	}
}

/* Deletes key (every key under it with prefix); the revision after. */
static int64_t kv_del(const char *key, bool prefix)
{
	struct json_object *body = json_object_new_object(), *answer;
	size_t end_len;
	char *end = etcd_prefix_end(key, strlen(key), &end_len);
	int64_t rev;

	json_object_object_add(body, "key", b64(key, strlen(key)));
	if (prefix)
		json_object_object_add(body, "range_end", b64(end, end_len));
	free(end);
	answer = etcd_post("/v3/kv/deleterange", body);
	rev = header_revision(answer);
	json_object_put(answer);
	assert_true(rev > 0);
	return rev;
}

static void kv_compact(int64_t rev)
{
	struct json_object *body = json_object_new_object(), *answer;

	json_object_object_add(body, "revision", json_object_new_int64(rev));
	json_object_object_add(body, "physical", json_object_new_boolean(1));
	answer = etcd_post("/v3/kv/compaction", body);
	assert_non_null(answer);
	json_object_put(answer);
}

/* The value of key (malloc'd), NULL if absent. */
static char *kv_get(const char *key)
{
	struct json_object *body = json_object_new_object(), *answer, *kvs, *v;
	char *value = NULL;
	size_t len;

	json_object_object_add(body, "key", b64(key, strlen(key)));
	answer = etcd_post("/v3/kv/range", body);
	if (answer && json_object_object_get_ex(answer, "kvs", &kvs) &&
	    json_object_array_length(kvs) == 1 &&
	    json_object_object_get_ex(json_object_array_get_idx(kvs, 0), "value", &v))
		value = etcd_b64_decode(json_object_get_string(v), strlen(json_object_get_string(v)), &len);
	json_object_put(answer);
	return value;
}

/* ---- nodes -------------------------------------------------------------------------------- */


static void cluster_start(struct cluster *c, const char *prefix, int n)
{
	memset(c, 0, sizeof *c);
	current = c;
	snprintf(c->prefix, sizeof c->prefix, "%s", prefix);
	c->n = n;
	for (int i = 0; i < n; i++) {
		void *state;
		snprintf(c->name[i], sizeof c->name[i], "node-%c", 'a' + i);
		assert_int_equal(setup(&state), 0);
		c->node[i] = state;
		const char *extra[] = { "--etcd", etcd->endpoints[0], "--etcd-prefix", prefix,
					"--node", c->name[i], NULL };
		emperor_start(c->node[i], extra);
	}
	for (int i = 0; i < n; i++)
		wait_line(c->node[i], 0, "etcd: vassal keys read: ");
}

/* The fixture's teardown without its wait for no leftovers (etcd runs on). */
static void node_free(struct fixture *f)
{
	for (int i = 0; i < f->n_stopped; i++)
		kill(f->stopped[i], SIGCONT);
	if (f->proc && !f->proc->exited)
		sup_print_tail(f->log, 60);
	sup_proc_free(f->proc);
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", f->dir);
	else
		sup_rmtree(f->dir);
	free(f->dir), free(f->vdir), free(f->vdir_real), free(f->log);
	free(f->worker), free(f->emperor), free(f);
}

/* The descendants of ours that are not etcd: none once every emperor has stopped. */
static int others_left(void)
{
	pid_t pids[256];
	int n = sup_descendants(getpid(), pids, 256), others = 0;

	for (int i = 0; i < n; i++) {
		bool is_etcd = false;
		for (int m = 0; m < etcd->n; m++)
			is_etcd |= etcd->m[m].proc && etcd->m[m].proc->pid == pids[i];
		for (int m = 0; shared && m < shared->n; m++)
			is_etcd |= shared->m[m].proc && shared->m[m].proc->pid == pids[i];
		others += !is_etcd && sup_pid_alive(pids[i]);
	}
	return others;
}

/* SIGTERM to every emperor: each exits 0, nothing of theirs is left, clean logs. */
static void cluster_stop(struct cluster *c)
{
	long long deadline = sup_now_ms() + T_MS;

	for (int i = 0; i < c->n; i++) {
		assert_int_equal(sup_stop(c->node[i]->proc, SIGTERM, T_MS), 0);
		assert_exited_0(c->node[i]);
		assert_no_sanitizer_report(c->node[i]);
	}
	while (others_left() > 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	assert_int_equal(others_left(), 0);
	for (int i = 0; i < c->n; i++)
		node_free(c->node[i]);
	c->n = 0;
	current = NULL;
}

static void own_etcd_stop(void);

/* After a failed test: every emperor SIGKILLed (its vassals see EOF and stop). */
static int test_teardown(void **state)
{
	long long deadline = sup_now_ms() + T_MS;

	(void)state;
	if (current && current->load) {
		sup_load_stop(current->load, NULL);
		current->load = NULL;
	}
	for (int i = 0; current && i < current->n; i++)
		if (current->node[i])
			node_free(current->node[i]);
	current = NULL;
	if (shared)
		own_etcd_stop();
	while (others_left() > 0 && sup_now_ms() < deadline)
		sup_poll_pause();
	return 0;
}

static void key_of(const struct cluster *c, const char *layer, const char *file, char *out,
		   size_t len)
{
	snprintf(out, len, "%s/vassals/%s/%s", c->prefix, layer, file);
}

static void put_key(const struct cluster *c, const char *layer, const char *file, const char *text)
{
	char key[256];

	key_of(c, layer, file, key, sizeof key);
	kv_put(key, text);
}

/* A vassal of one hello-worker on the unix socket <node dir>/NAME.sock (relative to
 * the mirror, which is <node dir>/control.etcd), so that every node can run it. */
static const char *unix_vassal(const char *name, const char *greeting)
{
	static char text[1024];
	char *worker = sup_bin("examples/hello-worker");

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"unix:../%s.sock\"}]\n"
		 "workers: {count: 1, exec: [%s, --greeting, %s], ready: notify}\n"
		 "stop-mercy: 3s\n", name, worker, greeting);
	free(worker);
	return text;
}

static const char *tcp_vassal(int port, const char *greeting)
{
	static char text[1024];
	char *worker = sup_bin("examples/hello-worker");

	snprintf(text, sizeof text,
		 "sockets: [{name: http, listen: \"127.0.0.1:%d\"}]\n"
		 "workers: {count: 1, exec: [%s, --greeting, %s], ready: notify}\n"
		 "stop-mercy: 3s\n", port, worker, greeting);
	free(worker);
	return text;
}

/* One GET / on a node's NAME.sock: the worker's pid if it answered greeting, else -1. */
static pid_t unix_get(const struct fixture *f, const char *name, const char *greeting)
{
	char sock[PATH_MAX], want[64];
	struct sup_http r;
	pid_t pid = -1;

	snprintf(sock, sizeof sock, "%s/%s.sock", f->dir, name);
	snprintf(want, sizeof want, "%s from pid ", greeting);
	sup_net_quiet(1);
	if (sup_http_get_unix(sock, "/", &r, 1000) == 0) {
		if (r.status == 200 && r.body && starts_with(r.body, want))
			pid = (pid_t)atol(r.body + strlen(want));
		sup_http_fini(&r);
	}
	sup_net_quiet(0);
	return pid;
}

static pid_t wait_unix_serving(const struct fixture *f, const char *name, const char *greeting)
{
	long long deadline = sup_now_ms() + T_MS;
	pid_t pid;

	while ((pid = unix_get(f, name, greeting)) < 0) {
		if (sup_now_ms() > deadline) {
			sup_print_tail(f->log, 30);
			fail_msg("%s/%s.sock does not serve \"%s\"", f->dir, name, greeting);
		}
		sup_poll_pause();
	}
	return pid;
}

static void wait_line_n(struct fixture *f, size_t from, const char *needle, int n, int ms)
{
	long long deadline = sup_now_ms() + ms;

	int have;

	while ((have = count_lines(f, from, needle)) < n) {
		if (sup_now_ms() > deadline) {
			sup_print_tail(f->log, 30);
			fail_msg("%d \"%s\" in the log after %d ms, expected %d", have, needle, ms, n);
		}
		nanosleep(&(struct timespec){ 0, COUNT_PAUSE_MS * 1000000L }, NULL);
	}
}

/* A file's whole content (a /proc file has no size), malloc'd. */
static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = malloc(65536);
	ssize_t n;

	assert_true(fd >= 0 && buf);
	*len = 0;
	while (*len < 65536 && (n = read(fd, buf + *len, 65536 - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	return buf;
}

/* Whether a NUL-separated list (an environ) holds entry. */
static bool has_entry(const char *list, size_t len, const char *entry)
{
	for (size_t off = 0; off < len; off += strnlen(list + off, len - off) + 1)
		if (strncmp(list + off, entry, len - off) == 0)
			return true;
	return false;
}

static bool mirror_has(const struct fixture *f, const char *file)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/control.etcd/%s", f->dir, file);
	return access(path, F_OK) == 0;
}

/* `emperorctl --control <node>/control.sock cluster --json`, parsed. */
static struct json_object *cluster_json(const struct fixture *f)
{
	char *bin = sup_bin("emperorctl"), *out = sup_path(f->dir, "cluster.out");
	char *sock = sup_path(f->dir, "control.sock");
	char *argv[] = { bin, "--control", sock, "cluster", "--json", NULL };
	struct json_object *o = NULL;
	struct sup_proc *p;

	unlink(out);
	p = sup_spawn(argv, NULL, NULL, out);
	assert_non_null(p);
	if (sup_wait_exit(p, T_MS) == 0 && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0) {
		char *text = sup_read_file(out);
		o = text ? json_tokener_parse(text) : NULL;
		free(text);
	}
	sup_proc_free(p);
	free(bin), free(out), free(sock);
	return o;
}

/* The vassals `cluster --json` shows for node in state (NULL: any state). */
static int cluster_count(struct json_object *o, const char *node, const char *state)
{
	struct json_object *nodes, *list;
	int n = 0;

	if (!o || !json_object_object_get_ex(o, "nodes", &nodes) ||
	    !json_object_object_get_ex(nodes, node, &list))
		return 0;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *st;
		if (!state || (json_object_object_get_ex(json_object_array_get_idx(list, i), "state", &st) &&
			       strcmp(json_object_get_string(st), state) == 0))
			n++;
	}
	return n;
}

/* Until `cluster --json` shows `want` vassals ready on node. */
static void wait_cluster(const struct fixture *f, const char *node, int want, int ms)
{
	long long deadline = sup_now_ms() + ms;
	int n = -1;

	for (;;) {
		struct json_object *o = cluster_json(f);
		n = cluster_count(o, node, "ready");
		json_object_put(o);
		if (n == want)
			return;
		if (sup_now_ms() > deadline)
			fail_msg("cluster --json: %d vassals ready on %s, expected %d", n, node, want);
		sup_poll_pause();
	}
}

/* The masters know the etcd for their legions (vassal/legion.c). */
static void assert_master_env(pid_t master, const char *prefix)
{
	char path[64], want[128], *env;
	size_t len;

	snprintf(path, sizeof path, "/proc/%d/environ", (int)master);
	env = read_all(path, &len);
	snprintf(want, sizeof want, "EMPEROR_ETCD_PREFIX=%s", prefix);
	assert_true(has_entry(env, len, want));
	snprintf(want, sizeof want, "EMPEROR_ETCD=%s", etcd->endpoints[0]);
	assert_true(has_entry(env, len, want));
	free(env);
}

/* On node-c a file of its directory wins over a key of the same name. */
static void local_file_wins(struct cluster *c)
{
	put_file(c->node[2]->vdir, "local.yml", unix_vassal("local", "from-file"));
	wait_unix_serving(c->node[2], "local", "from-file");
	put_key(c, "all", "local.yaml", unix_vassal("local", "from-etcd"));
	wait_unix_serving(c->node[0], "local", "from-etcd");
	wait_line(c->node[2], 0, "local: the etcd key is shadowed by the file ");
	assert_true(unix_get(c->node[2], "local", "from-file") > 0);
	assert_int_equal(count_lines(c->node[2], 0, " local: started (pid "), 1);
}

/* Until node i's status key of name holds want (its JSON, as put); the key. */
static char *wait_status_has(const struct cluster *c, int i, const char *name, const char *want)
{
	char key[128], *status = NULL;
	long long deadline = sup_now_ms() + T_MS;

	snprintf(key, sizeof key, "%s/status/%s/%s", c->prefix, c->name[i], name);
	while (sup_now_ms() < deadline && (!status || !strstr(status, want))) {
		free(status);
		status = kv_get(key);
		sup_poll_pause();
	}
	if (!status || !strstr(status, want))
		fail_msg("%s: %s, not %s", key, status ? status : "(none)", want);
	return status;
}

/* Until node i's status key of name says ready with error (file:line:col). */
static void wait_status_error(const struct cluster *c, int i, const char *name, const char *error)
{
	char *status = wait_status_has(c, i, name, error);

	if (!strstr(status, "\"state\":\"ready\""))
		fail_msg("%s/status/%s/%s: %s", c->prefix, c->name[i], name, status);
	free(status);
}

/* ---- the tests ------------------------------------------------------------------------------ */

/* all/ reaches every node, NODE/ only that one and wins over all/; change, touch, a bad
 * value and delete behave as a file's would; the status keys and `cluster` show it. */
static void test_keys_reach_their_nodes(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	pid_t master[N_NODES], worker[N_NODES];
	size_t m[N_NODES];

	(void)state;
	cluster_start(&c, "/t1", N_NODES);
	put_key(&c, "all", "hello.yaml", unix_vassal("hello", "hello"));
	for (int i = 0; i < N_NODES; i++) {
		master[i] = started_pid(c.node[i], 0, "hello");
		wait_unix_serving(c.node[i], "hello", "hello");
	}
	free(wait_status_has(&c, 0, "hello", "\"generation\":1,"));
	assert_master_env(master[0], "/t1");
	local_file_wins(&c);
	/* node-b's own key: node-b only */
	put_key(&c, c.name[1], "only.yaml", unix_vassal("only", "only"));
	wait_unix_serving(c.node[1], "only", "only");
	assert_false(mirror_has(c.node[0], "only.yaml"));
	assert_false(mirror_has(c.node[2], "only.yaml"));
	/* node-b's hello wins over all/hello: a validated reload, same master */
	put_key(&c, c.name[1], "hello.yaml", unix_vassal("hello", "bonjour"));
	wait_unix_serving(c.node[1], "hello", "bonjour");
	/* a change of all/: the others reload, node-b keeps its own */
	for (int i = 0; i < N_NODES; i++)
		m[i] = mark(c.node[i]);
	put_key(&c, "all", "hello.yaml", unix_vassal("hello", "hola"));
	for (int i = 0; i < N_NODES; i += 2) {
		wait_line(c.node[i], m[i], " hello: reloaded (changed)");
		worker[i] = wait_unix_serving(c.node[i], "hello", "hola");
	}
	/* the same value again: a touch */
	put_key(&c, "all", "hello.yaml", unix_vassal("hello", "hola"));
	for (int i = 0; i < N_NODES; i += 2) {
		wait_line(c.node[i], m[i], " hello: reloading (touched)");
		wait_line_n(c.node[i], m[i], " hello: reloaded (touched)", 1, T_MS);
		assert_true(wait_unix_serving(c.node[i], "hello", "hola") != worker[i]);
	}
	/* a bad value: reported in the status key, nothing stops */
	put_key(&c, "all", "hello.yaml", "sockets: [\n");
	for (int i = 0; i < N_NODES; i += 2)
		wait_line(c.node[i], m[i], " hello: keeps running its previous config");
	for (int i = 0; i < N_NODES; i++) {
		assert_int_equal(count_lines(c.node[i], 0, " hello: started (pid "), 1);
		assert_true(unix_get(c.node[i], "hello", i == 1 ? "bonjour" : "hola") > 0);
		assert_true(sup_pid_alive(master[i]));
	}
	wait_status_error(&c, 0, "hello", "hello.yaml:2:1: ");
	/* the masters' generations: changed then touched on a and c, changed on b */
	free(wait_status_has(&c, 0, "hello", "\"generation\":3,"));
	free(wait_status_has(&c, 2, "hello", "\"generation\":3,"));
	free(wait_status_has(&c, 1, "hello", "\"generation\":2,"));
	/* every node's vassals from any node */
	wait_cluster(c.node[2], c.name[0], 2, T_MS);  /* hello, local */
	wait_cluster(c.node[2], c.name[1], 3, T_MS);  /* hello, local, only */
	wait_cluster(c.node[2], c.name[2], 2, T_MS);  /* hello, local (its file) */
	/* a bad key name is reported and never written */
	put_key(&c, "all", "bad name.yaml", unix_vassal("bad", "bad"));
	wait_line(c.node[0], m[0], "etcd: key /t1/vassals/all/bad name.yaml refused: ");
	/* delete: all/ stops on a and c; node-b's own goes when its key goes */
	kv_del("/t1/vassals/all/hello.yaml", false);
	for (int i = 0; i < N_NODES; i += 2)
		wait_line(c.node[i], m[i], " hello: stopped (");
	kv_del("/t1/vassals/node-b/", true);
	wait_line(c.node[1], m[1], " only: stopped (");
	wait_line(c.node[1], m[1], " hello: stopped (");
	assert_int_equal(count_lines(c.node[1], 0, " hello: stopped ("), 1);
	cluster_stop(&c);
}

/* etcd killed and started again: no vassal is disturbed, one line per change of state.
 * A node that could not see a delete (stopped while etcd restarted, then the history
 * compacted) resyncs and stops the vassal. */
static void test_outage_and_resync(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	struct sup_load_stats st;
	int port = free_port();
	pid_t master;
	size_t m[2];

	(void)state;
	cluster_start(&c, "/t2", 2);
	put_key(&c, c.name[0], "web.yaml", tcp_vassal(port, "web"));
	put_key(&c, "all", "gone.yaml", unix_vassal("gone", "gone"));
	master = started_pid(c.node[0], 0, "web");
	wait_serving(port, "web", T_MS);
	for (int i = 0; i < 2; i++)
		wait_unix_serving(c.node[i], "gone", "gone");
	struct sup_load *load = c.load = sup_load_start("127.0.0.1", port, "/");
	assert_non_null(load);
	assert_int_equal(sup_load_wait_ok(load, 20, T_MS), 0);
	/* the outage: watched for 2 s, the client retrying meanwhile */
	m[0] = mark(c.node[0]);
	assert_int_equal(sup_etcd_kill(etcd, 0), 0);
	wait_line(c.node[0], m[0], "etcd: no endpoint answers");
	for (long long end = sup_now_ms() + 2000; sup_now_ms() < end;) {
		sup_load_snapshot(load, &st);
		assert_int_equal(st.non200 + st.connect_errors + st.io_errors, 0);
		sup_poll_pause();
	}
	assert_int_equal(sup_etcd_restart(etcd, 0, 1), 0);
	wait_line(c.node[0], m[0], "etcd: reconnected to ");
	/* one line per change of state, not per retry */
	assert_int_equal(count_lines(c.node[0], m[0], "etcd: no endpoint answers"), 1);
	assert_int_equal(count_lines(c.node[0], m[0], "etcd: lost "), 1);
	/* a node misses a delete: stopped across a restart of etcd and a compaction */
	m[1] = mark(c.node[1]);
	assert_int_equal(kill(c.node[1]->proc->pid, SIGSTOP), 0);
	c.node[1]->stopped[c.node[1]->n_stopped++] = c.node[1]->proc->pid;
	assert_int_equal(sup_etcd_kill(etcd, 0), 0);
	assert_int_equal(sup_etcd_restart(etcd, 0, 1), 0);
	kv_del("/t2/vassals/all/gone.yaml", false);
	kv_compact(kv_put("/t2/other", "x"));
	wait_line(c.node[0], m[0], " gone: stopped (");
	assert_int_equal(kill(c.node[1]->proc->pid, SIGCONT), 0);
	c.node[1]->n_stopped = 0;
	wait_line(c.node[1], m[1], "lost events (");
	wait_line(c.node[1], m[1], "etcd: vassal keys read");
	wait_line(c.node[1], m[1], " gone: stopped (");
	assert_false(mirror_has(c.node[1], "gone.yaml"));
	/* web never noticed */
	sup_load_stop(load, &st);
	c.load = NULL;
	sup_load_print("web during the outages", &st);
	assert_int_equal(st.non200 + st.connect_errors + st.io_errors, 0);
	assert_true(sup_pid_alive(master));
	assert_int_equal(count_lines(c.node[0], 0, " web: started (pid "), 1);
	assert_int_equal(count_lines(c.node[0], 0, " web: reloading"), 0);
	assert_int_equal(count_lines(c.node[0], 0, " web: stopping"), 0);
	cluster_stop(&c);
}

/* An emperor started while etcd is down runs what its mirror holds; when etcd is
 * back, the read finds the same values and reloads nothing. An upgrade (SIGUSR2)
 * keeps the vassal as an etcd-fed one. */
static void test_restart_while_etcd_down(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	const char *extra[] = { "--etcd", etcd->endpoints[0], "--etcd-prefix", "/t5",
				"--node", "node-a", NULL };
	struct fixture *f;
	size_t m;

	(void)state;
	cluster_start(&c, "/t5", 1);
	f = c.node[0];
	put_key(&c, "all", "kept.yaml", unix_vassal("kept", "kept"));
	wait_unix_serving(f, "kept", "kept");
	assert_int_equal(sup_stop(f->proc, SIGTERM, T_MS), 0);
	assert_exited_0(f);
	sup_proc_free(f->proc);
	f->proc = NULL;
	assert_int_equal(sup_etcd_kill(etcd, 0), 0);
	emperor_start(f, extra);
	wait_line(f, 0, "etcd: cannot read /t5/vassals/ (");
	pid_t worker = wait_unix_serving(f, "kept", "kept");
	m = mark(f);
	assert_int_equal(sup_etcd_restart(etcd, 0, 1), 0);
	wait_line(f, m, "etcd: vassal keys read again: 1 for node node-a");
	wait_line(f, m, "etcd: publishing vassal status under /t5/status/node-a/");
	assert_int_equal(unix_get(f, "kept", "kept"), worker);
	assert_int_equal(count_lines(f, 0, " kept: reloading"), 0);
	assert_int_equal(count_lines(f, 0, "etcd: cannot read"), 1);
	/* SIGUSR2: the new image adopts it as an etcd-fed vassal, from the mirror */
	m = mark(f);
	assert_int_equal(kill(f->proc->pid, SIGUSR2), 0);
	wait_line(f, m, "upgrade: kept kept.yaml (pid ");
	wait_line(f, m, "etcd: vassal keys read: 1 for node node-a");
	put_key(&c, "all", "kept.yaml", unix_vassal("kept", "still"));
	wait_unix_serving(f, "kept", "still");
	assert_int_equal(count_lines(f, m, " kept: stopping"), 0);
	assert_int_equal(count_lines(f, m, " kept: reloading (changed)"), 1);
	cluster_stop(&c);
}

/* A test's own etcd in `etcd`, the shared one kept aside (test_teardown restores it). */
static void own_etcd(const struct sup_etcd_opts *o)
{
	shared = etcd;
	etcd = sup_etcd_start(o);
	if (!etcd) {
		etcd = shared;
		shared = NULL;
		fail_msg("etcd did not start");
	}
}

static void own_etcd_stop(void)
{
	via = 0;
	sup_etcd_stop(etcd);
	etcd = shared;
	shared = NULL;
}

/* A cluster of one node, node-a, not started yet. */
static struct fixture *one_node(struct cluster *c)
{
	void *st;

	assert_int_equal(setup(&st), 0);
	memset(c, 0, sizeof *c);
	c->node[0] = st, c->n = 1, current = c;
	snprintf(c->name[0], sizeof c->name[0], "node-a");
	return st;
}

/* etcd with authentication: the emperor signs in with --etcd-user and the password
 * from --etcd-password-file, reads the keys and publishes its status; a wrong
 * password is said in its log. */
static void test_auth(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	struct sup_etcd_opts o = { .members = 1 };
	struct fixture *f;

	(void)state;
	own_etcd(&o);
	assert_int_equal(sup_etcd_ctl(etcd, (const char *const[]){ "user", "add", "root:s3cret", NULL }), 0);
	assert_int_equal(sup_etcd_ctl(etcd, (const char *const[]){ "auth", "enable", NULL }), 0);
	assert_int_equal(sup_etcd_ctl(etcd, (const char *const[]){ "--user", "root:s3cret", "put",
			 "/t6/vassals/all/secret.yaml", unix_vassal("secret", "secret"), NULL }), 0);
	f = one_node(&c);
	char *pwfile = sup_path(f->dir, "password");
	assert_int_equal(sup_write_file(pwfile, "s3cret\n"), 0);
	const char *extra[] = { "--etcd", etcd->endpoints[0], "--etcd-prefix", "/t6", "--node", "node-a",
				"--etcd-user", "root", "--etcd-password-file", pwfile, NULL };
	emperor_start(f, extra);
	wait_unix_serving(f, "secret", "secret");
	wait_cluster(f, "node-a", 1, T_MS);
	assert_int_equal(sup_stop(f->proc, SIGTERM, T_MS), 0);
	assert_exited_0(f);
	sup_proc_free(f->proc);
	f->proc = NULL;
	/* a wrong password */
	assert_int_equal(sup_write_file(pwfile, "wrong\n"), 0);
	size_t from = sup_file_size(f->log);
	emperor_start(f, extra);
	wait_line(f, from, "authentication as root failed");
	free(pwfile);
	cluster_stop(&c);
	own_etcd_stop();
}

/* etcd over TLS with client certificates: the emperor verifies it with --etcd-cacert
 * and shows its own with --etcd-cert/--etcd-key; without them it is refused. */
static void test_tls(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	char *certs = sup_tmpdir();
	struct fixture *f;

	(void)state;
	assert_int_equal(sup_etcd_make_certs(certs), 0);
	char *ca = sup_path(certs, "ca.crt"), *cert = sup_path(certs, "client.crt"),
	     *key = sup_path(certs, "client.key"), *scert = sup_path(certs, "server.crt"),
	     *skey = sup_path(certs, "server.key");
	struct sup_etcd_opts o = { .members = 1, .cert = scert, .key = skey, .cacert = ca,
				   .client_cert_auth = 1 };
	own_etcd(&o);
	assert_int_equal(sup_etcd_ctl(etcd, (const char *const[]){ "--cacert", ca, "--cert", cert,
			 "--key", key, "put", "/t7/vassals/all/tls.yaml", unix_vassal("tls", "tls"),
			 NULL }), 0);
	f = one_node(&c);
	const char *with[] = { "--etcd", etcd->endpoints[0], "--etcd-prefix", "/t7", "--node", "node-a",
			       "--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key, NULL };
	emperor_start(f, with);
	wait_unix_serving(f, "tls", "tls");
	wait_cluster(f, "node-a", 1, T_MS);
	assert_int_equal(sup_stop(f->proc, SIGTERM, T_MS), 0);
	assert_exited_0(f);
	sup_proc_free(f->proc);
	f->proc = NULL;
	/* no client certificate: refused, said once */
	const char *without[] = { "--etcd", etcd->endpoints[0], "--etcd-prefix", "/t7", "--node",
				  "node-a", "--etcd-cacert", ca, NULL };
	size_t from = sup_file_size(f->log);
	emperor_start(f, without);
	wait_line(f, from, "etcd: cannot read /t7/vassals/ (");
	char *why = log_rest_of_line(f, from, "etcd: cannot read /t7/vassals/ (");
	if (!why || !strstr(why, "certificate"))
		fail_msg("not refused for its certificate: %s", why ? why : "");
	free(why);
	cluster_stop(&c);
	own_etcd_stop();
	sup_rmtree(certs);
	free(certs), free(ca), free(cert), free(key), free(scert), free(skey);
}

/* Three etcd members, the emperor given all of them, the leader first; SIGKILL the
 * leader: the vassal is not disturbed (same master, same worker, every request
 * answered) and a key put once a new leader is elected reaches the emperor at once:
 * its watch went on through another member. */
static void test_leader_dies(void **state)
{
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	struct sup_etcd_opts o = { .members = 3 };
	struct sup_load_stats st;
	int port = free_port(), leader;
	char eps[256];
	size_t m;

	(void)state;
	own_etcd(&o);
	leader = sup_etcd_leader(etcd);
	assert_true(leader >= 0);
	snprintf(eps, sizeof eps, "%s,%s,%s", etcd->endpoints[leader],
		 etcd->endpoints[(leader + 1) % 3], etcd->endpoints[(leader + 2) % 3]);
	via = (leader + 1) % 3;
	struct fixture *f = one_node(&c);
	snprintf(c.prefix, sizeof c.prefix, "/t8");
	const char *extra[] = { "--etcd", eps, "--etcd-prefix", "/t8", "--node", "node-a", NULL };
	emperor_start(f, extra);
	wait_line(f, 0, "etcd: vassal keys read: 0 for node node-a");
	wait_line(f, 0, "etcd: publishing vassal status under /t8/status/node-a/");
	put_key(&c, "all", "web.yaml", tcp_vassal(port, "web"));
	pid_t master = started_pid(f, 0, "web"), worker = wait_serving(port, "web", T_MS);
	struct sup_load *load = c.load = sup_load_start("127.0.0.1", port, "/");
	assert_non_null(load);
	assert_int_equal(sup_load_wait_ok(load, 20, T_MS), 0);
	/* the leader dies; a put is retried on a survivor until a new leader takes it */
	m = mark(f);
	long long killed = sup_now_ms();
	assert_int_equal(sup_etcd_kill(etcd, leader), 0);
	long long put = kv_put_retry("/t8/vassals/all/after.yaml", unix_vassal("after", "after"), T_MS);
	while (!mirror_has(f, "after.yaml") && sup_now_ms() < put + T_MS)
		sup_poll_pause();
	long long seen = sup_now_ms();
	wait_unix_serving(f, "after", "after");
	fprintf(stderr, "leader killed -> a put taken (the election): %lld ms; put -> the "
		"emperor's mirror: %lld ms\n", put - killed, seen - put);
	/* the watch is back by the time the cluster has a leader: the put's event is not
	 * held for a backoff or a poll (2 s: the bound on a loaded 2-core machine) */
	assert_true(seen - put <= 2000);
	/* the status key follows too: the lease survived on the new leader */
	free(wait_status_has(&c, 0, "after", "\"state\":\"ready\""));
	/* web never noticed: it answers on once the emperor is done with the leader's death
	 * (the status key above is its last step) — 100 more answers, bounded */
	sup_load_snapshot(load, &st);
	assert_int_equal(sup_load_wait_ok(load, st.ok + 100, T_MS), 0);
	sup_load_stop(load, &st);
	c.load = NULL;
	sup_load_print("web while the etcd leader died", &st);
	assert_int_equal(st.non200 + st.connect_errors + st.io_errors, 0);
	assert_true(sup_pid_alive(master));
	assert_int_equal(wait_serving(port, "web", T_MS), worker);
	assert_int_equal(count_lines(f, 0, " web: started (pid "), 1);
	assert_int_equal(count_lines(f, m, " web: reloading"), 0);
	assert_int_equal(count_lines(f, m, " web: stopping"), 0);
	cluster_stop(&c);
	own_etcd_stop();
}

/* 1,000 keys (50 under ASan) put at once all start; `cluster` shows them; deleting
 * them stops them all. */
static void test_many_keys(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	enum { N = 50 };  /* a sanitized vassal costs several times more: the run's bound */
#else
	enum { N = 1000 };
#endif
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	long long t0;
	char file[48], name[32];

	(void)state;
	cluster_start(&c, "/t3", 1);
	t0 = sup_now_ms();
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "v%04d", i);
		snprintf(file, sizeof file, "%s.yaml", name);
		put_key(&c, c.name[0], file, unix_vassal(name, "many"));
	}
	long long put_ms = sup_now_ms() - t0;
	wait_line_n(c.node[0], 0, ": ready after ", N, LONG_MS);
	fprintf(stderr, "%d keys: put in %lld ms, all ready %lld ms after the first put\n", N, put_ms,
		sup_now_ms() - t0);
	assert_true(unix_get(c.node[0], "v0000", "many") > 0);
	snprintf(name, sizeof name, "v%04d", N - 1);
	assert_true(unix_get(c.node[0], name, "many") > 0);
	wait_cluster(c.node[0], c.name[0], N, LONG_MS / 5);
	t0 = sup_now_ms();
	kv_del("/t3/vassals/", true);
	wait_line_n(c.node[0], 0, ": stopped (", N, LONG_MS);
	fprintf(stderr, "%d keys: deleted at once, all stopped in %lld ms\n", N, sup_now_ms() - t0);
	cluster_stop(&c);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* put → serving on three nodes, 20 new keys; the figures for docs/cluster.md. */
static void test_put_latency(void **state)
{
	enum { N = 20 };
	static struct cluster c; /* static: the teardown of a failed test reaches it */
	double all[N], net[N];

	(void)state;
	cluster_start(&c, "/t4", N_NODES);
	for (int k = 0; k < N; k++) {
		char name[16], file[32], needle[64];
		snprintf(name, sizeof name, "lat%02d", k);
		snprintf(file, sizeof file, "%s.yaml", name);
		snprintf(needle, sizeof needle, " %s: ready after ", name);
		long long t0 = sup_now_ms();
		put_key(&c, "all", file, unix_vassal(name, "lat"));
		double worst = 0, worst_start = 0;
		for (int i = 0; i < N_NODES; i++) {
			wait_unix_serving(c.node[i], name, "lat");
			double took = (double)(sup_now_ms() - t0);
			wait_line(c.node[i], 0, needle); /* may come just after the first answer */
			char *rest = log_rest_of_line(c.node[i], 0, needle);
			double start = rest ? atof(rest) : 0;
			free(rest);
			if (took > worst)
				worst = took, worst_start = start;
		}
		all[k] = worst;
		net[k] = worst - worst_start;
	}
	qsort(all, N, sizeof *all, by_value);
	qsort(net, N, sizeof *net, by_value);
	fprintf(stderr, "put -> serving on all 3 nodes: p50 %.0f ms, p99 %.0f ms; minus the "
		"vassal's own start: p50 %.0f ms, p99 %.0f ms\n", all[N / 2], all[N - 1], net[N / 2],
		net[N - 1]);
	cluster_stop(&c);
}

static int group_setup(void **state)
{
	struct sup_etcd_opts o = { .members = 1 };

	(void)state;
	curl = curl_easy_init();
	etcd = sup_etcd_start(&o);
	return etcd && curl ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	sup_etcd_stop(etcd);
	curl_easy_cleanup(curl);
	return sup_wait_no_leftovers(T_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_keys_reach_their_nodes, test_teardown),
		cmocka_unit_test_teardown(test_outage_and_resync, test_teardown),
		cmocka_unit_test_teardown(test_restart_while_etcd_down, test_teardown),
		cmocka_unit_test_teardown(test_auth, test_teardown),
		cmocka_unit_test_teardown(test_tls, test_teardown),
		cmocka_unit_test_teardown(test_leader_dies, test_teardown),
		cmocka_unit_test_teardown(test_many_keys, test_teardown),
	};
	/* The put → serving figures of docs/cluster.md: a measurement, not a test, run
	 * only when asked (ETCD_EMPEROR_FIGURES=1), so that no skip is counted. */
	const struct CMUnitTest figures[] = {
		cmocka_unit_test_teardown(test_put_latency, test_teardown),
	};

	sup_init();
	if (getenv("ETCD_EMPEROR_FIGURES"))
		return cmocka_run_group_tests(figures, group_setup, group_teardown);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
