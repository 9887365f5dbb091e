/* legion_fsm.c — the pure part of a legion membership (see legion.h): who should lead
 * among the members a vassal sees, and the membership's transition table, state × event
 * → next state, action, with the status's word for each state. No clock, no etcd:
 * tests/unit/test_legion.c walks it. */
#include "legion.h"

static const char *const state_names[LG_NSTATES] = {
	[LG_OFF] = "off", [LG_JOINING] = "joining", [LG_MEMBER] = "member",
	[LG_CAMPAIGN] = "campaigning", [LG_LORD] = "lord", [LG_STEPPING_DOWN] = "stepping down",
	[LG_RELEASING] = "releasing", [LG_FENCING] = "fencing", [LG_LEAVING] = "leaving",
	[LG_GONE] = "gone",
};

static const char *const event_names[LE_NEVENTS] = {
	[LE_GRANTED] = "lease granted", [LE_JOINED] = "joined", [LE_CAMPAIGN] = "best member",
	[LE_WON] = "won", [LE_BEATEN] = "beaten", [LE_OUTRANKED] = "outranked",
	[LE_CHILDREN_GONE] = "children gone", [LE_DOWN] = "key deleted",
	[LE_LEASE_LOST] = "lease lost", [LE_TEARDOWN] = "teardown", [LE_LEFT] = "left",
};

const char *legion_state_name(enum legion_state s)
{
	return s < LG_NSTATES ? state_names[s] : "?";
}

const char *legion_event_name(enum legion_event e)
{
	return e < LE_NEVENTS ? event_names[e] : "?";
}

const char *legion_state_status(enum legion_state s)
{
	switch (s) {
	case LG_OFF: return "fenced (no lease: etcd unreachable)";
	case LG_STEPPING_DOWN: return "stepping down (outranked: lord-only children stopping)";
	case LG_RELEASING: return "releasing (stepped down: deleting the lord key)";
	case LG_FENCING: return "fencing (lease lost: lord-only children stopping)";
	default: return legion_state_name(s);
	}
}

int64_t legion_lease_ttl(double ttl)
{
	int64_t lease = (int64_t)(ttl - 0.5); /* ttl >= 0.5: truncation is the floor */

	return ttl < 1.5 ? 1 : lease;
}

const struct legion_member *legion_best(const struct legion_member *m, size_t n)
{
	const struct legion_member *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (m[i].ready && (!best || m[i].valor > best->valor ||
				   (m[i].valor == best->valor && m[i].create_rev < best->create_rev)))
			best = &m[i];
	return best;
}

enum legion_verdict legion_decide(const struct legion_member *m, size_t n, int64_t self,
				  int64_t lord, bool leading)
{
	const struct legion_member *me = NULL, *best = legion_best(m, n);

	for (size_t i = 0; i < n; i++)
		if (m[i].id == self)
			me = &m[i];
	if (leading) {
		if (lord != self)
			return LV_STEP_DOWN; /* the key went (expired, deleted by hand) */
		/* Equal valor: the lord keeps it, however long the other has been there. */
		return me && best && best->valor > me->valor ? LV_STEP_DOWN : LV_WAIT;
	}
	if (lord == self && self != 0)
		return best == me ? LV_CAMPAIGN : LV_RELEASE;
	if (lord != 0 || !me || best != me)
		return LV_WAIT;
	return LV_CAMPAIGN;
}

/* ---- the machine ---------------------------------------------------------------------- */

#define GO(st, act) { LG_##st, LA_##act }
#define STAY(act) { LG_NSTATES, LA_##act } /* next: the same state */
#define NEVER STAY(IMPOSSIBLE)

/* Every state × event, each cell written (docs/cluster.md draws it). A lost lease: a
 * member takes a new one, a lord fences; the teardown: LEAVING from every live state. */
