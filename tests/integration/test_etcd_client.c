/* test_etcd_client.c — the etcd client against a real etcd (Debian's etcd-server,
 * started by tests/support/sup_etcd.c on loopback): round trips, transactions, 1,000
 * keys, watches (put, touch, delete; compaction → resync), leases (kept alive, lost,
 * revoked), etcd SIGKILLed and restarted under a watch (no event lost), failover in
 * a 3-member cluster when the leader dies, TLS with client certificates, user/password
 * auth, and elections (one leader; resign hands over at once). Each test drives the
 * client's libev loop until the awaited callback, bounded in time. Figures (latencies,
 * reconnect times) are printed as "figure: ...". ETCD_TEST=glob runs some tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/support.h"
#include "etcd.h"
#include "log.h"

#define T_MS 10000 /* bound of every wait that should succeed promptly */
#define MAX_EVENTS 2048

/* ---- the loop and the fixture ---------------------------------------------------------- */

struct fx {
	struct ev_loop *loop;
	struct sup_etcd *etcd;       /* this test's own etcd (else the shared one) */
	struct etcd_client *c[3];
	struct etcd_watch *w[2];
	struct etcd_lease *l[2];
	struct etcd_observe *ob;
	struct etcd_campaign *cp[2];
	char *logpath;               /* the client's log lines */
	char *tmp;                   /* a test's own files (certificates), removed after */
	int logfd;
};

static struct sup_etcd *shared_etcd;

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)w, (void)revents;
}

/* Runs the loop until cond(arg) or timeout_ms: 0, or -1 on timeout. */
static int run_until(struct fx *f, int (*cond)(void *), void *arg, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	ev_timer wake;
	int rc = 0;

	ev_timer_init(&wake, wake_cb, 0.01, 0.01); /* so that ev_run returns to check */
	ev_timer_start(f->loop, &wake);
	while (!cond(arg)) {
		if (sup_now_ms() >= deadline) {
			rc = -1;
			break;
		}
		ev_run(f->loop, EVRUN_ONCE);
	}
	ev_timer_stop(f->loop, &wake);
	return rc;
}

static int never(void *arg)
{
	(void)arg;
	return 0;
}

/* Lets the loop run for ms (to see that something does NOT happen meanwhile). */
static void run_for(struct fx *f, int ms)
{
	run_until(f, never, NULL, ms);
}

static struct etcd_client *client(struct fx *f, int slot, const struct etcd_opts *extra)
{
	struct etcd_opts o = { 0 };
	struct sup_etcd *e = f->etcd ? f->etcd : shared_etcd;

	if (extra)
		o = *extra;
	if (!o.endpoints) {
		o.endpoints = e->endpoints;
		o.n_endpoints = e->n;
	}
	if (!o.backoff_max)
		o.backoff_max = 0.5;
	f->c[slot] = etcd_client_new(f->loop, &o);
	assert_non_null(f->c[slot]);
	return f->c[slot];
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(f->loop);
	f->logpath = sup_path(shared_etcd->dir, "client.log");
	f->logfd = open(f->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(f->logfd >= 0);
	log_set_fd(f->logfd);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 2; i++) {
		etcd_watch_free(f->w[i]);
		etcd_lease_free(f->l[i]);
		if (f->cp[i])
			etcd_campaign_resign(f->cp[i], NULL, NULL);
	}
	etcd_observe_free(f->ob);
	for (int i = 0; i < 3; i++)
		etcd_client_free(f->c[i]);
	if (getenv("ETCD_TEST_LOG")) /* the client's log lines, for debugging */
		sup_print_tail(f->logpath, 40);
	sup_etcd_stop(f->etcd);
	if (f->tmp)
		sup_rmtree(f->tmp);
	free(f->tmp);
	log_set_fd(2);
	close(f->logfd);
	free(f->logpath);
	ev_loop_destroy(f->loop);
	free(f);
	return 0;
}

static int group_setup(void **state)
{
	struct sup_etcd_opts o = { .members = 1 };

	(void)state;
	shared_etcd = sup_etcd_start(&o);
	return shared_etcd ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	sup_etcd_stop(shared_etcd);
	return sup_wait_no_leftovers(T_MS);
}

/* ---- unary results ------------------------------------------------------------------------ */

struct op {
	int done;
	char err[512];
	int code;
	int64_t rev, count, lease, ttl;
	int succeeded;
	size_t n_kvs;
	char key0[256], val0[256];
	int64_t mod0, ver0, create0;
	int sorted;                  /* kvs came in key order */
	double at;                   /* ms when the callback ran */
};

static void op_cb(void *arg, const struct etcd_result *r)
{
	struct op *o = arg;

	o->done = 1;
	o->at = (double)sup_now_ms();
	o->code = r->code;
	if (r->error)
		snprintf(o->err, sizeof o->err, "%s", r->error);
	o->rev = r->revision;
	o->count = r->count;
	o->lease = r->lease_id;
	o->ttl = r->ttl;
	o->succeeded = r->succeeded;
	o->n_kvs = r->n_kvs;
	o->sorted = 1;
	for (size_t i = 1; i < r->n_kvs; i++)
		if (strcmp(r->kvs[i - 1].key, r->kvs[i].key) >= 0)
			o->sorted = 0;
	if (r->n_kvs) {
		snprintf(o->key0, sizeof o->key0, "%s", r->kvs[0].key);
		snprintf(o->val0, sizeof o->val0, "%.*s", (int)r->kvs[0].value_len, r->kvs[0].value);
		o->mod0 = r->kvs[0].mod_revision;
		o->ver0 = r->kvs[0].version;
		o->create0 = r->kvs[0].create_revision;
	}
}

