/* legion_fsm.c — the pure part of a legion membership (see legion.h): who should lead
 * among the members a vassal sees, and the membership's transition function, state ×
 * event → next state, action. No clock, no etcd: tests/unit/test_legion.c walks it. */
#include "legion.h"

static const char *const state_names[LG_NSTATES] = {
	[LG_OFF] = "off", [LG_JOINING] = "joining", [LG_MEMBER] = "member",
	[LG_CAMPAIGN] = "campaigning", [LG_LORD] = "lord", [LG_STEPPING_DOWN] = "stepping down",
	[LG_LEAVING] = "leaving", [LG_GONE] = "gone",
};

static const char *const event_names[LE_NEVENTS] = {
	[LE_GRANTED] = "lease granted", [LE_JOINED] = "joined", [LE_CAMPAIGN] = "best member",
	[LE_WON] = "won", [LE_BEATEN] = "beaten", [LE_OUTRANKED] = "outranked",
	[LE_DOWN] = "stepped down", [LE_LEASE_LOST] = "lease lost", [LE_TEARDOWN] = "teardown",
	[LE_LEFT] = "left",
};

const char *legion_state_name(enum legion_state s)
{
	return s < LG_NSTATES ? state_names[s] : "?";
}

const char *legion_event_name(enum legion_event e)
{
	return e < LE_NEVENTS ? event_names[e] : "?";
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

static struct legion_step go(enum legion_state next, enum legion_action a)
{
	return (struct legion_step){ next, a };
}

/* What every live state does with a lost lease and a teardown. */
static bool common(enum legion_state s, enum legion_event ev, struct legion_step *t)
{
	bool leading = s == LG_LORD || s == LG_STEPPING_DOWN;

	switch (ev) {
	case LE_TEARDOWN: *t = go(LG_LEAVING, LA_LEAVE); return true;
	case LE_LEASE_LOST: *t = go(LG_OFF, leading ? LA_FENCE : LA_REJOIN); return true;
	default: return false;
	}
}

struct legion_step legion_fsm_next(enum legion_state s, enum legion_event ev)
{
	struct legion_step t;

	if (s == LG_GONE || s >= LG_NSTATES || ev >= LE_NEVENTS)
		return go(s, LA_IMPOSSIBLE);
	if (s == LG_LEAVING)
		return ev == LE_LEFT ? go(LG_GONE, LA_DONE) : go(s, LA_NONE);
	if (common(s, ev, &t))
		return t;
	switch (s) {
	case LG_OFF:
		return ev == LE_GRANTED ? go(LG_JOINING, LA_JOIN) : go(s, LA_IMPOSSIBLE);
	case LG_JOINING:
		return ev == LE_JOINED ? go(LG_MEMBER, LA_EVALUATE) : go(s, LA_IMPOSSIBLE);
	case LG_MEMBER:
		return ev == LE_CAMPAIGN ? go(LG_CAMPAIGN, LA_CAMPAIGN) : go(s, LA_IMPOSSIBLE);
	case LG_CAMPAIGN:
		if (ev == LE_WON)
			return go(LG_LORD, LA_ENTHRONE);
		return ev == LE_BEATEN ? go(LG_MEMBER, LA_EVALUATE) : go(s, LA_IMPOSSIBLE);
	case LG_LORD:
		return ev == LE_OUTRANKED ? go(LG_STEPPING_DOWN, LA_STEP_DOWN) : go(s, LA_IMPOSSIBLE);
	case LG_STEPPING_DOWN:
		if (ev == LE_DOWN)
			return go(LG_MEMBER, LA_EVALUATE);
		return ev == LE_OUTRANKED ? go(s, LA_NONE) : go(s, LA_IMPOSSIBLE);
	default:
		return go(s, LA_IMPOSSIBLE);
	}
}
