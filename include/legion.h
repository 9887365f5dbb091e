/* legion.h — legions (vassal/legion.c, docs/cluster.md): this vassal is a member of
 * each legion of its config; etcd (include/etcd.h) elects one lord per legion, the
 * highest-valor member; only the lord runs the legion's daemons, crons, hooks and
 * subscriptions. A lord that cannot renew its lease stops them before the lease can
 * expire, so two lords never overlap. */
#ifndef EMPEROR_LEGION_H
#define EMPEROR_LEGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct master;

/* ---- the pure part (tests/unit/test_legion.c) -------------------------------------- */

struct legion_member {
	int64_t id;          /* its lease */
	int valor;
	int64_t create_rev;  /* when it joined: the longest-standing has the lowest */
	bool ready;          /* its master runs with every worker ready */
};

/* The ready member that should lead: the highest valor; among equals the
 * longest-standing. NULL when none is ready. */
const struct legion_member *legion_best(const struct legion_member *m, size_t n);

enum legion_verdict {
	LV_WAIT,       /* nothing to do */
	LV_CAMPAIGN,   /* no lord and we are the best member: take the lord key */
	LV_STEP_DOWN,  /* we lead but a member of higher valor is there, or the key is not ours */
	LV_RELEASE,    /* the key is ours though we do not lead (a retried txn took it) and
			* another member is better: delete it */
};
/* self: our id; lord: the lord key's holder (0: none); leading: we act as lord. A
 * member that is not ready never campaigns; a lord hands over to a ready member of
 * higher valor only. A member that holds the key without leading (its txn was applied
 * but the answer lost) campaigns again if it is the best — the txn's failure branch
 * shows the key is its own: it leads — and releases the key otherwise. */
enum legion_verdict legion_decide(const struct legion_member *m, size_t n, int64_t self,
				  int64_t lord, bool leading);

/* The lease a member takes for a legion of `ttl` (the crash failover bound), whole
 * seconds: ttl - 0.5 rounded down, at least 1. etcd revokes an expired lease at its next
 * check (every 0.5 s), so a crashed lord's lease is gone by lease + 0.5 s, and the
 * handover (watch, campaign, the new lord's daemons) has what is left of ttl + 0.5 s. */
int64_t legion_lease_ttl(double ttl);

/* A membership's life: one transition table (legion_fsm.c), every change logged by
 * legion.c. A lord's way out has a state per step, so the status shows where it is:
 * stepping down (outranked) or fencing (the lease lost) while its lord-only children
 * stop and on-unlord runs; releasing while the lord key is deleted after a step-down. */
enum legion_state {
	LG_OFF,         /* no lease: etcd not reached yet, or the lease was lost (fenced) */
	LG_JOINING,     /* lease granted: our member key is put, the legion read */
	LG_MEMBER,      /* a member, not lord */
	LG_CAMPAIGN,    /* the txn that takes the lord key is in flight */
	LG_LORD,        /* lord: the lord-only children run */
	LG_STEPPING_DOWN, /* outranked: lord-only children stopping, then on-unlord */
	LG_RELEASING,   /* stepped down: the lord key's deletion (guarded by our lease) */
	LG_FENCING,     /* the lease lost while lord (or stepping down): the lord-only
			 * children stopping within the margin, then on-unlord; the lost lease
			 * is revoked only then. A new lease may be taken and our member key put
			 * meanwhile; no campaign before the children are gone */
	LG_LEAVING,     /* the master tears down: the same, then the lease revoked */
	LG_GONE,        /* left the legion for good */
	LG_NSTATES
};
enum legion_event {
	LE_GRANTED,     /* the lease keeper has a lease (etcd back, after a loss) */
	LE_JOINED,      /* member key put and legion read */
	LE_CAMPAIGN,    /* legion_decide: LV_CAMPAIGN */
	LE_WON,         /* the txn took the lord key */
	LE_BEATEN,      /* the txn found the key taken, or failed */
	LE_OUTRANKED,   /* legion_decide: LV_STEP_DOWN */
	LE_CHILDREN_GONE, /* the lord-only children are reaped and on-unlord has run */
	LE_DOWN,        /* the lord key is deleted */
	LE_LEASE_LOST,  /* the keeper's "lost" (etcd unreachable, the link cut, a stall) */
	LE_TEARDOWN,    /* the master's graceful reload or stop */
	LE_LEFT,        /* the lease is revoked (or given up on) */
	LE_NEVENTS
};
enum legion_action {
	LA_IMPOSSIBLE,  /* logged, ignored (0: a cell the table left out) */
	LA_NONE,
	LA_JOIN,        /* put the member key, read the legion */
	LA_EVALUATE,    /* legion_decide on what we know */
	LA_CAMPAIGN,    /* txn: lord key absent → put it under our lease */
	LA_ENTHRONE,    /* start the lord-only children, on-lord, subscriptions */
	LA_STEP_DOWN,   /* stop the lord-only children, then on-unlord */
	LA_RELEASE,     /* delete the lord key (a txn guarded by our lease) */
	LA_FENCE,       /* give the lease up; stop the lord-only children now (mercy within
			 * the margin), then on-unlord; a new lease later */
	LA_HASTEN,      /* the same while they already stop: only their mercies shorten */
	LA_UNFENCE,     /* revoke the lease given up; a lease granted meanwhile joins now */
	LA_REJOIN,      /* give the lease up and revoke it (nothing of a lord runs); a new
			 * lease later */
	LA_LEAVE,       /* stop what runs, on-unlord if lord, then LA_REVOKE */
	LA_REVOKE,      /* revoke the lease (our keys go with it), bounded in time */
	LA_DONE,        /* tell the teardown */
};
struct legion_step {
	enum legion_state next;
	enum legion_action action;
};
struct legion_step legion_fsm_next(enum legion_state s, enum legion_event ev);
const char *legion_state_name(enum legion_state s);
const char *legion_event_name(enum legion_event e);
/* The status's word for a membership in s ("lord", "fencing (...)"). */
const char *legion_state_status(enum legion_state s);

/* ---- the master's side ----------------------------------------------------------------- */

/* Joins every legion of m->cfg (m->legions). Without legions, nothing at all. */
int legion_start(struct master *m);
/* The teardown's step 5: every legion stops its lord-only children, runs on-unlord if
 * lord, and revokes its lease (the lord key goes with it: a peer leads at once).
 * done(arg) when all have (at once if there is nothing to do). Returns 0 if done
 * already, 1 if done() will be called. */
int legion_announce_death(struct master *m, void (*done)(void *arg), void *arg);
/* The master is ready (started or reloaded, every worker ready) or not: members say
 * so in their member key, and only a ready member leads. */
void legion_set_ready(struct master *m, bool ready);
/* True while this vassal is lord of legion; its fencing token in *token. */
bool legion_is_lord(const struct master *m, const char *legion, int64_t *token);
/* The status socket's lines, JSON and metrics. */
void legion_status_text(const struct master *m, struct strbuf *b);
struct json_object;
void legion_status_json(const struct master *m, struct json_object *doc);
void legion_metrics(const struct master *m, struct strbuf *b, const char *vassal_label);

#endif
