/* reload_fsm.c — the reload machine's transition function (see reload_fsm.h). Every
 * state change of a master's reload or stop is decided here and nowhere else; the
 * events that matter nowhere (a child's exit while running) are RA_NONE, those that
 * cannot happen (a validation result outside validation) RA_IMPOSSIBLE. Three rules
 * hold in every state but the final ones: a brutal stop wins over everything, a
 * graceful stop restarts the teardown from its first step (so a step a reload skipped,
 * the survive-reload daemons, the subscriptions, is run again for the stop), and a
 * reload asked for while one runs is queued. */
#include "reload_fsm.h"

#include "util.h"

static const char *const state_names[RS_COUNT] = {
	[RS_STARTING] = "starting", [RS_RUNNING] = "running", [RS_VALIDATING] = "validating",
	[RS_WORKERS] = "workers reload", [RS_CHAIN] = "chain reload",
	[RS_OVERLAP] = "overlap reload/starting", [RS_OVERLAP_RETIRE] = "overlap reload/retiring",
	[RS_TD_SPOOLER] = "teardown/spooler", [RS_TD_DAEMONS] = "teardown/daemons",
	[RS_TD_GATEWAYS] = "teardown/gateways", [RS_TD_NESTED] = "teardown/nested emperor",
	[RS_TD_LEGIONS] = "teardown/legions", [RS_TD_UNSUBSCRIBE] = "teardown/unsubscribe",
	[RS_TD_WORKERS] = "teardown/workers", [RS_TD_MULES] = "teardown/mules",
	[RS_TD_WAIT] = "teardown/wait", [RS_REEXEC] = "re-exec", [RS_BRUTAL] = "brutal stop",
	[RS_EXITING] = "exiting",
};

static const char *const event_names[RE_COUNT] = {
	[RE_NONE] = "none", [RE_RELOAD] = "reload request", [RE_CHAIN] = "chain request",
	[RE_STOP] = "stop request", [RE_BRUTAL] = "brutal stop",
	[RE_CONFIG_INVALID] = "config invalid", [RE_CONFIG_GRACEFUL] = "config valid: graceful",
	[RE_CONFIG_WORKERS] = "config valid: workers", [RE_CONFIG_CHAIN] = "config valid: chain",
	[RE_CONFIG_OVERLAP] = "config valid: overlap",
	[RE_STEP_DONE] = "step done", [RE_CHILD_GONE] = "child gone",
	[RE_ALL_GONE] = "all children gone", [RE_MERCY_EXPIRED] = "mercy expired",
	[RE_SETTLED] = "workers settled", [RE_CHAIN_READY] = "chain replacement ready",
	[RE_CHAIN_FAILED] = "chain replacement failed", [RE_GEN_READY] = "new generation ready",
	[RE_GEN_FAILED] = "new generation failed", [RE_EXEC_DUE] = "exec due",
};

static const char *const action_names[RA_COUNT] = {
	[RA_NONE] = "none", [RA_IMPOSSIBLE] = "impossible", [RA_REFUSE] = "refuse",
	[RA_QUEUE] = "queue", [RA_ALREADY_STOPPING] = "already stopping",
	[RA_VALIDATE] = "validate", [RA_VALIDATE_CHAIN] = "validate (chain)",
	[RA_ABORT] = "abort", [RA_BEGIN_GRACEFUL] = "begin graceful",
	[RA_BEGIN_WORKERS] = "begin workers", [RA_BEGIN_CHAIN] = "begin chain",
	[RA_CHAIN_NEXT] = "chain next", [RA_CHAIN_FAIL] = "chain fail",
	[RA_BEGIN_OVERLAP] = "begin overlap", [RA_OVERLAP_SWITCH] = "overlap switch",
	[RA_OVERLAP_FAIL] = "overlap fail", [RA_FINISH] = "finish",
	[RA_STEP] = "step", [RA_BEGIN_STOP] = "begin stop", [RA_BRUTAL] = "brutal",
	[RA_REEXEC] = "re-exec", [RA_EXEC] = "exec", [RA_EXIT] = "exit",
};

const char *reload_state_name(enum reload_state s)
{
	return s < RS_COUNT ? state_names[s] : "?";
}

const char *reload_event_name(enum reload_event e)
{
	return e < RE_COUNT ? event_names[e] : "?";
}

