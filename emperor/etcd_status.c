/* etcd_status.c — the node's vassals in etcd: PREFIX/status/NODE/NAME holds one
 * vassal's JSON (state, pid, generation, workers ready/total, restarts, last exit,
 * last config error as file:line:col, where its file comes from). A change marks the table dirty;
 * a publish follows STATUS_SETTLE later (a burst is one publish) and puts only the
 * keys whose JSON changed, deleting those of vassals gone. Every key is under one
 * lease the node keeps alive (etcd_lease), so a dead node's keys vanish after
 * STATUS_TTL; a lost lease is granted again and everything is put again. One round
 * of puts at a time, at most STATUS_WINDOW of them: the next waits until every answer
 * of the last is in, so that two puts of one key are never in flight together (they
 * could land out of order).
 * `emperorctl cluster` is answered from one range read of PREFIX/status/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emperor.h"
#include "etcd.h"
#include "etcd_feed.h"
#include "etcd_status.h"
#include "jsonout.h"
#include "log.h"
#include "util.h"

#define STATUS_TTL 10        /* s, the lease: a dead node's keys go after this */
#define STATUS_SETTLE 0.05   /* s, a burst of changes is one publish */
#define STATUS_RETRY 1.0     /* s, before a failed put is tried again */
#define STATUS_WINDOW 64     /* puts and deletes in flight at most */

/* A key as last put (or being put): its vassal's name and JSON. */
struct published {
	char *name;
	char *json;              /* NULL: to be put again (its put failed) */
};

struct etcd_status {
	struct emperor *e;
	struct etcd_client *client;
	char *prefix;            /* PREFIX/status/ */
	char *node_prefix;       /* PREFIX/status/NODE/ */
	struct etcd_lease *lease;
	int64_t lease_id;        /* 0 until granted */
	ev_timer flush;
	struct published *pub;   /* sorted by name */
	size_t n_pub;
	char **undeleted;        /* names whose delete failed: sent again */
	int in_flight;           /* puts and deletes not answered yet */
	bool again;              /* a publish was due while some were: one follows them */
};

/* What a put or delete is for, so that a failure can have it done again. */
struct pending {
	struct etcd_status *s;
	bool deleting;
	char name[];
};

static void strv_push(char ***list, const char *name)
{
	size_t n = strv_len(*list);
	char **grown = realloc(*list, (n + 2) * sizeof *grown);

	if (!grown)
		return;
	*list = grown;
	grown[n] = strdup(name);
	grown[n + 1] = NULL;
}

static void pub_clear(struct etcd_status *s)
{
	for (size_t i = 0; i < s->n_pub; i++)
		free(s->pub[i].name), free(s->pub[i].json);
	free(s->pub);
	s->pub = NULL;
	s->n_pub = 0;
}

void etcd_status_dirty(struct etcd_status *s)
{
	if (!s || ev_is_active(&s->flush))
		return;
	ev_timer_set(&s->flush, STATUS_SETTLE, 0);
	ev_timer_start(s->e->loop, &s->flush);
}

static void retry_later(struct etcd_status *s)
{
	if (ev_is_active(&s->flush))
		return;
	ev_timer_set(&s->flush, STATUS_RETRY, 0);
	ev_timer_start(s->e->loop, &s->flush);
}

static char *vassal_json(const struct emperor *e, const struct vassal *v)
{
	struct json_object *o = json_object_new_object();
	struct strbuf b = { 0 };
	char *text;

	json_object_object_add(o, "node", jsonout_string(e->opts.etcd.node));
	json_object_object_add(o, "name", jsonout_string(v->name));
	json_object_object_add(o, "state", jsonout_string(vtable_state_name(v->state)));
	json_object_object_add(o, "source", jsonout_string(v->from_etcd ? "etcd" : "dir"));
	json_object_object_add(o, "pid", child_running(&v->child) ?
				json_object_new_int64(v->child.pid) : NULL);
	json_object_object_add(o, "generation", v->generation ?
				json_object_new_int64(v->generation) : NULL);
	json_object_object_add(o, "workers_ready", json_object_new_int(v->workers_ready));
	json_object_object_add(o, "workers_total", json_object_new_int(v->workers_total));
	json_object_object_add(o, "restarts", json_object_new_int64(v->restarts));
	json_object_object_add(o, "last_exit", v->last_exit[0] ? jsonout_string(v->last_exit) : NULL);
	json_object_object_add(o, "error", jsonout_string(v->config_error));
	jsonout_append(&b, o);
	if (!b.p)
		return NULL;
	b.p[strcspn(b.p, "\n")] = '\0';
	text = strdup(b.p);
	strbuf_free(&b);
	return text;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct published *)a)->name, ((const struct published *)b)->name);
}

/* The table now, sorted by name, one entry per name (a renamed file waiting for its
 * predecessor has two records: one of them is shown). */