static int op_done(void *arg)
{
	return ((struct op *)arg)->done;
}

/* Waits for o's callback; fails the test on timeout. */
static struct op *wait_op(struct fx *f, struct op *o)
{
	if (run_until(f, op_done, o, T_MS) < 0)
		fail_msg("no callback within %d ms", T_MS);
	return o;
}

static struct op *ok(struct fx *f, struct op *o)
{
	wait_op(f, o);
	if (o->err[0])
		fail_msg("etcd said: %s", o->err);
	return o;
}

static int64_t put(struct fx *f, struct etcd_client *c, const char *key, const char *value)
{
	struct op o = { 0 };

	assert_non_null(etcd_put(c, key, value, strlen(value), 0, op_cb, &o));
	return ok(f, &o)->rev;
}

/* ---- watch recorder ------------------------------------------------------------------------- */

struct wrec {
	int ready;
	int64_t ready_rev;
	double ready_at;
	int resyncs;
	int64_t compact;
	int n;
	struct {
		int type;
		char key[64], val[64];
		int64_t mod, ver;
		double at;
	} ev[MAX_EVENTS];
	int want;                    /* for wrec_has */
};

static void w_ready(void *arg, int64_t rev)
{
	struct wrec *w = arg;

	w->ready++;
	w->ready_rev = rev;
	w->ready_at = (double)sup_now_ms();
}

static void w_events(void *arg, const struct etcd_event *ev, size_t n)
{
	struct wrec *w = arg;

	for (size_t i = 0; i < n && w->n < MAX_EVENTS; i++, w->n++) {
		w->ev[w->n].type = ev[i].type;
		snprintf(w->ev[w->n].key, 64, "%s", ev[i].kv.key);
		snprintf(w->ev[w->n].val, 64, "%.*s", (int)ev[i].kv.value_len, ev[i].kv.value);
		w->ev[w->n].mod = ev[i].kv.mod_revision;
		w->ev[w->n].ver = ev[i].kv.version;
		w->ev[w->n].at = (double)sup_now_ms();
	}
}

static void w_resync(void *arg, int64_t compact)
{
	struct wrec *w = arg;

	w->resyncs++;
	w->compact = compact;
}

static const struct etcd_watch_cbs wcbs = { w_ready, w_events, w_resync };

static int wrec_has(void *arg)
{
	struct wrec *w = arg;

	return w->n >= w->want;
}

static int wrec_ready(void *arg)
{
	struct wrec *w = arg;

	return w->ready >= w->want;
}

static void wait_events(struct fx *f, struct wrec *w, int n)
{
	w->want = n;
	if (run_until(f, wrec_has, w, T_MS) < 0)
		fail_msg("watch: %d events after %d ms, want %d", w->n, T_MS, n);
}

static void wait_ready(struct fx *f, struct wrec *w, int n)
{
	w->want = n;
	if (run_until(f, wrec_ready, w, T_MS) < 0)
		fail_msg("watch: established %d times after %d ms, want %d", w->ready, T_MS, n);
}

static int count_lines(const char *path, const char *needle)
{
	return sup_count_file(path, 0, needle);
}

/* A loopback port below 32768 with nothing on it; or, with keep, a listener on it
 * that never accepts (connections complete in its backlog and never get an answer). */
static int low_port(int keep, int *fd_out)
{
	for (int tries = 0; tries < 500; tries++) {
		int port = 20000 + (int)(random() % 12000);
		int fd = sup_listen_tcp("127.0.0.1", port, NULL);
		if (fd < 0)
			continue;
		if (keep)
			*fd_out = fd;
		else
			close(fd);
		return port;
	}
	fail_msg("no free port");
	return -1;
}

/* ---- options and unreachable endpoints -------------------------------------------------------- */

static void test_bad_options(void **state)
{
	struct fx *f = *state;
	const char *no_scheme[] = { "127.0.0.1:2379" };
	struct etcd_opts o = { .endpoints = no_scheme, .n_endpoints = 1 }, none = { 0 };

	assert_null(etcd_client_new(f->loop, &o));
	assert_null(etcd_client_new(f->loop, &none));
	assert_int_equal(count_lines(f->logpath, "endpoint '127.0.0.1:2379': not http://HOST:PORT"), 1);
	assert_int_equal(count_lines(f->logpath, "no endpoint given"), 1);
	assert_int_equal(count_lines(f->logpath, "etcd:"), 2); /* nothing else said */
}

/* One endpoint refuses connections, the other accepts them and never answers: a put
 * fails when its budget is spent, with the last error, and the client says "no
 * endpoint answers" once, not per retry. A refusing endpoint is skipped for one that
 * answers. */
static void test_unreachable_endpoints(void **state)
{
	struct fx *f = *state;
	int silent_fd = -1, silent = low_port(1, &silent_fd), refused = low_port(0, NULL);
	char r_url[64], s_url[64];
	const char *eps[2] = { r_url, s_url }, *eps2[2] = { r_url, shared_etcd->endpoints[0] };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 2, .request_timeout = 1.5 };
	struct etcd_opts o2 = { .endpoints = eps2, .n_endpoints = 2 };
	struct op p = { 0 };
	long long t0 = sup_now_ms();

	snprintf(r_url, sizeof r_url, "http://127.0.0.1:%d", refused);
	snprintf(s_url, sizeof s_url, "http://127.0.0.1:%d/", silent);
	assert_non_null(etcd_put(client(f, 0, &o), "/k", "v", 1, 0, op_cb, &p));
	wait_op(f, &p);
	printf("no etcd: %s (after %.0f ms)\n", p.err, p.at - (double)t0);
	assert_non_null(strstr(p.err, "no answer within 1.5 s"));
	assert_true(p.at - (double)t0 >= 1400 && p.at - (double)t0 < 2500);
	assert_int_equal(count_lines(f->logpath, "no endpoint answers"), 1);
	assert_int_equal(count_lines(f->logpath, "connected to"), 0);
	put(f, client(f, 1, &o2), "/k", "v");
	assert_string_equal(etcd_client_endpoint(f->c[1]), shared_etcd->endpoints[0]);
	assert_int_equal(count_lines(f->logpath, "connected to"), 1);
	close(silent_fd);
}

