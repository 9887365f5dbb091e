/* legion_internal.h — private to the legions' two files: legion.c (etcd: member key,
 * watch, lease, campaign for the lord key, the state machine) and legion_lord.c (the
 * lord-only children and hooks, the status and metrics lines). One struct legion per
 * legion of the config, all of them in the master's struct legions. */
#ifndef EMPEROR_LEGION_INTERNAL_H
#define EMPEROR_LEGION_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "legion.h"

#define LEGION_MAX_MEMBERS 256

struct legion {
	struct legions *all;
	size_t index;               /* its entry: m->cfg->legions[index] (the config may be
				     * replaced by a workers or chain reload; the entry is equal) */
	enum legion_state state;
	struct etcd_client *etcd;
	struct etcd_lease *lease;
	int64_t id;                 /* our lease = our member id; 0 without one */
	struct etcd_watch *watch;
	struct etcd_req *req;       /* the one etcd step in flight */
	char *prefix, *members_prefix, *lord_key, *member_key;
	struct legion_member members[LEGION_MAX_MEMBERS];
	size_t n_members;
	int64_t lord;               /* the lord key's lease, 0: no lord */
	int64_t token;              /* the lord key's create_revision while we lead */
	int stopping;               /* lord-only children still stopping */
	int64_t stale_id;           /* a lease the keeper gave up: revoked again if it holds the key */
	unsigned transitions;       /* times we became lord or stopped being it */
	double lord_since;
	ev_timer retry;             /* a failed step, a new lease after a loss */
	ev_timer leave_bound;
};

struct legions {
	struct master *m;
	struct legion *l;
	size_t n;
	size_t leaving;             /* legions whose leave is not done yet */
	bool ready;                 /* what our member keys say (legion_set_ready) */
	ev_check resume;            /* each iteration, first: a lease past its deadline */
	void (*left)(void *arg);
	void *left_arg;
};

#define LCFG(l) (&(l)->all->m->cfg->legions[(l)->index])

/* legion_lord.c: on becoming lord, start the on-lord hook and the lord-only children. */
void legion_enthrone(struct legion *l);
/* Stops what only the lord runs; max_mercy bounds each one's mercy. The on-unlord hook
 * follows when they are gone, then legion_unlorded(). */
void legion_stop_lord_children(struct legion *l, double max_mercy);
/* A stop under way (stepping down, the lease lost meanwhile): only the mercies shorten. */
void legion_hasten_lord_children(struct legion *l, double max_mercy);
/* legion.c: the lord-only children are gone and on-unlord has run (LE_CHILDREN_GONE). */
void legion_unlorded(struct legion *l);

#endif