const char *reload_action_name(enum reload_action a)
{
	return a < RA_COUNT ? action_names[a] : "?";
}

static bool in_teardown(enum reload_state s)
{
	return s >= RS_TD_SPOOLER && s <= RS_TD_WAIT;
}

bool reload_fsm_tearing_down(struct reload_fsm s)
{
	return in_teardown(s.state) || s.state == RS_REEXEC || s.state == RS_BRUTAL ||
	       s.state == RS_EXITING;
}

enum master_state reload_fsm_master_state(struct reload_fsm s)
{
	switch (s.state) {
	case RS_STARTING: return MASTER_STARTING;
	case RS_RUNNING: case RS_VALIDATING: return MASTER_RUNNING;
	case RS_BRUTAL: case RS_EXITING: return MASTER_STOPPING;
	default: return s.goal == GOAL_STOP ? MASTER_STOPPING : MASTER_RELOADING;
	}
}

static struct reload_transition go(struct reload_fsm cur, enum reload_state next,
				   enum reload_action action)
{
	cur.state = next;
	return (struct reload_transition){ .next = cur, .action = action, .then = RE_NONE };
}

static struct reload_transition stay(struct reload_fsm cur, enum reload_action action)
{
	return go(cur, cur.state, action);
}

/* A start or reload has ended: running, and a queued reload goes next. */
static struct reload_transition to_running(struct reload_fsm cur, enum reload_action action)
{
	struct reload_transition t = go(cur, RS_RUNNING, action);

	t.next.goal = GOAL_NONE;
	t.next.pending = false;
	t.then = cur.pending ? RE_RELOAD : RE_NONE;
	return t;
}

static struct reload_transition begin_stop(struct reload_fsm cur)
{
	cur.goal = GOAL_STOP;
	cur.pending = false;
	return go(cur, RS_TD_SPOOLER, RA_BEGIN_STOP);
}

/* The rules of every state that is not final: stop, brutal stop, queued reloads. */
static bool common(struct reload_fsm cur, enum reload_event ev, struct reload_transition *t)
{
	bool stopping = cur.goal == GOAL_STOP;

	switch (ev) {
	case RE_BRUTAL:
		cur.goal = GOAL_STOP;
		cur.pending = false;
		*t = go(cur, RS_BRUTAL, RA_BRUTAL);
		return true;
	case RE_STOP:
		*t = stopping ? stay(cur, RA_ALREADY_STOPPING) : begin_stop(cur);
		return true;
	case RE_RELOAD: case RE_CHAIN:
		if (cur.state == RS_RUNNING)
			return false; /* the one state where a request is served at once */
		if (stopping) {
			*t = stay(cur, RA_REFUSE);
		} else {
			cur.pending = true;
			*t = stay(cur, RA_QUEUE);
		}
		return true;
	case RE_CHILD_GONE: case RE_MERCY_EXPIRED:
		*t = stay(cur, RA_NONE);
		return true;
	default:
		return false;
	}
}