static struct published *snapshot(struct etcd_status *s, size_t *n)
{
	struct vassal *v;
	size_t k = 0;
	struct published *now;

	TAILQ_FOREACH(v, &s->e->vassals, link)
		k++;
	if (!(now = calloc(k ? k : 1, sizeof *now)))
		return NULL;
	*n = 0;
	TAILQ_FOREACH(v, &s->e->vassals, link) {
		now[*n].name = strdup(v->name);
		now[*n].json = vassal_json(s->e, v);
		if (now[*n].name)
			(*n)++;
	}
	qsort(now, *n, sizeof *now, by_name);
	for (size_t i = 1; i < *n; i++)
		if (strcmp(now[i].name, now[i - 1].name) == 0) {
			free(now[i].name), free(now[i].json);
			memmove(&now[i], &now[i + 1], (*n - i - 1) * sizeof *now);
			(*n)--, i--;
		}
	return now;
}

static void op_done(void *arg, const struct etcd_result *r)
{
	struct pending *p = arg;
	struct etcd_status *s = p->s;

	if (--s->in_flight == 0 && s->again) {
		s->again = false;
		etcd_status_dirty(s);
	}
	if (r->error) {
		struct published key = { .name = p->name }, *found;
		found = s->n_pub ? bsearch(&key, s->pub, s->n_pub, sizeof *s->pub, by_name) : NULL;
		if (found) { /* put again by the next publish */
			free(found->json);
			found->json = NULL;
		} else if (p->deleting) {
			strv_push(&s->undeleted, p->name);
		}
		log_debug("etcd: status of %s: %s", p->name, r->error);
		retry_later(s);
	}
	free(p);
}

static void send_op(struct etcd_status *s, const char *name, const char *json)
{
	struct pending *p = malloc(sizeof *p + strlen(name) + 1);
	char *key = NULL;
	struct etcd_req *req = NULL;

	if (!p || asprintf(&key, "%s%s", s->node_prefix, name) < 0) {
		free(p);
		return;
	}
	p->s = s;
	p->deleting = json == NULL;
	strcpy(p->name, name);
	if (json)
		req = etcd_put(s->client, key, json, strlen(json), s->lease_id, op_done, p);
	else
		req = etcd_delete(s->client, key, 0, op_done, p);
	if (req)
		s->in_flight++;
	else
		free(p);
	free(key);
}

/* The deletes that failed before, at most what the window leaves room for; the rest
 * stay in s->undeleted. */
static void send_undeleted(struct etcd_status *s)
{
	size_t n = strv_len(s->undeleted), k = 0;

	for (; k < n && s->in_flight < STATUS_WINDOW; k++) {
		send_op(s, s->undeleted[k], NULL);
		free(s->undeleted[k]);
	}
	if (k == n) {
		free(s->undeleted);
		s->undeleted = NULL;
		return;
	}
	memmove(s->undeleted, s->undeleted + k, (n - k + 1) * sizeof *s->undeleted);
	s->again = true;
}

/* Puts what changed since the last publish, deletes what went: a merge of two
 * sorted lists. At most STATUS_WINDOW requests go out (a thousand vassals starting
 * at once are not a thousand connections to etcd, and the lease's keepalive is not
 * queued behind them): what is held back is marked to be put (json NULL) or deleted
 * (undeleted) by the publish that follows this round. */
static void publish(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct etcd_status *s = container_of(w, struct etcd_status, flush);
	size_t n_now = 0, i = 0, j = 0;
	struct published *now;

	(void)loop, (void)revents;
	if (s->in_flight > 0) {
		s->again = true;
		return;
	}
	if (!s->lease_id || !(now = snapshot(s, &n_now)))
		return; /* granted() publishes */
	send_undeleted(s);
	while (i < n_now || j < s->n_pub) {
		int cmp = i == n_now ? 1 : j == s->n_pub ? -1 : strcmp(now[i].name, s->pub[j].name);
		bool room = s->in_flight < STATUS_WINDOW;
		if (cmp > 0) {
			if (room)
				send_op(s, s->pub[j].name, NULL);
			else
				strv_push(&s->undeleted, s->pub[j].name);
			j++;
			continue;
		}
		if (cmp == 0 && now[i].json && s->pub[j].json && strcmp(now[i].json, s->pub[j].json) == 0)
			; /* unchanged */
		else if (now[i].json && room)
			send_op(s, now[i].name, now[i].json);
		else if (now[i].json) {
			free(now[i].json);
			now[i].json = NULL;
		}
		s->again |= !room;
		i++;
		j += cmp == 0;
	}
	pub_clear(s);
	s->pub = now;
	s->n_pub = n_now;
}

static void lease_granted(void *arg, int64_t id)
{
	struct etcd_status *s = arg;

	s->lease_id = id;
	log_info("etcd: publishing vassal status under %s (lease %llx, %d s)", s->node_prefix,
		 (unsigned long long)id, STATUS_TTL);
	pub_clear(s);
	etcd_status_dirty(s);
}

