/* legion.c — the master's legions (docs/cluster.md). Per legion of the config: an etcd
 * client, a lease keeper, our member key PREFIX/legion/NAME/members/<lease hex> =
 * {"valor":N,...} under the lease, and a watch on PREFIX/legion/NAME/ that keeps the
 * members and the lord key PREFIX/legion/NAME/lord in view. A member that is the best
 * (legion_decide) takes the lord key with a txn `create_revision == 0` under its lease;
 * a lord that sees a higher valor stops its lord-only children, runs on-unlord and
 * deletes the key. A lord whose lease is lost (the keeper says so before the lease can
 * expire) stops them at once: fenced. The machine is legion_fsm.c; fire() is the one
 * place a membership changes state, and it logs every change. What being lord starts
 * and stops on this master, and the status lines, are legion_lord.c. */
#include "legion.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd.h"
#include "log.h"
#include "master.h"

#include "legion_internal.h"

#define LEGION_RETRY 0.5        /* s before a failed etcd step is tried again */
#define LEGION_LEAVE_BOUND 2.0  /* s the teardown waits for etcd to take our leave */

static void fire(struct legion *l, enum legion_event ev);
static void revoke_stale(struct legion *l);

/* The one retry timer, (re)armed: stopped first, for it may be pending already (a
 * failed read's, when the lease is lost) and libev's timer must not be set while active. */
static void retry_in(struct legion *l, double after)
{
	ev_timer_stop(l->all->m->loop, &l->retry);
	ev_timer_set(&l->retry, after, 0);
	ev_timer_start(l->all->m->loop, &l->retry);
}

static void forget_req(struct legion *l)
{
	if (l->req)
		etcd_cancel(l->req);
	l->req = NULL;
}

static void ignore_answer(void *arg, const struct etcd_result *r)
{
	(void)arg, (void)r;
}

/* The lord gives its lease up half of it before it can expire (fencing by time): its
 * lord-only children get half of that as mercy, then SIGKILL. */
static double margin(const struct legion *l)
{
	return (double)legion_lease_ttl(LCFG(l)->ttl) / 2;
}

/* ---- what we know of the legion ----------------------------------------------------- */

static int64_t member_id_of(const struct legion *l, const char *key)
{
	size_t n = strlen(l->members_prefix);

	return strncmp(key, l->members_prefix, n) == 0 ? strtoll(key + n, NULL, 16) : 0;
}

static void member_remove(struct legion *l, int64_t id)
{
	for (size_t i = 0; i < l->n_members; i++)
		if (l->members[i].id == id) {
			l->members[i] = l->members[--l->n_members];
			return;
		}
}

static void member_put(struct legion *l, const struct etcd_kv *kv, int64_t id)
{
	struct json_object *doc = json_tokener_parse(kv->value), *v;
	struct legion_member mb = { .id = id, .create_rev = kv->create_revision };

	if (doc && json_object_object_get_ex(doc, "valor", &v))
		mb.valor = json_object_get_int(v);
	if (doc && json_object_object_get_ex(doc, "ready", &v))
		mb.ready = json_object_get_boolean(v);
	json_object_put(doc);
	member_remove(l, id);
	if (l->n_members < LEGION_MAX_MEMBERS)
		l->members[l->n_members++] = mb;
}

static void learn_kv(struct legion *l, const struct etcd_kv *kv, bool deleted)
{
	int64_t id;

	if (strcmp(kv->key, l->lord_key) == 0) {
		l->lord = deleted ? 0 : kv->lease;
		if (!deleted && kv->lease == l->id)
			l->token = kv->create_revision;
	} else if ((id = member_id_of(l, kv->key)) != 0) {
		if (deleted)
			member_remove(l, id);
		else
			member_put(l, kv, id);
	}
}

static void ignore_answer(void *arg, const struct etcd_result *r);

/* The lord key is ours though we never led (our campaign's txn was applied, its answer
 * lost) and a better member waits: delete it, guarded by our lease; the watch tells. */