/* Sockets of ours without close-on-exec: a child we spawn would inherit them. */
static int sockets_without_cloexec(void)
{
	int bad = 0;

	for (int fd = 3; fd < 1024; fd++) {
		char path[64], target[64], *info, *flags;
		ssize_t n;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) != 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
		info = sup_read_file(path);
		flags = info ? strstr(info, "flags:") : NULL;
		if (flags && !(strtol(flags + 6, NULL, 8) & 02000000)) {
			fprintf(stderr, "fd %d (%s) has no close-on-exec\n", fd, target);
			bad++;
		}
		free(info);
	}
	return bad;
}

/* ---- key-value ------------------------------------------------------------------------------- */

static void test_put_range_delete(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct op r = { 0 }, d = { 0 }, r2 = { 0 }, r3 = { 0 }, cancelled = { 0 };
	int64_t rev;

	rev = put(f, c, "/kv/a", "one");
	put(f, c, "/kv/b", "two");
	put(f, c, "/kva", "not under /kv/");
	assert_non_null(etcd_range(c, "/kv/a", 0, 0, op_cb, &r));
	ok(f, &r);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.key0, "/kv/a");
	assert_string_equal(r.val0, "one");
	assert_int_equal(r.mod0, rev);
	memset(&r, 0, sizeof r);
	assert_non_null(etcd_range(c, "/kv/", ETCD_PREFIX, 0, op_cb, &r));
	assert_int_equal(ok(f, &r)->count, 2);
	assert_non_null(etcd_delete(c, "/kv/", ETCD_PREFIX, op_cb, &d));
	assert_int_equal(ok(f, &d)->count, 2);
	assert_non_null(etcd_range(c, "/kv/", ETCD_PREFIX, 0, op_cb, &r2));
	assert_int_equal(ok(f, &r2)->n_kvs, 0);
	assert_true(etcd_client_connected(c));
	/* cancelled before the loop ran: never sent, never called back */
	etcd_cancel(etcd_put(c, "/kv/cancelled", "x", 1, 0, op_cb, &cancelled));
	assert_non_null(etcd_range(c, "/kv/cancelled", 0, 0, op_cb, &r3));
	assert_int_equal(ok(f, &r3)->n_kvs, 0);
	assert_false(cancelled.done);
}

/* Put if absent: the first wins, the second is told who holds the key. */
static void test_txn_put_if_absent(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct etcd_cmp absent = { "/txn/lock", ETCD_CMP_CREATE, ETCD_CMP_EQUAL, 0, NULL };
	struct etcd_op put_a = { ETCD_OP_PUT, "/txn/lock", 0, "a", 1, 0 };
	struct etcd_op put_b = { ETCD_OP_PUT, "/txn/lock", 0, "b", 1, 0 };
	struct etcd_op get = { ETCD_OP_RANGE, "/txn/lock", 0, NULL, 0, 0 };
	struct etcd_txn ta = { &absent, 1, &put_a, &get, 1, 1 };
	struct etcd_txn tb = { &absent, 1, &put_b, &get, 1, 1 };
	struct op a = { 0 }, b = { 0 };

	assert_non_null(etcd_txn(c, &ta, op_cb, &a));
	ok(f, &a);
	assert_true(a.succeeded);
	assert_non_null(etcd_txn(c, &tb, op_cb, &b));
	ok(f, &b);
	assert_false(b.succeeded);
	assert_int_equal(b.n_kvs, 1);
	assert_string_equal(b.val0, "a");
}

static void test_range_1000_keys(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	static struct op puts[1000];
	struct op r = { 0 };
	struct wrec *w = calloc(1, sizeof *w);
	long long t0;
	char key[64], val[64];

	memset(puts, 0, sizeof puts);
	f->w[0] = etcd_watch_new(c, "/many/", ETCD_PREFIX, 0, &wcbs, w); /* sees every one */
	wait_ready(f, w, 1);
	t0 = sup_now_ms();
	for (int i = 0; i < 1000; i += 50) { /* 50 in flight at a time */
		for (int k = i; k < i + 50; k++) {
			snprintf(key, sizeof key, "/many/%04d", k);
			snprintf(val, sizeof val, "value %d", k);
			assert_non_null(etcd_put(c, key, val, strlen(val), 0, op_cb, &puts[k]));
		}
		for (int k = i; k < i + 50; k++)
			ok(f, &puts[k]);
	}
	printf("figure: 1000 puts, 50 in flight: %lld ms\n", sup_now_ms() - t0);
	t0 = sup_now_ms();
	assert_non_null(etcd_range(c, "/many/", ETCD_PREFIX, 0, op_cb, &r));
	ok(f, &r);
	printf("figure: range of 1000 keys: %lld ms\n", sup_now_ms() - t0);
	assert_int_equal(r.n_kvs, 1000);
	assert_int_equal(r.count, 1000);
	assert_true(r.sorted);
	assert_string_equal(r.key0, "/many/0000");
	assert_string_equal(r.val0, "value 0");
	wait_events(f, w, 1000);
	for (int i = 1; i < 1000; i++) /* in revision order, none twice */
		assert_true(w->ev[i].mod == w->ev[i - 1].mod + 1);
	assert_int_equal(w->ev[999].mod, r.rev);
	free(w);
}

