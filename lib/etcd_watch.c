/* etcd_watch.c — long-lived streams: a watch on a key or prefix, and the observation
 * of an election's leader. Each owns one streaming request at a time; when it breaks
 * (the endpoint died, the client failed over), the owner opens it again — at once if
 * the stream had lived, else after a backoff — and a watch resumes from the last
 * revision it delivered + 1, so no event is lost or repeated. A watch whose revision
 * was compacted away stops and asks its owner to resync. */
#include "etcd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* When to open a broken stream again: at once after one that lived a second, else
 * after a growing pause (so a stream that is refused does not spin). */
struct stream_retry {
	ev_timer timer;
	int attempt;
	double started_at;
};

static double stream_retry_delay(struct stream_retry *s, struct etcd_client *c)
{
	if (mono_now() - s->started_at > 1.0)
		s->attempt = 0;
	if (s->attempt++ == 0)
		return 0;
	return etcd_backoff(s->attempt - 2, c->backoff_min, c->backoff_max,
			    (etcd_rand(c) % 1000) / 1000.0);
}

static struct etcd_req *stream_open(struct etcd_client *c, const char *path, json_object *body,
				    void *owner, etcd_req_object_fn on_object, etcd_req_end_fn on_end)
{
	struct etcd_req *r = etcd_req_new(c, path, etcd_json_body(body), 0);

	if (!r)
		return NULL;
	if (etcd_jstream_init(&r->js) < 0) {
		etcd_req_free(r);
		return NULL;
	}
	r->streaming = 1;
	r->owner = owner;
	r->on_object = on_object;
	r->on_end = on_end;
	etcd_req_submit(r);
	return r;
}

/* ---- watch --------------------------------------------------------------------------------- */

struct etcd_watch {
	struct etcd_client *c;
	char *key;
	int flags;
	int64_t start_rev;           /* asked for (0: from now) */
	int64_t last_rev;            /* delivered up to here; 0 before the first "created" */
	int stopped;                 /* compacted: waiting for etcd_watch_restart */
	char *cancel_reason;         /* the last one logged */
	struct etcd_watch_cbs cbs;
	void *arg;
	struct etcd_req *req;
	struct stream_retry retry;
};

static void watch_object(struct etcd_req *r, json_object *o);
static void watch_end(struct etcd_req *r, const char *err);

static void watch_open(struct etcd_watch *w)
{
	json_object *body = json_object_new_object(), *create = json_object_new_object();
	int64_t from = w->last_rev ? w->last_rev + 1 : w->start_rev;

	etcd_json_add_key(create, w->key, w->flags);
	if (from > 0)
		etcd_json_add_i64(create, "start_revision", from);
	json_object_object_add(body, "create_request", create);
	w->retry.started_at = mono_now();
	w->req = stream_open(w->c, "/v3/watch", body, w, watch_object, watch_end);
	if (!w->req) {
		ev_timer_set(&w->retry.timer, 1.0, 0.);
		ev_timer_start(w->c->loop, &w->retry.timer);
	}
}

static void watch_retry_fired(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	watch_open(container_of(t, struct etcd_watch, retry.timer));
}

static void watch_reopen_later(struct etcd_watch *w)
{
	ev_timer_set(&w->retry.timer, stream_retry_delay(&w->retry, w->c), 0.);
	ev_timer_start(w->c->loop, &w->retry.timer);
}

static void watch_end(struct etcd_req *r, const char *err)
{
	struct etcd_watch *w = r->owner;

	(void)err; /* the connection's state change is logged by etcd.c */
	w->req = NULL;
	if (!w->stopped)
		watch_reopen_later(w);
}