static void release_stale(struct legion *l)
{
	const struct etcd_cmp cmp = { l->lord_key, ETCD_CMP_LEASE, ETCD_CMP_EQUAL, l->id, NULL };
	const struct etcd_op del = { .type = ETCD_OP_DELETE, .key = l->lord_key };

	log_info("legion %s: releasing the lord key our lost campaign took", LCFG(l)->name);
	etcd_txn(l->etcd, &(struct etcd_txn){ &cmp, 1, &del, NULL, 1, 0 }, ignore_answer, NULL);
}

/* EMPEROR_DEBUG=1: what a decision was made from. */
static void log_view(const struct legion *l, enum legion_verdict v)
{
	static const char *const verdicts[] = { "wait", "campaign", "step down", "release" };
	char buf[512];
	size_t k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n_members && k + 64 < sizeof buf; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, " %llx:%d%s@%lld",
				      (unsigned long long)l->members[i].id, l->members[i].valor,
				      l->members[i].ready ? "" : "(not ready)",
				      (long long)l->members[i].create_rev);
	log_debug("legion %s: %s; we are %llx, lord %llx, members%s", LCFG(l)->name, verdicts[v],
		  (unsigned long long)l->id, (unsigned long long)l->lord, buf);
}

static void evaluate(struct legion *l)
{
	bool leading = l->state == LG_LORD;
	enum legion_verdict v;

	if (l->state != LG_MEMBER && l->state != LG_LORD)
		return;
	v = legion_decide(l->members, l->n_members, l->id, l->lord, leading);
	log_view(l, v);
	switch (v) {
	case LV_CAMPAIGN:
		/* Not once the master tears down (a fenced lordship's children still
		 * stopping: FENCING, where nothing is evaluated). */
		if (!l->all->m->child_hooks.tearing_down(l->all->m))
			fire(l, LE_CAMPAIGN);
		break;
	case LV_STEP_DOWN: fire(l, LE_OUTRANKED); break;
	case LV_RELEASE: release_stale(l); break;
	case LV_WAIT: break;
	}
}

/* ---- watch ---------------------------------------------------------------------------- */

static void watched(void *arg, const struct etcd_event *ev, size_t n)
{
	struct legion *l = arg;

	for (size_t i = 0; i < n; i++)
		learn_kv(l, &ev[i].kv, ev[i].type == ETCD_EVENT_DELETE);
	evaluate(l);
}

static void reread(struct legion *l);

static void watch_resync(void *arg, int64_t compact_revision)
{
	(void)compact_revision;
	reread(arg);
}

/* ---- joining: our member key, then the legion as it is -------------------------------- */

static void read_answer(void *arg, const struct etcd_result *r)
{
	struct legion *l = arg;
	static const struct etcd_watch_cbs cbs = { NULL, watched, watch_resync };

	l->req = NULL;
	if (r->error) {
		log_warn("legion %s: reading %s: %s; retrying", LCFG(l)->name, l->prefix, r->error);
		retry_in(l, LEGION_RETRY);
		return;
	}
	l->n_members = 0;
	l->lord = 0;
	for (size_t i = 0; i < r->n_kvs; i++)
		learn_kv(l, &r->kvs[i], false);
	/* etcd restarted keeps the lease we gave up alive for another ttl: end it now (once
	 * a fenced lordship's children are gone) */
	if (l->stale_id && l->lord == l->stale_id && l->state != LG_FENCING)
		revoke_stale(l);
	if (!l->watch)
		l->watch = etcd_watch_new(l->etcd, l->prefix, ETCD_PREFIX, r->revision + 1, &cbs, l);
	else
		etcd_watch_restart(l->watch, r->revision + 1);
	if (l->state == LG_JOINING || l->state == LG_FENCING)
		fire(l, LE_JOINED);
	else
		evaluate(l);
}

static void reread(struct legion *l)
{
	forget_req(l);
	l->req = etcd_range(l->etcd, l->prefix, ETCD_PREFIX, 0, read_answer, l);
}

static void put_answer(void *arg, const struct etcd_result *r)
{
	struct legion *l = arg;

	l->req = NULL;
	if (r->error) {
		log_warn("legion %s: putting %s: %s; retrying", LCFG(l)->name, l->member_key, r->error);
		retry_in(l, LEGION_RETRY);
		return;
	}
	reread(l);
}