/* An answer past 4 MB (eight values of 700 kB, base64 in JSON: about 7.5 MB) comes
 * back whole: vassal files under a prefix can add up to that. */
static void test_range_large_answer(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	size_t len = 700 * 1024;
	char *big = malloc(len), key[32];
	struct op puts[8], r = { 0 };

	assert_non_null(big);
	memset(puts, 0, sizeof puts);
	for (int i = 0; i < 8; i++) {
		memset(big, 'a' + i, len);
		snprintf(key, sizeof key, "/big/%d", i);
		assert_non_null(etcd_put(c, key, big, len, 0, op_cb, &puts[i]));
		ok(f, &puts[i]);
	}
	assert_non_null(etcd_range(c, "/big/", ETCD_PREFIX, 0, op_cb, &r));
	ok(f, &r);
	assert_int_equal(r.n_kvs, 8);
	assert_string_equal(r.key0, "/big/0");
	free(big);
}

/* ---- watches --------------------------------------------------------------------------------- */

static void test_watch_put_touch_delete(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL), *c2 = client(f, 1, NULL);
	struct wrec *w = calloc(1, sizeof *w);
	double sent;
	int64_t rev1, rev2;
	struct op d = { 0 };

	f->w[0] = etcd_watch_new(c, "/watch/", ETCD_PREFIX, 0, &wcbs, w);
	wait_ready(f, w, 1);
	sent = (double)sup_now_ms();
	rev1 = put(f, c2, "/watch/k", "v");
	wait_events(f, w, 1);
	printf("figure: put -> watch event: %.0f ms (put answered after %.0f ms)\n",
	       w->ev[0].at - sent, (double)sup_now_ms() - sent);
	rev2 = put(f, c2, "/watch/k", "v"); /* the same value again: a touch */
	wait_events(f, w, 2);
	assert_non_null(etcd_delete(c2, "/watch/k", 0, op_cb, &d));
	ok(f, &d);
	wait_events(f, w, 3);
	assert_int_equal(w->ev[0].type, ETCD_EVENT_PUT);
	assert_string_equal(w->ev[0].key, "/watch/k");
	assert_string_equal(w->ev[0].val, "v");
	assert_int_equal(w->ev[0].mod, rev1);
	assert_int_equal(w->ev[1].type, ETCD_EVENT_PUT);
	assert_int_equal(w->ev[1].mod, rev2);
	assert_true(rev2 > rev1);
	assert_int_equal(w->ev[1].ver, 2);
	assert_int_equal(w->ev[2].type, ETCD_EVENT_DELETE);
	assert_string_equal(w->ev[2].key, "/watch/k");
	assert_int_equal(etcd_watch_revision(f->w[0]), d.rev);
	assert_int_equal(sockets_without_cloexec(), 0); /* curl's, with a watch open */
	free(w);
}

static void test_watch_compacted_resync(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct wrec *w = calloc(1, sizeof *w);
	int64_t first = put(f, c, "/cmp/k", "1"), last;
	char rev[32];

	put(f, c, "/cmp/k", "2");
	last = put(f, c, "/cmp/k", "3");
	snprintf(rev, sizeof rev, "%lld", (long long)last);
	assert_int_equal(sup_etcd_ctl(shared_etcd, (const char *const[]){ "compact", rev, NULL }), 0);
	f->w[0] = etcd_watch_new(c, "/cmp/", ETCD_PREFIX, first, &wcbs, w);
	w->want = 1;
	for (long long end = sup_now_ms() + T_MS; !w->resyncs && sup_now_ms() < end;)
		run_for(f, 10);
	assert_int_equal(w->resyncs, 1);
	assert_int_equal(w->compact, last);
	assert_int_equal(w->n, 0);
	etcd_watch_restart(f->w[0], last + 1); /* as after a range read at last */
	wait_ready(f, w, 1);
	put(f, c, "/cmp/k", "4");
	wait_events(f, w, 1);
	assert_string_equal(w->ev[0].val, "4");
	free(w);
}

/* ---- leases ------------------------------------------------------------------------------------ */

struct lrec {
	int granted, lost;
	int64_t id;
	char why[256];
	double at;                   /* ms when lost */
};

static void l_granted(void *arg, int64_t id)
{
	struct lrec *l = arg;

	l->granted++;
	l->id = id;
}

static void l_lost(void *arg, const char *why)
{
	struct lrec *l = arg;

	l->lost++;
	l->at = (double)sup_now_ms();
	snprintf(l->why, sizeof l->why, "%s", why);
}

static const struct etcd_lease_cbs lcbs = { l_granted, l_lost };

static int l_is_granted(void *arg)
{
	return ((struct lrec *)arg)->granted;
}

static int l_is_lost(void *arg)
{
	return ((struct lrec *)arg)->lost;
}