static void lease_lost(void *arg, const char *why)
{
	static const struct etcd_lease_cbs cbs = { lease_granted, lease_lost };
	struct etcd_status *s = arg;

	(void)why; /* the keeper logged it */
	etcd_lease_free(s->lease);
	s->lease_id = 0;
	pub_clear(s);
	s->lease = etcd_lease_new(s->client, STATUS_TTL, &cbs, s);
}

struct etcd_status *etcd_status_open(struct emperor *e)
{
	static const struct etcd_lease_cbs cbs = { lease_granted, lease_lost };
	struct etcd_status *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->e = e;
	s->client = etcd_feed_client(e->etcd_feed);
	if (asprintf(&s->prefix, "%s/status/", e->opts.etcd.prefix) < 0 ||
	    asprintf(&s->node_prefix, "%s%s/", s->prefix, e->opts.etcd.node) < 0) {
		log_warn("etcd: status: out of memory");
		return NULL;
	}
	ev_timer_init(&s->flush, publish, 0, 0);
	s->lease = etcd_lease_new(s->client, STATUS_TTL, &cbs, s);
	return s->lease ? s : NULL;
}

/* ---- emperorctl cluster -------------------------------------------------------------------- */

struct etcd_cluster_query {
	struct etcd_req *req;
	struct etcd_status *s;
	bool json;
	struct strbuf *out;
	etcd_status_done done;
	void *arg;
};

static const char *field(struct json_object *o, const char *name, char *buf, size_t len)
{
	struct json_object *x;

	if (!o || !json_object_object_get_ex(o, name, &x) || json_object_is_type(x, json_type_null))
		return "-";
	snprintf(buf, len, "%s", json_object_get_string(x));
	return buf;
}

static void render_line(struct strbuf *out, struct json_object *o, const char *node,
			const char *name)
{
	char st[32], pid[24], wr[16], wt[16], src[8], err[512];

	strbuf_printf(out, "%-16s %-24s %-10s %-8s %4s/%-4s %-5s %s\n", node, name,
		      field(o, "state", st, sizeof st), field(o, "pid", pid, sizeof pid),
		      field(o, "workers_ready", wr, sizeof wr), field(o, "workers_total", wt, sizeof wt),
		      field(o, "source", src, sizeof src), field(o, "error", err, sizeof err));
}

/* One kv of PREFIX/status/NODE/NAME: into the JSON array of its node, or a line. */
static void render_kv(struct etcd_cluster_query *q, const struct etcd_kv *kv, struct json_object *nodes)
{
	const char *rest = kv->key + strlen(q->s->prefix), *slash = strchr(rest, '/');
	char node[256];
	struct json_object *o = json_tokener_parse(kv->value), *list;

	if (!slash || (size_t)(slash - rest) >= sizeof node) {
		json_object_put(o);
		return;
	}
	snprintf(node, sizeof node, "%.*s", (int)(slash - rest), rest);
	if (!q->json) {
		render_line(q->out, o, node, slash + 1);
		json_object_put(o);
		return;
	}
	if (!json_object_object_get_ex(nodes, node, &list)) {
		list = json_object_new_array();
		json_object_object_add(nodes, node, list);
	}
	json_object_array_add(list, o ? o : jsonout_string(kv->value));
}

static void cluster_done(void *arg, const struct etcd_result *r)
{
	struct etcd_cluster_query *q = arg;
	struct json_object *root, *nodes;

	if (r->error) {
		q->done(q->arg, r->error);
		free(q);
		return;
	}
	root = json_object_new_object();
	nodes = json_object_new_object();
	if (!q->json)
		strbuf_printf(q->out, "%-16s %-24s %-10s %-8s %9s %-5s %s\n", "NODE", "VASSAL",
			      "STATE", "PID", "WORKERS", "FROM", "ERROR");
	for (size_t i = 0; i < r->n_kvs; i++)
		render_kv(q, &r->kvs[i], nodes);
	json_object_object_add(root, "nodes", nodes);
	json_object_object_add(root, "revision", json_object_new_int64(r->revision));
	if (q->json)
		jsonout_append(q->out, root);
	else
		json_object_put(root);
	q->done(q->arg, NULL);
	free(q);
}

struct etcd_cluster_query *etcd_status_cluster(struct etcd_status *s, bool json,
					       struct strbuf *out, etcd_status_done done,
					       void *arg)
{
	struct etcd_cluster_query *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	*q = (struct etcd_cluster_query){ NULL, s, json, out, done, arg };
	q->req = etcd_range(s->client, s->prefix, ETCD_PREFIX, 0, cluster_done, q);
	if (!q->req) {
		free(q);
		return NULL;
	}
	return q;
}

void etcd_status_cluster_cancel(struct etcd_cluster_query *q)
{
	etcd_cancel(q->req);
	free(q);
}
