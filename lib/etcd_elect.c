/* etcd_elect.c — what a legion needs from etcd: a lease keeper (grant, renew every
 * TTL/3 — a fencing lease three times before it is given up —, and "lost" before the lease can have expired on the server, so a lord steps
 * down before a peer can be elected: never two lords), and campaigns on etcd's
 * v3election service (a campaign is a request that etcd answers once we lead;
 * resigning hands the lead to the next candidate at once). */
#include "etcd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- lease keeper ------------------------------------------------------------------------- */

struct etcd_lease {
	struct etcd_client *c;
	int64_t ttl, id;
	struct etcd_lease_cbs cbs;
	void *arg;
	struct etcd_req *req;        /* the grant or keepalive in flight */
	double sent_at;              /* when it was sent */
	double margin;               /* given up this long before it can expire */
	double period;               /* renewed this often */
	double give_up_at;           /* mono: renewed-at + ttl - margin (0: not granted) */
	ev_timer renew;              /* every period */
	ev_timer expiry;             /* at give_up_at: give it up */
};

static double lease_margin(const struct etcd_lease *l)
{
	return l->margin;
}

static void lease_lost(struct etcd_lease *l, const char *why)
{
	ev_timer_stop(l->c->loop, &l->renew);
	ev_timer_stop(l->c->loop, &l->expiry);
	etcd_req_free(l->req);
	l->req = NULL;
	log_warn("etcd: lease %llx lost: %s", (unsigned long long)l->id, why);
	if (l->cbs.lost)
		l->cbs.lost(l->arg, why);
}

/* The lease is good until at least sent_at + ttl on the server's clock. */
static void lease_renewed(struct etcd_lease *l, int64_t ttl)
{
	double left;

	l->give_up_at = l->sent_at + (double)ttl - lease_margin(l);
	left = l->give_up_at - mono_now();
	ev_timer_stop(l->c->loop, &l->expiry);
	ev_timer_set(&l->expiry, left > 0 ? left : 0, 0.);
	ev_timer_start(l->c->loop, &l->expiry);
	/* A slow answer (a grant that waited out an outage) may leave less than one
	 * renewal period: renew at once, or the expiry comes before the next tick. */
	if (left < ev_timer_remaining(l->c->loop, &l->renew)) {
		ev_timer_stop(l->c->loop, &l->renew);
		ev_timer_set(&l->renew, 0., l->period);
		ev_timer_start(l->c->loop, &l->renew);
	}
}

static void lease_answer(void *arg, const struct etcd_result *r)
{
	struct etcd_lease *l = arg;
	int first = l->id == 0;

	l->req = NULL;
	if (r->error)
		return; /* the next renew tick tries again; expiry decides */
	if (first)
		l->id = r->lease_id;
	if (first && r->ttl > l->ttl)
		log_warn("etcd: lease %llx granted for %lld s, not the %lld s asked (etcd's minimum "
			 "TTL): its holder's crash is noticed that much later", (unsigned long long)l->id,
			 (long long)r->ttl, (long long)l->ttl);
	if (r->ttl <= 0) {
		lease_lost(l, "etcd says it no longer exists");
		return;
	}
	lease_renewed(l, r->ttl < l->ttl ? r->ttl : l->ttl);
	if (first && l->cbs.granted)
		l->cbs.granted(l->arg, l->id);
}

static void lease_send(struct etcd_lease *l)
{
	if (l->req)
		return;
	l->sent_at = mono_now();
	l->req = l->id ? etcd_lease_keepalive(l->c, l->id, lease_answer, l) :
			 etcd_lease_grant(l->c, l->ttl, lease_answer, l);
}

static void lease_renew_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	lease_send(container_of(w, struct etcd_lease, renew));
}

static void lease_expiry_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct etcd_lease *l = container_of(w, struct etcd_lease, expiry);
	char why[128];

	(void)loop, (void)revents;
	snprintf(why, sizeof why, "not renewed in time (ttl %lld s, given up %.2g s before it can expire)",
		 (long long)l->ttl, lease_margin(l));
	lease_lost(l, why);
}

static struct etcd_lease *lease_new(struct etcd_client *c, int64_t ttl, double margin,
				    double period, const struct etcd_lease_cbs *cbs, void *arg)
{
	struct etcd_lease *l = calloc(1, sizeof *l);

	if (!l) {
		log_warn("etcd lease: out of memory");
		return NULL;
	}
	l->c = c;
	l->ttl = ttl;
	l->margin = margin;
	l->period = period;
	l->cbs = *cbs;
	l->arg = arg;
	ev_timer_init(&l->renew, lease_renew_fired, period, period);
	ev_timer_init(&l->expiry, lease_expiry_fired, 0., 0.);
	ev_timer_start(c->loop, &l->renew);
	lease_send(l);
	return l;
}