/* A 2 s lease kept alive keeps its key past 3 s; releasing it deletes the key at once. */
static void test_lease_keepalive_and_revoke(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct lrec lr = { 0 };
	struct wrec *w = calloc(1, sizeof *w);
	struct op p = { 0 }, r = { 0 };
	double released;

	f->l[0] = etcd_lease_new(c, 2, &lcbs, &lr);
	assert_int_equal(run_until(f, l_is_granted, &lr, T_MS), 0);
	assert_int_equal(etcd_lease_id(f->l[0]), lr.id);
	assert_non_null(etcd_put(c, "/lease/k", "x", 1, lr.id, op_cb, &p));
	ok(f, &p);
	f->w[0] = etcd_watch_new(c, "/lease/k", 0, 0, &wcbs, w);
	wait_ready(f, w, 1);
	run_for(f, 3000); /* past the TTL: only the keepalives keep it */
	assert_int_equal(w->n, 0);
	assert_int_equal(lr.lost, 0);
	assert_non_null(etcd_range(c, "/lease/k", 0, 0, op_cb, &r));
	assert_int_equal(ok(f, &r)->n_kvs, 1);
	released = (double)sup_now_ms();
	etcd_lease_release(f->l[0]);
	f->l[0] = NULL;
	wait_events(f, w, 1);
	assert_int_equal(w->ev[0].type, ETCD_EVENT_DELETE);
	printf("figure: lease revoke -> key's DELETE event: %.0f ms\n", w->ev[0].at - released);
	free(w);
}

/* Revoked behind the keeper's back: its next keepalive learns it and says "lost". */
static void test_lease_lost(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct lrec lr = { 0 };
	struct op rv = { 0 };
	double t0;

	f->l[0] = etcd_lease_new(c, 3, &lcbs, &lr);
	assert_int_equal(run_until(f, l_is_granted, &lr, T_MS), 0);
	assert_non_null(etcd_lease_revoke(c, lr.id, op_cb, &rv));
	ok(f, &rv);
	t0 = (double)sup_now_ms();
	assert_int_equal(run_until(f, l_is_lost, &lr, T_MS), 0);
	printf("figure: lease revoked elsewhere -> lost callback: %.0f ms (renewal every 1 s)\n",
	       (double)sup_now_ms() - t0);
	assert_non_null(strstr(lr.why, "no longer exists"));
}

/* A fencing lease (2 s, given up 1 s before it can expire, renewed every 1/3 s) stays
 * while the loop runs; a process stalled past its give-up time (here blocked 1.2 s: the
 * stall is the stimulus, as a SIGSTOP or a starved CPU would be) finds it lost at its
 * first etcd_lease_check, before any timer of the loop has run. */
static void test_fence_lease_check_after_a_stall(void **state)
{
	struct fx *f = *state;
	struct etcd_client *c = client(f, 0, NULL);
	struct lrec lr = { 0 };
	struct timespec stall = { 1, 200000000 };

	f->l[0] = etcd_lease_new_fence(c, 2, 1.0, &lcbs, &lr);
	assert_int_equal(run_until(f, l_is_granted, &lr, T_MS), 0);
	run_for(f, 1500); /* past the give-up time: only the renewals keep it */
	assert_int_equal(lr.lost, 0);
	assert_int_equal(etcd_lease_check(f->l[0]), 0);
	while (nanosleep(&stall, &stall) < 0 && errno == EINTR)
		;
	assert_int_equal(etcd_lease_check(f->l[0]), 1);
	assert_int_equal(lr.lost, 1);
	assert_non_null(strstr(lr.why, "while this process was stopped or starved"));
}

/* ---- etcd dies and comes back ------------------------------------------------------------------ */

static int c_connected(void *arg)
{
	return etcd_client_connected(arg);
}

static int c_disconnected(void *arg)
{
	return !etcd_client_connected(arg);
}

/* Its own etcd (the shared one is not killed). Events put while the watch was cut
 * off arrive after the reconnect, once each, in order. */
static void test_restart_watch_resumes(void **state)
{
	struct fx *f = *state;
	struct sup_etcd_opts eo = { .members = 1 };
	struct etcd_client *c, *c2;
	struct wrec *w = calloc(1, sizeof *w);
	long long t0, back;

	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	c = client(f, 0, NULL);
	f->w[0] = etcd_watch_new(c, "/r/", ETCD_PREFIX, 0, &wcbs, w);
	wait_ready(f, w, 1);
	put(f, c, "/r/1", "before");
	wait_events(f, w, 1);
	/* the loop does not run meanwhile: the watch cannot see these as they happen */
	assert_int_equal(sup_etcd_kill(f->etcd, 0), 0);
	t0 = sup_now_ms();
	assert_int_equal(sup_etcd_restart(f->etcd, 0, 1), 0);
	printf("figure: etcd restart to healthy: %lld ms\n", sup_now_ms() - t0);
	c2 = client(f, 1, NULL);
	put(f, c2, "/r/2", "while cut off");
	put(f, c2, "/r/3", "while cut off");
	t0 = sup_now_ms();
	wait_events(f, w, 3);
	printf("figure: watch resumed and caught up: %lld ms after the loop ran again\n",
	       sup_now_ms() - t0);
	/* a second outage with the loop running: down, backoff, back */
	assert_int_equal(sup_etcd_kill(f->etcd, 0), 0);
	assert_int_equal(run_until(f, c_disconnected, c, T_MS), 0);
	run_for(f, 1500); /* several rounds of backoff, each refused */
	assert_int_equal(sup_etcd_restart(f->etcd, 0, 0), 0);
	back = sup_now_ms();
	wait_ready(f, w, 3);
	printf("figure: etcd started again -> watch re-established: %.0f ms\n", w->ready_at - back);
	assert_int_equal(run_until(f, c_connected, c, T_MS), 0);
	put(f, c2, "/r/4", "after");
	wait_events(f, w, 4);
	for (int i = 0; i < 4; i++) {
		char k[16];
		snprintf(k, sizeof k, "/r/%d", i + 1);
		assert_string_equal(w->ev[i].key, k);
	}
	assert_int_equal(w->n, 4);
	/* each change of state logged once, not each retry */
	assert_int_equal(count_lines(f->logpath, "etcd: lost"), 2);
	assert_int_equal(count_lines(f->logpath, "no endpoint answers"), 2);
	assert_true(count_lines(f->logpath, "etcd: reconnected to") >= 2);
	free(w);
}