static void watch_events(struct etcd_watch *w, json_object *arr)
{
	size_t n = json_object_array_length(arr);
	struct etcd_event *ev = calloc(n ? n : 1, sizeof *ev);
	char **keep = calloc(2 * (n ? n : 1), sizeof *keep);

	if (!ev || !keep) {
		log_warn("etcd watch %s: out of memory for %zu events", w->key, n);
		free(ev);
		free(keep);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *one = json_object_array_get_idx(arr, i);
		const char *type = json_object_get_string(etcd_json_get(one, "type"));
		ev[i].type = type && strcmp(type, "DELETE") == 0 ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
		etcd_kv_from_json(etcd_json_get(one, "kv"), &ev[i].kv, &keep[2 * i]);
		if (ev[i].kv.mod_revision > w->last_rev)
			w->last_rev = ev[i].kv.mod_revision;
	}
	if (n > 0 && w->cbs.events)
		w->cbs.events(w->arg, ev, n); /* may free w: not touched after */
	for (size_t i = 0; i < 2 * n; i++)
		free(keep[i]);
	free(keep);
	free(ev);
}

static void watch_cancelled(struct etcd_watch *w, json_object *res)
{
	int64_t compact = etcd_json_i64(res, "compact_revision");
	const char *why = json_object_get_string(etcd_json_get(res, "cancel_reason"));

	etcd_req_free(w->req);
	w->req = NULL;
	if (compact > 0) {
		log_info("etcd watch %s: revision %lld was compacted (at %lld): resync",
			 w->key, (long long)(w->last_rev + 1), (long long)compact);
		w->stopped = 1;
		if (w->cbs.resync)
			w->cbs.resync(w->arg, compact);
		return;
	}
	why = why ? why : "no reason given";
	if (!etcd_token_refused(w->c, why, 0) && (!w->cancel_reason || strcmp(w->cancel_reason, why)))
		log_warn("etcd watch %s: cancelled by etcd: %s", w->key, why);
	free(w->cancel_reason); /* said once, not at every retry */
	w->cancel_reason = strdup(why);
	watch_reopen_later(w);
}

static void watch_object(struct etcd_req *r, json_object *o)
{
	struct etcd_watch *w = r->owner;
	json_object *res = etcd_json_get(o, "result"), *err = etcd_json_get(o, "error"), *arr;

	if (err) { /* ({"grpc_code": 14, "message": "etcdserver: no leader"}: etcd.c logs it) */
		if (etcd_json_i64(err, "grpc_code") != 14)
			log_warn("etcd watch %s: %s", w->key, json_object_get_string(err));
		etcd_req_free(w->req);
		w->req = NULL;
		watch_reopen_later(w);
		return;
	}
	if (json_object_get_boolean(etcd_json_get(res, "canceled"))) {
		watch_cancelled(w, res);
		return;
	}
	if (json_object_get_boolean(etcd_json_get(res, "created"))) {
		if (w->last_rev == 0)
			w->last_rev = w->start_rev > 0 ? w->start_rev - 1 :
				      etcd_json_i64(etcd_json_get(res, "header"), "revision");
		if (w->cbs.ready)
			w->cbs.ready(w->arg, w->last_rev);
		return;
	}
	arr = etcd_json_get(res, "events");
	if (arr && json_object_is_type(arr, json_type_array))
		watch_events(w, arr);
}

struct etcd_watch *etcd_watch_new(struct etcd_client *c, const char *key, int flags,
				  int64_t start_revision, const struct etcd_watch_cbs *cbs,
				  void *arg)
{
	struct etcd_watch *w = calloc(1, sizeof *w);

	if (!w || !(w->key = strdup(key))) {
		free(w);
		log_warn("etcd watch %s: out of memory", key);
		return NULL;
	}
	w->c = c;
	w->flags = flags;
	w->start_rev = start_revision;
	w->cbs = *cbs;
	w->arg = arg;
	ev_timer_init(&w->retry.timer, watch_retry_fired, 0., 0.);
	watch_open(w);
	return w;
}

void etcd_watch_restart(struct etcd_watch *w, int64_t start_revision)
{
	etcd_req_free(w->req);
	w->req = NULL;
	ev_timer_stop(w->c->loop, &w->retry.timer);
	w->stopped = 0;
	w->start_rev = start_revision;
	w->last_rev = 0;
	watch_open(w);
}