static const struct legion_step fsm[LG_NSTATES][LE_NEVENTS] = {
	[LG_OFF] = {
		[LE_GRANTED] = GO(JOINING, JOIN), [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER,
		[LE_WON] = NEVER, [LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER,
		[LE_CHILDREN_GONE] = NEVER, [LE_DOWN] = NEVER, [LE_LEASE_LOST] = GO(OFF, REJOIN),
		[LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	[LG_JOINING] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = GO(MEMBER, EVALUATE), [LE_CAMPAIGN] = NEVER,
		[LE_WON] = NEVER, [LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER,
		[LE_CHILDREN_GONE] = NEVER, [LE_DOWN] = NEVER, [LE_LEASE_LOST] = GO(OFF, REJOIN),
		[LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	[LG_MEMBER] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = GO(CAMPAIGN, CAMPAIGN),
		[LE_WON] = NEVER, [LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER,
		[LE_CHILDREN_GONE] = NEVER, [LE_DOWN] = NEVER, [LE_LEASE_LOST] = GO(OFF, REJOIN),
		[LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	[LG_CAMPAIGN] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER,
		[LE_WON] = GO(LORD, ENTHRONE), [LE_BEATEN] = GO(MEMBER, EVALUATE),
		[LE_OUTRANKED] = NEVER, [LE_CHILDREN_GONE] = NEVER, [LE_DOWN] = NEVER,
		[LE_LEASE_LOST] = GO(OFF, REJOIN), [LE_TEARDOWN] = GO(LEAVING, LEAVE),
		[LE_LEFT] = NEVER,
	},
	[LG_LORD] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER, [LE_WON] = NEVER,
		[LE_BEATEN] = NEVER, [LE_OUTRANKED] = GO(STEPPING_DOWN, STEP_DOWN),
		[LE_CHILDREN_GONE] = NEVER, [LE_DOWN] = NEVER, [LE_LEASE_LOST] = GO(FENCING, FENCE),
		[LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	[LG_STEPPING_DOWN] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER, [LE_WON] = NEVER,
		[LE_BEATEN] = NEVER, [LE_OUTRANKED] = STAY(NONE),
		[LE_CHILDREN_GONE] = GO(RELEASING, RELEASE), [LE_DOWN] = NEVER,
		[LE_LEASE_LOST] = GO(FENCING, HASTEN), [LE_TEARDOWN] = GO(LEAVING, LEAVE),
		[LE_LEFT] = NEVER,
	},
	/* The children are gone: a lost lease needs no fence, the key goes with it. */
	[LG_RELEASING] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER, [LE_WON] = NEVER,
		[LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER, [LE_CHILDREN_GONE] = NEVER,
		[LE_DOWN] = GO(MEMBER, EVALUATE), [LE_LEASE_LOST] = GO(OFF, REJOIN),
		[LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	/* etcd back: a new lease, our member key put (peers wait for us if we are the best),
	 * no campaign (evaluate decides nothing here) until the children are gone. That new
	 * lease lost too: given up and revoked, the fence goes on. */
	[LG_FENCING] = {
		[LE_GRANTED] = STAY(JOIN), [LE_JOINED] = STAY(NONE), [LE_CAMPAIGN] = NEVER,
		[LE_WON] = NEVER, [LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER,
		[LE_CHILDREN_GONE] = GO(OFF, UNFENCE), [LE_DOWN] = NEVER,
		[LE_LEASE_LOST] = STAY(REJOIN), [LE_TEARDOWN] = GO(LEAVING, LEAVE), [LE_LEFT] = NEVER,
	},
	/* Answers and events of the life before are ignored. */
	[LG_LEAVING] = {
		[LE_GRANTED] = STAY(NONE), [LE_JOINED] = STAY(NONE), [LE_CAMPAIGN] = STAY(NONE),
		[LE_WON] = STAY(NONE), [LE_BEATEN] = STAY(NONE), [LE_OUTRANKED] = STAY(NONE),
		[LE_CHILDREN_GONE] = STAY(REVOKE), [LE_DOWN] = STAY(NONE),
		[LE_LEASE_LOST] = STAY(NONE), [LE_TEARDOWN] = STAY(NONE), [LE_LEFT] = GO(GONE, DONE),
	},
	[LG_GONE] = {
		[LE_GRANTED] = NEVER, [LE_JOINED] = NEVER, [LE_CAMPAIGN] = NEVER, [LE_WON] = NEVER,
		[LE_BEATEN] = NEVER, [LE_OUTRANKED] = NEVER, [LE_CHILDREN_GONE] = NEVER,
		[LE_DOWN] = NEVER, [LE_LEASE_LOST] = NEVER, [LE_TEARDOWN] = NEVER, [LE_LEFT] = NEVER,
	},
};

#undef GO
#undef STAY
#undef NEVER

struct legion_step legion_fsm_next(enum legion_state s, enum legion_event ev)
{
	struct legion_step t;

	if ((unsigned)s >= LG_NSTATES || (unsigned)ev >= LE_NEVENTS)
		return (struct legion_step){ s, LA_IMPOSSIBLE };
	t = fsm[s][ev];
	if (t.next == LG_NSTATES || t.action == LA_IMPOSSIBLE)
		t.next = s;
	return t;
}