/* ---- three members: the leader dies ------------------------------------------------------------ */

static void test_cluster_leader_dies(void **state)
{
	struct fx *f = *state;
	struct sup_etcd_opts eo = { .members = 3 };
	struct wrec *w = calloc(1, sizeof *w);
	const char *eps[3];
	char line[128];
	struct etcd_opts o = { 0 };
	struct etcd_client *c;
	int leader;
	long long t0;
	struct op p = { 0 };

	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	leader = sup_etcd_leader(f->etcd);
	assert_true(leader >= 0);
	for (int i = 0; i < 3; i++) /* the leader first: the client talks to it */
		eps[i] = f->etcd->endpoints[(leader + i) % 3];
	o.endpoints = eps;
	o.n_endpoints = 3;
	c = client(f, 0, &o);
	f->w[0] = etcd_watch_new(c, "/cl/", ETCD_PREFIX, 0, &wcbs, w);
	wait_ready(f, w, 1);
	put(f, c, "/cl/1", "a");
	wait_events(f, w, 1);
	assert_string_equal(etcd_client_endpoint(c), eps[0]);
	assert_int_equal(sup_etcd_kill(f->etcd, leader), 0);
	t0 = sup_now_ms();
	assert_non_null(etcd_put(c, "/cl/2", "b", 1, 0, op_cb, &p));
	ok(f, &p);
	printf("figure: leader killed -> put answered by another member: %.0f ms\n", p.at - (double)t0);
	wait_events(f, w, 2);
	printf("figure: leader killed -> watch event via another member: %.0f ms\n",
	       w->ev[1].at - (double)t0);
	assert_string_equal(w->ev[1].key, "/cl/2");
	assert_string_not_equal(etcd_client_endpoint(c), eps[0]);
	snprintf(line, sizeof line, "etcd: lost %s:", eps[0]); /* once, however many requests failed */
	assert_int_equal(count_lines(f->logpath, line), 1);
	free(w);
}

/* Two of three members die: the one left has no leader and ends the watch ("no
 * leader") instead of keeping it open and silent, so the client knows it is cut off;
 * with the two back, the watch resumes and misses nothing. */