int64_t etcd_watch_revision(const struct etcd_watch *w)
{
	return w->last_rev;
}

void etcd_watch_free(struct etcd_watch *w)
{
	if (!w)
		return;
	etcd_req_free(w->req);
	ev_timer_stop(w->c->loop, &w->retry.timer);
	free(w->cancel_reason);
	free(w->key);
	free(w);
}

/* ---- observing a leader ---------------------------------------------------------------------- */

struct etcd_observe {
	struct etcd_client *c;
	char *name;
	etcd_leader_cb cb;
	void *arg;
	char *last_key;              /* the leader reported last: report changes only */
	int64_t last_rev;
	struct etcd_req *req;
	struct stream_retry retry;
};

static void observe_object(struct etcd_req *r, json_object *o);
static void observe_end(struct etcd_req *r, const char *err);

static void observe_open(struct etcd_observe *ob)
{
	json_object *body = json_object_new_object();

	etcd_json_add_b64(body, "name", ob->name, strlen(ob->name));
	ob->retry.started_at = mono_now();
	ob->req = stream_open(ob->c, "/v3/election/observe", body, ob, observe_object, observe_end);
	if (!ob->req) {
		ev_timer_set(&ob->retry.timer, 1.0, 0.);
		ev_timer_start(ob->c->loop, &ob->retry.timer);
	}
}

static void observe_retry_fired(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents;
	observe_open(container_of(t, struct etcd_observe, retry.timer));
}

static void observe_end(struct etcd_req *r, const char *err)
{
	struct etcd_observe *ob = r->owner;

	(void)err;
	ob->req = NULL;
	ev_timer_set(&ob->retry.timer, stream_retry_delay(&ob->retry, ob->c), 0.);
	ev_timer_start(ob->c->loop, &ob->retry.timer);
}

static void observe_object(struct etcd_req *r, json_object *o)
{
	struct etcd_observe *ob = r->owner;
	json_object *kvj = etcd_json_get(etcd_json_get(o, "result"), "kv");
	struct etcd_leader l = { .name = ob->name };
	struct etcd_kv kv;
	char *keep[2];

	if (etcd_json_get(o, "error")) {
		if (etcd_json_i64(etcd_json_get(o, "error"), "grpc_code") != 14)
			log_warn("etcd observe %s: %s", ob->name,
				 json_object_get_string(etcd_json_get(o, "error")));
		return; /* the stream ends; observe_end opens it again */
	}
	if (!kvj)
		return;
	etcd_kv_from_json(kvj, &kv, keep);
	if (!ob->last_key || strcmp(ob->last_key, kv.key) != 0 || ob->last_rev != kv.create_revision) {
		free(ob->last_key);
		ob->last_key = strdup(kv.key);
		ob->last_rev = kv.create_revision;
		l.key = kv.key;
		l.rev = kv.create_revision;
		l.lease = kv.lease;
		l.value = kv.value;
		l.value_len = kv.value_len;
		ob->cb(ob->arg, &l, NULL); /* may free ob */
	}
	free(keep[0]);
	free(keep[1]);
}

struct etcd_observe *etcd_observe_new(struct etcd_client *c, const char *name, etcd_leader_cb cb,
				      void *arg)
{
	struct etcd_observe *ob = calloc(1, sizeof *ob);

	if (!ob || !(ob->name = strdup(name))) {
		free(ob);
		log_warn("etcd observe %s: out of memory", name);
		return NULL;
	}
	ob->c = c;
	ob->cb = cb;
	ob->arg = arg;
	ev_timer_init(&ob->retry.timer, observe_retry_fired, 0., 0.);
	observe_open(ob);
	return ob;
}

void etcd_observe_free(struct etcd_observe *ob)
{
	if (!ob)
		return;
	etcd_req_free(ob->req);
	ev_timer_stop(ob->c->loop, &ob->retry.timer);
	free(ob->last_key);
	free(ob->name);
	free(ob);
}