static void join(struct legion *l)
{
	struct master *m = l->all->m;
	char value[256];
	int n;

	free(l->member_key);
	if (asprintf(&l->member_key, "%s%llx", l->members_prefix, (unsigned long long)l->id) < 0) {
		l->member_key = NULL;
		log_errno("legion %s: member key", LCFG(l)->name);
		return;
	}
	n = snprintf(value, sizeof value, "{\"valor\":%d,\"ready\":%s,\"vassal\":\"%s\",\"pid\":%d}",
		     LCFG(l)->valor, l->all->ready ? "true" : "false", m->cfg->name, (int)getpid());
	forget_req(l);
	l->req = etcd_put(l->etcd, l->member_key, value, (size_t)n, l->id, put_answer, l);
}

static void retry_due(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- the lease -------------------------------------------------------------------------- */

static void lease_granted(void *arg, int64_t id)
{
	struct legion *l = arg;

	l->id = id;
	fire(l, LE_GRANTED);
}

static void lease_lost(void *arg, const char *why)
{
	struct legion *l = arg;

	log_warn("legion %s: lease lost (%s)%s", LCFG(l)->name, why,
		 l->state == LG_LORD ? ": fencing before it can expire" : "");
	fire(l, LE_LEASE_LOST);
}

static void new_lease(struct legion *l)
{
	static const struct etcd_lease_cbs cbs = { lease_granted, lease_lost };

	l->lease = etcd_lease_new_fence(l->etcd, legion_lease_ttl(LCFG(l)->ttl), margin(l), &cbs, l);
	if (!l->lease)
		retry_in(l, 1.0);
}

/* The keeper gave the lease up: it may still live on the server a while (and the lord
 * key with it). A new lease after a pause; the old one is revoked by revoke_stale(). */
static void give_up_lease(struct legion *l)
{
	forget_req(l);
	if (l->lease)
		etcd_lease_free(l->lease);
	l->lease = NULL;
	l->stale_id = l->id;
	l->id = 0;
	retry_in(l, LEGION_RETRY);
}

/* Revoking the lease given up (if etcd answers) lets the others elect at once: a member
 * does it at once, a fenced lord only once its lord-only children are gone and
 * on-unlord has run (FENCING, then LA_UNFENCE) — before, a revoke that etcd takes (the
 * lease was lost to slow renewals, not to an outage) would let a peer lead beside them. */
static void revoke_stale(struct legion *l)
{
	if (l->stale_id && l->etcd)
		etcd_lease_revoke(l->etcd, l->stale_id, ignore_answer, NULL);
}

static void release_key(struct legion *l);

/* What a failed step (or a lease given up) tries again depends on the state only. */
static void retry_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct legion *l = container_of(w, struct legion, retry);
	bool fenced = l->state == LG_OFF || l->state == LG_FENCING;

	(void)loop, (void)revents;
	if (fenced && !l->lease)
		new_lease(l);
	else if (l->state == LG_JOINING || (l->state == LG_FENCING && l->id))
		join(l);
	else if (l->state == LG_MEMBER || l->state == LG_LORD)
		reread(l);
	else if (l->state == LG_RELEASING)
		release_key(l); /* the key's deletion failed: again */
}

/* ---- lordship ------------------------------------------------------------------------- */

static void campaign_answer(void *arg, const struct etcd_result *r)
{
	struct legion *l = arg;

	l->req = NULL;
	if (r->error || !r->succeeded) {
		if (r->error)
			log_warn("legion %s: taking the lord key: %s", LCFG(l)->name, r->error);
		for (size_t i = 0; !r->error && i < r->n_kvs; i++)
			learn_kv(l, &r->kvs[i], false);
		if (!r->error && l->lord == l->id) {
			/* an earlier attempt of ours took it (its answer was lost) */
			log_info("legion %s: the lord key is already ours (token %lld)", LCFG(l)->name,
				 (long long)l->token);
			fire(l, LE_WON);
			return;
		}
		fire(l, LE_BEATEN);
		if (r->error)
			retry_in(l, LEGION_RETRY);
		return;
	}
	l->lord = l->id;
	l->token = r->revision; /* the txn's revision is the key's create_revision */
	fire(l, LE_WON);
}