static void test_cluster_quorum_lost(void **state)
{
	struct fx *f = *state;
	struct sup_etcd_opts eo = { .members = 3 };
	struct wrec *w = calloc(1, sizeof *w);
	struct etcd_client *c, *c2;
	int cur = -1;
	long long t0;

	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	c = client(f, 0, NULL);
	f->w[0] = etcd_watch_new(c, "/q/", ETCD_PREFIX, 0, &wcbs, w);
	wait_ready(f, w, 1);
	put(f, c, "/q/1", "a");
	wait_events(f, w, 1);
	for (int i = 0; i < 3; i++)
		if (strcmp(etcd_client_endpoint(c), f->etcd->endpoints[i]) == 0)
			cur = i;
	assert_true(cur >= 0);
	for (int i = 0; i < 3; i++)
		if (i != cur)
			assert_int_equal(sup_etcd_kill(f->etcd, i), 0);
	t0 = sup_now_ms();
	assert_int_equal(run_until(f, c_disconnected, c, T_MS), 0);
	printf("figure: quorum lost -> the client knows (its watch ended: no leader): %lld ms\n",
	       sup_now_ms() - t0);
	for (int i = 0; i < 3; i++)
		if (i != cur)
			assert_int_equal(sup_etcd_restart(f->etcd, i, 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sup_etcd_wait_healthy(f->etcd, i, T_MS), 0);
	c2 = client(f, 1, NULL);
	put(f, c2, "/q/2", "b");
	t0 = sup_now_ms();
	wait_events(f, w, 2);
	printf("figure: quorum back -> watch caught up: %lld ms after the loop ran again\n",
	       sup_now_ms() - t0);
	assert_string_equal(w->ev[1].key, "/q/2");
	assert_int_equal(w->n, 2);
	free(w);
}

/* ---- TLS --------------------------------------------------------------------------------------- */

static void test_tls_client_cert(void **state)
{
	struct fx *f = *state;
	char *dir = f->tmp = sup_tmpdir(), *ca = sup_path(dir, "ca.crt"), *cert = sup_path(dir, "client.crt"),
	     *key = sup_path(dir, "client.key"), *scert = sup_path(dir, "server.crt"),
	     *skey = sup_path(dir, "server.key");
	struct sup_etcd_opts eo = { .members = 1, .cert = scert, .key = skey, .cacert = ca,
				    .client_cert_auth = 1 };
	struct etcd_opts with = { .cacert = ca, .cert = cert, .key = key };
	struct etcd_opts without = { .cacert = ca, .request_timeout = 2 };
	struct etcd_opts unverified = { .request_timeout = 2 };
	struct op r = { 0 }, bad = { 0 }, bad2 = { 0 };
	long long t0;

	assert_int_equal(sup_etcd_make_certs(dir), 0);
	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	assert_memory_equal(f->etcd->endpoints[0], "https://", 8);
	put(f, client(f, 0, &with), "/tls/k", "secret");
	assert_non_null(etcd_range(f->c[0], "/tls/k", 0, 0, op_cb, &r));
	assert_string_equal(ok(f, &r)->val0, "secret");
	t0 = sup_now_ms();
	assert_non_null(etcd_put(client(f, 1, &without), "/tls/k", "x", 1, 0, op_cb, &bad));
	wait_op(f, &bad);
	printf("without a client certificate: %s\n", bad.err);
	assert_true(bad.err[0]);
	assert_non_null(strstr(bad.err, "certificate"));
	assert_true(bad.at - (double)t0 < 1000); /* told at once, not after retrying */
	t0 = sup_now_ms();
	assert_non_null(etcd_put(client(f, 2, &unverified), "/tls/k", "x", 1, 0, op_cb, &bad2));
	wait_op(f, &bad2);
	printf("without the CA: %s\n", bad2.err);
	assert_non_null(strstr(bad2.err, "certificate"));
	assert_true(bad2.at - (double)t0 < 1000); /* told at once, not after retrying */
	free(ca), free(cert), free(key), free(scert), free(skey);
}

/* ---- auth ----------------------------------------------------------------------------------------- */

static void test_auth_user_password(void **state)
{
	struct fx *f = *state;
	struct sup_etcd_opts eo = { .members = 1 };
	struct etcd_opts good = { .user = "root", .password = "s3cret" };
	struct etcd_opts wrong = { .user = "root", .password = "nope", .request_timeout = 2 };
	struct etcd_opts none = { .request_timeout = 2 };
	struct op r = { 0 }, anon = { 0 }, bad = { 0 };
	struct wrec *w = calloc(1, sizeof *w);

	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	assert_int_equal(sup_etcd_ctl(f->etcd, (const char *const[]){ "user", "add", "root:s3cret", NULL }), 0);
	assert_int_equal(sup_etcd_ctl(f->etcd, (const char *const[]){ "auth", "enable", NULL }), 0);
	put(f, client(f, 0, &good), "/auth/k", "v");
	assert_non_null(etcd_range(f->c[0], "/auth/k", 0, 0, op_cb, &r));
	assert_string_equal(ok(f, &r)->val0, "v");
	assert_non_null(etcd_put(client(f, 1, &none), "/auth/k", "x", 1, 0, op_cb, &anon));
	wait_op(f, &anon);
	printf("without credentials: %s\n", anon.err);
	assert_non_null(strstr(anon.err, "user name is empty"));
	assert_non_null(etcd_put(client(f, 2, &wrong), "/auth/k", "x", 1, 0, op_cb, &bad));
	wait_op(f, &bad);
	printf("with a wrong password: %s\n", bad.err);
	assert_non_null(strstr(bad.err, "authentication as root failed"));
	/* tokens die with auth disable + enable: the client gets a new one by itself, for
	 * a watch (etcd cancels it: "invalid auth token") as for a put */
	assert_int_equal(sup_etcd_ctl(f->etcd, (const char *const[]){ "--user", "root:s3cret", "auth",
							  "disable", NULL }), 0);
	assert_int_equal(sup_etcd_ctl(f->etcd, (const char *const[]){ "auth", "enable", NULL }), 0);
	f->w[0] = etcd_watch_new(f->c[0], "/auth/", ETCD_PREFIX, 0, &wcbs, w);
	wait_ready(f, w, 1);
	put(f, f->c[0], "/auth/k", "after a new token");
	wait_events(f, w, 1);
	assert_string_equal(w->ev[0].val, "after a new token");
	assert_int_equal(count_lines(f->logpath, "authenticating again"), 1);
	free(w);
}

/* ---- election ---------------------------------------------------------------------------------------- */

struct crec {
	int led;
	char err[256];
	double at;
	char key[128];
};

static void cp_cb(void *arg, const struct etcd_leader *l, const char *err)
{
	struct crec *r = arg;

	r->at = (double)sup_now_ms();
	if (err) {
		snprintf(r->err, sizeof r->err, "%s", err);
		return;
	}
	r->led++;
	snprintf(r->key, sizeof r->key, "%s", l->key);
}

static int cp_led(void *arg)
{
	return ((struct crec *)arg)->led;
}

static int cp_failed(void *arg)
{
	return ((struct crec *)arg)->err[0] != 0;
}

struct orec {
	int n;
	char value[8][64];
};

static void ob_cb(void *arg, const struct etcd_leader *l, const char *err)
{
	struct orec *o = arg;

	if (!err && o->n < 8)
		snprintf(o->value[o->n++], 64, "%.*s", (int)l->value_len, l->value);
}

static int ob_two(void *arg)
{
	return ((struct orec *)arg)->n >= 2;
}

static void test_election_one_leader_and_resign(void **state)
{
	struct fx *f = *state;
	struct etcd_client *a = client(f, 0, NULL), *b = client(f, 1, NULL);
	struct lrec la = { 0 }, lb = { 0 };
	struct crec ca = { 0 }, cb = { 0 }, bogus = { 0 };
	struct orec seen = { 0 };
	struct op done = { 0 };
	double t0;

	f->l[0] = etcd_lease_new(a, 5, &lcbs, &la);
	f->l[1] = etcd_lease_new(b, 5, &lcbs, &lb);
	assert_int_equal(run_until(f, l_is_granted, &la, T_MS), 0);
	assert_int_equal(run_until(f, l_is_granted, &lb, T_MS), 0);
	f->cp[0] = etcd_campaign_new(a, "/elect/legion", "node-a", 6, la.id, cp_cb, &ca);
	assert_int_equal(run_until(f, cp_led, &ca, T_MS), 0);
	f->cp[1] = etcd_campaign_new(b, "/elect/legion", "node-b", 6, lb.id, cp_cb, &cb);
	f->ob = etcd_observe_new(client(f, 2, NULL), "/elect/legion", ob_cb, &seen);
	run_for(f, 500); /* b must stay a candidate while a leads */
	assert_int_equal(ca.led, 1);
	assert_int_equal(cb.led, 0);
	assert_true(etcd_campaign_leading(f->cp[0]));
	assert_false(etcd_campaign_leading(f->cp[1]));
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.value[0], "node-a");
	t0 = (double)sup_now_ms();
	etcd_campaign_resign(f->cp[0], op_cb, &done);
	f->cp[0] = NULL;
	assert_int_equal(run_until(f, cp_led, &cb, T_MS), 0);
	printf("figure: resign -> the other candidate leads: %.0f ms\n", cb.at - t0);
	assert_int_equal(run_until(f, ob_two, &seen, T_MS), 0);
	assert_string_equal(seen.value[1], "node-b");
	ok(f, &done);
	assert_true(etcd_campaign_leading(f->cp[1]));
	assert_int_equal(la.lost + lb.lost, 0);
	/* a campaign on a lease etcd does not know ends with etcd's reason */
	f->cp[0] = etcd_campaign_new(a, "/elect/other", "x", 1, 0x7777, cp_cb, &bogus);
	assert_int_equal(run_until(f, cp_failed, &bogus, T_MS), 0);
	assert_non_null(strstr(bogus.err, "lease not found"));
	assert_false(etcd_campaign_leading(f->cp[0]));
}