static struct reload_transition from_running(struct reload_fsm cur, enum reload_event ev)
{
	switch (ev) {
	case RE_RELOAD: return go(cur, RS_VALIDATING, RA_VALIDATE);
	case RE_CHAIN: return go(cur, RS_VALIDATING, RA_VALIDATE_CHAIN);
	case RE_ALL_GONE: case RE_SETTLED: return stay(cur, RA_NONE);
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

static struct reload_transition from_validating(struct reload_fsm cur, enum reload_event ev)
{
	cur.goal = GOAL_RELOAD;
	switch (ev) {
	case RE_CONFIG_INVALID: return to_running(cur, RA_ABORT);
	case RE_CONFIG_GRACEFUL: return go(cur, RS_TD_SPOOLER, RA_BEGIN_GRACEFUL);
	case RE_CONFIG_WORKERS: return go(cur, RS_WORKERS, RA_BEGIN_WORKERS);
	case RE_CONFIG_CHAIN: return go(cur, RS_CHAIN, RA_BEGIN_CHAIN);
	case RE_CONFIG_OVERLAP: return go(cur, RS_OVERLAP, RA_BEGIN_OVERLAP);
	default: cur.goal = GOAL_NONE; return stay(cur, RA_IMPOSSIBLE);
	}
}

/* Starting, a workers reload, a chain reload: they end when the workers settle. */
static struct reload_transition from_spawning(struct reload_fsm cur, enum reload_event ev)
{
	switch (ev) {
	case RE_SETTLED: return to_running(cur, RA_FINISH);
	case RE_ALL_GONE: return stay(cur, RA_NONE);
	case RE_CHAIN_READY:
		return cur.state == RS_CHAIN ? stay(cur, RA_CHAIN_NEXT) : stay(cur, RA_IMPOSSIBLE);
	case RE_CHAIN_FAILED:
		return cur.state == RS_CHAIN ? to_running(cur, RA_CHAIN_FAIL) : stay(cur, RA_IMPOSSIBLE);
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

/* Overlap: the new generation starts while the old one serves; once every new worker
 * is ready the old one is cursed, and the reload ends when it is gone. A new worker
 * that fails before that stops the new generation: the old one keeps serving. */
static struct reload_transition from_overlap(struct reload_fsm cur, enum reload_event ev)
{
	bool starting = cur.state == RS_OVERLAP;

	switch (ev) {
	case RE_GEN_READY:
		return starting ? go(cur, RS_OVERLAP_RETIRE, RA_OVERLAP_SWITCH) : stay(cur, RA_IMPOSSIBLE);
	case RE_GEN_FAILED:
		return starting ? to_running(cur, RA_OVERLAP_FAIL) : stay(cur, RA_IMPOSSIBLE);
	case RE_SETTLED:
		/* starting: the old generation still runs, so this is not the end */
		return starting ? stay(cur, RA_NONE) : to_running(cur, RA_FINISH);
	case RE_ALL_GONE: return stay(cur, RA_NONE);
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

static struct reload_transition from_teardown(struct reload_fsm cur, enum reload_event ev)
{
	switch (ev) {
	case RE_STEP_DONE: case RE_ALL_GONE:
		if (cur.state != RS_TD_WAIT)
			return go(cur, cur.state + 1, RA_STEP);
		return cur.goal == GOAL_STOP ? go(cur, RS_EXITING, RA_EXIT) : go(cur, RS_REEXEC, RA_REEXEC);
	case RE_SETTLED: return stay(cur, RA_NONE); /* a worker's exit reports it */
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

static struct reload_transition from_reexec(struct reload_fsm cur, enum reload_event ev)
{
	switch (ev) {
	case RE_EXEC_DUE: return stay(cur, RA_EXEC);
	case RE_ALL_GONE: case RE_SETTLED: return stay(cur, RA_NONE); /* a survive-reload daemon */
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

static struct reload_transition from_brutal(struct reload_fsm cur, enum reload_event ev)
{
	switch (ev) {
	case RE_ALL_GONE: return go(cur, RS_EXITING, RA_EXIT);
	case RE_BRUTAL: case RE_STOP: return stay(cur, RA_ALREADY_STOPPING);
	case RE_RELOAD: case RE_CHAIN: return stay(cur, RA_REFUSE);
	case RE_CHILD_GONE: case RE_MERCY_EXPIRED: case RE_SETTLED: case RE_STEP_DONE:
		return stay(cur, RA_NONE);
	default: return stay(cur, RA_IMPOSSIBLE);
	}
}

struct reload_transition reload_fsm_next(struct reload_fsm cur, enum reload_event ev)
{
	struct reload_transition t;

	if (cur.state == RS_BRUTAL)
		return from_brutal(cur, ev);
	if (cur.state == RS_EXITING || cur.state >= RS_COUNT || ev == RE_NONE || ev >= RE_COUNT)
		return stay(cur, RA_IMPOSSIBLE);
	if (cur.state != RS_VALIDATING && common(cur, ev, &t))
		return t;
	switch (cur.state) {
	case RS_RUNNING: return from_running(cur, ev);
	case RS_VALIDATING: return from_validating(cur, ev);
	case RS_STARTING: case RS_WORKERS: case RS_CHAIN: return from_spawning(cur, ev);
	case RS_OVERLAP: case RS_OVERLAP_RETIRE: return from_overlap(cur, ev);
	case RS_REEXEC: return from_reexec(cur, ev);
	default: return from_teardown(cur, ev);
	}
}