static void campaign(struct legion *l)
{
	char value[32];
	int n = snprintf(value, sizeof value, "%llx", (unsigned long long)l->id);
	const struct etcd_cmp cmp = { l->lord_key, ETCD_CMP_CREATE, ETCD_CMP_EQUAL, 0, NULL };
	const struct etcd_op put = { .type = ETCD_OP_PUT, .key = l->lord_key, .value = value,
				     .value_len = (size_t)n, .lease = l->id };
	const struct etcd_op get = { .type = ETCD_OP_RANGE, .key = l->lord_key };

	forget_req(l);
	l->req = etcd_txn(l->etcd, &(struct etcd_txn){ &cmp, 1, &put, &get, 1, 1 }, campaign_answer, l);
}

static void delete_answer(void *arg, const struct etcd_result *r)
{
	struct legion *l = arg;

	l->req = NULL;
	if (r->error) {
		log_warn("legion %s: deleting the lord key: %s; retrying", LCFG(l)->name, r->error);
		retry_in(l, LEGION_RETRY);
		return;
	}
	l->lord = 0;
	fire(l, LE_DOWN);
}

/* Stepped down: the lord key goes, guarded by our lease. */
static void release_key(struct legion *l)
{
	const struct etcd_cmp cmp = { l->lord_key, ETCD_CMP_LEASE, ETCD_CMP_EQUAL, l->id, NULL };
	const struct etcd_op del = { .type = ETCD_OP_DELETE, .key = l->lord_key };

	forget_req(l);
	l->req = etcd_txn(l->etcd, &(struct etcd_txn){ &cmp, 1, &del, NULL, 1, 0 }, delete_answer, l);
}

/* The lord-only children are gone and on-unlord has run. */
void legion_unlorded(struct legion *l)
{
	fire(l, LE_CHILDREN_GONE);
}

/* Fenced, the children gone: the lease given up may go now (the lord key with it); a
 * lease granted during the fence is taken up as if granted now. */
static void unfence(struct legion *l)
{
	revoke_stale(l);
	if (l->id)
		fire(l, LE_GRANTED);
}

/* ---- leaving (the teardown) ------------------------------------------------------------- */

static void revoke_answer(void *arg, const struct etcd_result *r)
{
	struct legion *l = arg;

	l->req = NULL;
	if (r->error)
		log_warn("legion %s: revoking our lease: %s", LCFG(l)->name, r->error);
	else
		log_info("legion %s: left (lease revoked)", LCFG(l)->name);
	fire(l, LE_LEFT);
}

static void leave_bound_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct legion *l = container_of(w, struct legion, leave_bound);

	(void)loop, (void)revents;
	log_warn("legion %s: etcd did not take our leave within %.1fs; the lease expires by "
		 "itself", LCFG(l)->name, LEGION_LEAVE_BOUND);
	forget_req(l);
	fire(l, LE_LEFT);
}

static void leave_done(struct legion *l)
{
	forget_req(l);
	if (l->lease)
		etcd_lease_free(l->lease);
	l->lease = NULL;
	if (!l->id) {
		revoke_stale(l); /* fenced before: a peer need not wait for it to expire */
		fire(l, LE_LEFT);
		return;
	}
	ev_timer_set(&l->leave_bound, LEGION_LEAVE_BOUND, 0);
	ev_timer_start(l->all->m->loop, &l->leave_bound);
	l->req = etcd_lease_revoke(l->etcd, l->id, revoke_answer, l);
}

static void leave(struct legion *l, enum legion_state was)
{
	ev_timer_stop(l->all->m->loop, &l->retry);
	forget_req(l);
	if (l->watch)
		etcd_watch_free(l->watch);
	l->watch = NULL;
	if (was == LG_LORD)
		legion_stop_lord_children(l, 1e9);
	else if (was != LG_STEPPING_DOWN && was != LG_FENCING)
		leave_done(l);
	/* else: the children already stopping; then LE_CHILDREN_GONE → leave_done() */
}