static int both_lost(void *arg)
{
	struct lrec *l = arg;

	return l[0].lost && l[1].lost;
}

/* What a legion needs through an outage: a pending campaign outlives etcd's restart
 * (the client sends it again) and a resign afterwards hands over at once; with etcd
 * gone for good, each lease keeper says "lost" before its lease could have expired
 * on the server, so a lord steps down before anyone else can be elected. */
static void test_election_across_restart_then_leases_lost(void **state)
{
	struct fx *f = *state;
	struct sup_etcd_opts eo = { .members = 1 };
	struct etcd_client *a, *b;
	struct lrec l[2] = { { 0 }, { 0 } };
	struct crec ca = { 0 }, cb = { 0 };
	double t0, killed;

	f->etcd = sup_etcd_start(&eo);
	assert_non_null(f->etcd);
	a = client(f, 0, NULL);
	b = client(f, 1, NULL);
	f->l[0] = etcd_lease_new(a, 5, &lcbs, &l[0]);
	f->l[1] = etcd_lease_new(b, 5, &lcbs, &l[1]);
	assert_int_equal(run_until(f, l_is_granted, &l[0], T_MS), 0);
	assert_int_equal(run_until(f, l_is_granted, &l[1], T_MS), 0);
	f->cp[0] = etcd_campaign_new(a, "/elect/outage", "a", 1, l[0].id, cp_cb, &ca);
	assert_int_equal(run_until(f, cp_led, &ca, T_MS), 0);
	f->cp[1] = etcd_campaign_new(b, "/elect/outage", "b", 1, l[1].id, cp_cb, &cb);
	run_for(f, 200); /* b's campaign is waiting in etcd */
	assert_int_equal(sup_etcd_kill(f->etcd, 0), 0);
	assert_int_equal(sup_etcd_restart(f->etcd, 0, 1), 0);
	run_for(f, 500); /* b's campaign goes again (curl or we resend it); a still leads */
	assert_true(etcd_client_connected(a) && etcd_client_connected(b));
	assert_int_equal(cb.led, 0);
	assert_int_equal(l[0].lost + l[1].lost, 0);
	t0 = (double)sup_now_ms();
	etcd_campaign_resign(f->cp[0], NULL, NULL);
	f->cp[0] = NULL;
	assert_int_equal(run_until(f, cp_led, &cb, T_MS), 0);
	printf("figure: after an etcd restart, resign -> the waiting candidate leads: %.0f ms\n",
	       cb.at - t0);
	assert_int_equal(sup_etcd_kill(f->etcd, 0), 0);
	killed = (double)sup_now_ms();
	assert_int_equal(run_until(f, both_lost, l, T_MS), 0);
	printf("figure: etcd gone -> lease keepers (ttl 5 s) report lost after %.0f and %.0f ms\n",
	       l[0].at - killed, l[1].at - killed);
	for (int i = 0; i < 2; i++) /* renewed last before the kill: lost by ttl - margin */
		assert_true(l[i].at - killed <= (5 - 1.25) * 1000 + 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
		T(test_bad_options),
		T(test_unreachable_endpoints),
		T(test_put_range_delete),
		T(test_txn_put_if_absent),
		T(test_range_1000_keys),
		T(test_range_large_answer),
		T(test_watch_put_touch_delete),
		T(test_watch_compacted_resync),
		T(test_lease_keepalive_and_revoke),
		T(test_lease_lost),
		T(test_fence_lease_check_after_a_stall),
		T(test_election_one_leader_and_resign),
		T(test_restart_watch_resumes),
		T(test_election_across_restart_then_leases_lost),
		T(test_cluster_leader_dies),
		T(test_cluster_quorum_lost),
		T(test_tls_client_cert),
		T(test_auth_user_password),
#undef T
	};

	sup_init();
	log_init("test-etcd");
	if (getenv("ETCD_TEST"))
		cmocka_set_test_filter(getenv("ETCD_TEST"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