struct etcd_lease *etcd_lease_new(struct etcd_client *c, int64_t ttl,
				  const struct etcd_lease_cbs *cbs, void *arg)
{
	if (ttl < 2)
		ttl = 2;
	return lease_new(c, ttl, (double)ttl / 4 > 1 ? (double)ttl / 4 : 1, (double)ttl / 3, cbs, arg);
}

struct etcd_lease *etcd_lease_new_fence(struct etcd_client *c, int64_t ttl, double margin,
					const struct etcd_lease_cbs *cbs, void *arg)
{
	if (ttl < 1)
		ttl = 1;
	if (margin <= 0 || margin >= (double)ttl)
		margin = (double)ttl / 2;
	return lease_new(c, ttl, margin, ((double)ttl - margin) / 3, cbs, arg);
}

int etcd_lease_check(struct etcd_lease *l)
{
	double late = l && l->give_up_at > 0 ? mono_now() - l->give_up_at : -1;
	char why[160];

	if (late < 0)
		return 0;
	if (late < l->period) { /* the expiry timer's own time, checked first */
		lease_expiry_fired(l->c->loop, &l->expiry, 0);
		return 1;
	}
	snprintf(why, sizeof why, "its deadline passed %.1f s ago, while this process was stopped "
		 "or starved", late);
	lease_lost(l, why);
	return 1;
}

int64_t etcd_lease_id(const struct etcd_lease *l)
{
	return l->id;
}

void etcd_lease_free(struct etcd_lease *l)
{
	if (!l)
		return;
	ev_timer_stop(l->c->loop, &l->renew);
	ev_timer_stop(l->c->loop, &l->expiry);
	etcd_req_free(l->req);
	free(l);
}

void etcd_lease_release(struct etcd_lease *l)
{
	if (l && l->id)
		etcd_lease_revoke(l->c, l->id, NULL, NULL);
	etcd_lease_free(l);
}

/* ---- campaigns ------------------------------------------------------------------------------- */

struct etcd_campaign {
	struct etcd_client *c;
	char *name;
	etcd_leader_cb cb;
	void *arg;
	struct etcd_req *req;        /* the campaign, pending until we lead */
	json_object *leader;         /* etcd's answer, given back to resign */
};

static void campaign_done(struct etcd_req *r, json_object *json, const char *err, int code)
{
	struct etcd_campaign *cp = r->owner;
	json_object *leader = etcd_json_get(json, "leader");
	struct etcd_leader l = { .name = cp->name };
	const char *key64 = json_object_get_string(etcd_json_get(leader, "key"));
	char *key = NULL;
	size_t len;

	(void)code;
	cp->req = NULL;
	if (err || !leader) {
		cp->cb(cp->arg, NULL, err ? err : "etcd campaign: no leader in the answer");
		return;
	}
	cp->leader = json_object_get(leader);
	key = key64 ? etcd_b64_decode(key64, strlen(key64), &len) : NULL;
	l.key = key ? key : "";
	l.rev = etcd_json_i64(leader, "rev");
	l.lease = etcd_json_i64(leader, "lease");
	cp->cb(cp->arg, &l, NULL);
	free(key);
}

struct etcd_campaign *etcd_campaign_new(struct etcd_client *c, const char *name,
					const void *value, size_t len, int64_t lease,
					etcd_leader_cb cb, void *arg)
{
	struct etcd_campaign *cp = calloc(1, sizeof *cp);
	json_object *body = json_object_new_object();

	if (!cp || !(cp->name = strdup(name))) {
		free(cp);
		json_object_put(body);
		log_warn("etcd campaign %s: out of memory", name);
		return NULL;
	}
	cp->c = c;
	cp->cb = cb;
	cp->arg = arg;
	etcd_json_add_b64(body, "name", name, strlen(name));
	etcd_json_add_b64(body, "value", value, len);
	etcd_json_add_i64(body, "lease", lease);
	/* no deadline: etcd answers when we lead; a broken one is sent again */
	cp->req = etcd_req_new(c, "/v3/election/campaign", etcd_json_body(body), 0);
	if (!cp->req) {
		free(cp->name);
		free(cp);
		return NULL;
	}
	cp->req->owner = cp;
	cp->req->done = campaign_done;
	etcd_req_submit(cp->req);
	return cp;
}

int etcd_campaign_leading(const struct etcd_campaign *cp)
{
	return cp->leader != NULL;
}

void etcd_campaign_resign(struct etcd_campaign *cp, etcd_cb done, void *arg)
{
	if (!cp)
		return;
	etcd_req_free(cp->req); /* a pending campaign: etcd drops our candidacy */
	if (cp->leader) {
		json_object *body = json_object_new_object();
		json_object_object_add(body, "leader", cp->leader);
		etcd_op_start(cp->c, "/v3/election/resign", body, done, arg);
	}
	free(cp->name);
	free(cp);
}