/* ---- the machine ---------------------------------------------------------------------- */

static void act(struct legion *l, enum legion_action a, enum legion_state was)
{
	switch (a) {
	case LA_NONE: case LA_IMPOSSIBLE: break;
	case LA_JOIN: join(l); break;
	case LA_EVALUATE: evaluate(l); break;
	case LA_CAMPAIGN: campaign(l); break;
	case LA_ENTHRONE:
		legion_enthrone(l);
		evaluate(l); /* a better member may have joined while we campaigned */
		break;
	case LA_STEP_DOWN: legion_stop_lord_children(l, 1e9); break;
	case LA_RELEASE: release_key(l); break;
	/* The lease given up first: children gone at once go straight to LA_UNFENCE. */
	case LA_FENCE: give_up_lease(l); legion_stop_lord_children(l, margin(l) / 2); break;
	case LA_HASTEN: give_up_lease(l); legion_hasten_lord_children(l, margin(l) / 2); break;
	case LA_UNFENCE: unfence(l); break;
	case LA_REJOIN: give_up_lease(l); revoke_stale(l); break;
	case LA_LEAVE: leave(l, was); break;
	case LA_REVOKE: leave_done(l); break;
	case LA_DONE:
		ev_timer_stop(l->all->m->loop, &l->leave_bound);
		if (l->all->leaving > 0 && --l->all->leaving == 0 && l->all->left)
			l->all->left(l->all->left_arg);
		break;
	}
}

static void fire(struct legion *l, enum legion_event ev)
{
	enum legion_state was = l->state;
	struct legion_step t = legion_fsm_next(was, ev);

	if (t.action == LA_IMPOSSIBLE)
		log_warn("legion %s: %s while %s cannot happen; ignored", LCFG(l)->name,
			 legion_event_name(ev), legion_state_name(was));
	else if (t.next != was || t.action != LA_NONE) /* or a step within FENCING, LEAVING */
		log_info("legion %s: %s --%s--> %s", LCFG(l)->name, legion_state_name(was),
			 legion_event_name(ev), legion_state_name(t.next));
	l->state = t.next;
	act(l, t.action, was);
}

/* ---- a stopped or starved loop -------------------------------------------------------- */

/* First thing in every iteration of the master's loop: a master that was stopped
 * (SIGSTOP) or starved past its lease's give-up time finds timers and answers due in no
 * set order; a cron's tick or a watch event must not act on a lordship a peer may hold
 * by now. The lease is lost at once: the lord fences (its children get their stop
 * signal now, within the margin's mercy), before any other callback. */
static void resume_check(struct ev_loop *loop, ev_check *w, int revents)
{
	struct legions *all = container_of(w, struct legions, resume);

	(void)loop, (void)revents;
	for (size_t i = 0; i < all->n; i++)
		if (all->l[i].lease)
			etcd_lease_check(all->l[i].lease); /* lost() → LE_LEASE_LOST */
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* The endpoints: the legion's etcd:, else $EMPEROR_ETCD (comma-separated). */
static struct etcd_client *client_for(struct master *m, const struct cfg_legion *c)
{
	const char *env = getenv("EMPEROR_ETCD");
	char *copy = NULL, *save = NULL;
	const char *eps[16];
	int n = 0;

	for (size_t i = 0; c->etcd && c->etcd[i] && n < 16; i++)
		eps[n++] = c->etcd[i];
	if (n == 0 && env && (copy = strdup(env)))
		for (char *s = strtok_r(copy, ",", &save); s && n < 16; s = strtok_r(NULL, ",", &save))
			eps[n++] = s;
	if (n == 0) {
		log_warn("legion %s: no etcd endpoint (give legions[].etcd or EMPEROR_ETCD): this "
			 "vassal is never its lord", c->name);
		return NULL;
	}
	/* Short budgets: a lease's renewal must get through well within ttl - margin, and
	 * after an outage the client retries (and the keeper renews) within 0.5 s. */
	struct etcd_client *cl = etcd_client_new(m->loop, &(struct etcd_opts){
		.endpoints = eps, .n_endpoints = n, .request_timeout = 2, .backoff_max = 0.5 });
	free(copy);
	return cl;
}

static int legion_init(struct legions *all, struct legion *l, const struct cfg_legion *c)
{
	const char *prefix = getenv("EMPEROR_ETCD_PREFIX");

	l->all = all;
	l->index = (size_t)(c - all->m->cfg->legions);
	ev_timer_init(&l->retry, retry_due, LEGION_RETRY, 0);
	ev_timer_init(&l->leave_bound, leave_bound_due, LEGION_LEAVE_BOUND, 0);
	if (!prefix || !*prefix)
		prefix = "/emperor";
	if (asprintf(&l->prefix, "%s/legion/%s/", prefix, c->name) < 0 ||
	    asprintf(&l->members_prefix, "%smembers/", l->prefix) < 0 ||
	    asprintf(&l->lord_key, "%slord", l->prefix) < 0) {
		log_errno("legion %s", c->name);
		return -1;
	}
	if (!(l->etcd = client_for(all->m, c)))
		return 0; /* stays off: logged */
	log_info("legion %s: joining with valor %d (ttl %gs: a lease of %llds) under %s", c->name,
		 c->valor, c->ttl, (long long)legion_lease_ttl(c->ttl), l->prefix);
	new_lease(l);
	return 0;
}

int legion_start(struct master *m)
{
	struct legions *all;
	int rc = 0;

	if (!m->cfg->n_legions)
		return 0;
	all = calloc(1, sizeof *all);
	if (!all || !(all->l = calloc(m->cfg->n_legions, sizeof *all->l))) {
		log_errno("legions: calloc");
		free(all);
		return -1;
	}
	all->m = m;
	all->n = m->cfg->n_legions;
	m->legions = all;
	ev_check_init(&all->resume, resume_check);
	ev_set_priority(&all->resume, EV_MAXPRI);
	ev_check_start(m->loop, &all->resume);
	ev_unref(m->loop); /* it never keeps the loop alive by itself */
	for (size_t i = 0; i < all->n; i++)
		if (legion_init(all, &all->l[i], &m->cfg->legions[i]) < 0)
			rc = -1;
	return rc;
}

int legion_announce_death(struct master *m, void (*done)(void *arg), void *arg)
{
	struct legions *all = m->legions;

	if (!all)
		return 0;
	all->left = done;
	all->left_arg = arg;
	all->leaving = 1; /* held while each is told */
	for (size_t i = 0; i < all->n; i++) {
		if (all->l[i].state == LG_GONE)
			continue;
		all->leaving++;
		if (all->l[i].state != LG_LEAVING)
			fire(&all->l[i], LE_TEARDOWN);
	}
	if (--all->leaving == 0)
		return 0;
	return 1;
}

/* Our member key says whether we are ready: put again (same key, same create
 * revision: still as long-standing) when that changes. */
void legion_set_ready(struct master *m, bool ready)
{
	struct legions *all = m->legions;

	if (!all || all->ready == ready)
		return;
	all->ready = ready;
	for (size_t i = 0; i < all->n; i++) {
		struct legion *l = &all->l[i];
		if (l->state == LG_JOINING || l->state == LG_MEMBER || l->state == LG_LORD ||
		    (l->state == LG_FENCING && l->id))
			join(l); /* puts the key, reads the legion, evaluates */
	}
}

static const struct legion *find(const struct master *m, const char *name)
{
	for (size_t i = 0; m->legions && i < m->legions->n; i++)
		if (strcmp(LCFG(&m->legions->l[i])->name, name) == 0)
			return &m->legions->l[i];
	return NULL;
}

bool legion_is_lord(const struct master *m, const char *legion, int64_t *token)
{
	const struct legion *l = find(m, legion);

	if (!l || l->state != LG_LORD)
		return false;
	if (token)
		*token = l->token;
	return true;
}
