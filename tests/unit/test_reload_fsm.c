/* test_reload_fsm.c — the vassal master's reload machine (vassal/reload_fsm.c) driven
 * without a process: every state × event pair against the outcome written down here
 * from docs/reload.md (the impossible ones included), the queued reload that runs when
 * a start or reload ends (and crosses the re-exec), and whole walks: a graceful
 * reload, a stop, and a stop that arrives in the middle of a reload's teardown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "reload_fsm.h"

struct outcome {
	enum reload_state next;
	enum reload_action action;
};

#define O(st, act) { RS_##st, RA_##act }
#define SAME(act) { RS_COUNT, RA_##act } /* the state does not change */

/* The events in the order of every row below. */
static const enum reload_event events[] = {
	RE_RELOAD, RE_CHAIN, RE_STOP, RE_BRUTAL, RE_CONFIG_INVALID, RE_CONFIG_GRACEFUL,
	RE_CONFIG_WORKERS, RE_CONFIG_CHAIN, RE_CONFIG_OVERLAP, RE_STEP_DONE, RE_CHILD_GONE,
	RE_ALL_GONE, RE_MERCY_EXPIRED, RE_SETTLED, RE_CHAIN_READY, RE_CHAIN_FAILED,
	RE_GEN_READY, RE_GEN_FAILED, RE_EXEC_DUE,
};
#define N_EVENTS (sizeof events / sizeof *events)

struct row {
	enum reload_state state;
	enum reload_goal goal;
	struct outcome out[N_EVENTS];
};

/* Every state outside the teardown. */
static const struct row rows[] = {
	{ RS_STARTING, GOAL_NONE, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		O(RUNNING, FINISH), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	{ RS_RUNNING, GOAL_NONE, {
		O(VALIDATING, VALIDATE), O(VALIDATING, VALIDATE_CHAIN), O(TD_SPOOLER, BEGIN_STOP),
		O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		SAME(NONE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	/* Validation is synchronous: only its own results can arrive. */
	{ RS_VALIDATING, GOAL_NONE, {
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		O(RUNNING, ABORT), O(TD_SPOOLER, BEGIN_GRACEFUL), O(WORKERS, BEGIN_WORKERS),
		O(CHAIN, BEGIN_CHAIN), O(OVERLAP, BEGIN_OVERLAP),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	{ RS_WORKERS, GOAL_RELOAD, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		O(RUNNING, FINISH), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	{ RS_CHAIN, GOAL_RELOAD, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		O(RUNNING, FINISH), SAME(CHAIN_NEXT), O(RUNNING, CHAIN_FAIL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	/* Overlap: the old generation still runs while the new one starts, so "settled"
	 * is not the end there; the end is the old one gone once the new one is ready. */
	{ RS_OVERLAP, GOAL_RELOAD, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		SAME(NONE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		O(OVERLAP_RETIRE, OVERLAP_SWITCH), O(RUNNING, OVERLAP_FAIL), SAME(IMPOSSIBLE) } },
	{ RS_OVERLAP_RETIRE, GOAL_RELOAD, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		O(RUNNING, FINISH), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	/* The teardown is over; a stop still has the survive-reload daemons to stop. */
	{ RS_REEXEC, GOAL_RELOAD, {
		SAME(QUEUE), SAME(QUEUE), O(TD_SPOOLER, BEGIN_STOP), O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(NONE), SAME(NONE), SAME(NONE),
		SAME(NONE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(EXEC) } },
	{ RS_BRUTAL, GOAL_STOP, {
		SAME(REFUSE), SAME(REFUSE), SAME(ALREADY_STOPPING), SAME(ALREADY_STOPPING),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(NONE), SAME(NONE), O(EXITING, EXIT), SAME(NONE),
		SAME(NONE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
	/* exit(0) has been called: nothing can arrive. */
	{ RS_EXITING, GOAL_STOP, {
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } },
};

/* The teardown's steps in DESIGN.md's order, then what ends it. */
static const enum reload_state steps[] = {
	RS_TD_SPOOLER, RS_TD_DAEMONS, RS_TD_GATEWAYS, RS_TD_NESTED, RS_TD_LEGIONS,
	RS_TD_UNSUBSCRIBE, RS_TD_WORKERS, RS_TD_MULES, RS_TD_WAIT,
};
#define N_STEPS (sizeof steps / sizeof *steps)

/* A teardown step: the same row for every step, but for where "done" leads. */
static struct row teardown_row(size_t i, enum reload_goal goal)
{
	bool stop = goal == GOAL_STOP, last = i + 1 == N_STEPS;
	struct outcome done = last ? (stop ? (struct outcome)O(EXITING, EXIT)
					   : (struct outcome)O(REEXEC, REEXEC))
				   : (struct outcome){ steps[i + 1], RA_STEP };
	struct row r = { steps[i], goal, {
		stop ? (struct outcome)SAME(REFUSE) : (struct outcome)SAME(QUEUE),
		stop ? (struct outcome)SAME(REFUSE) : (struct outcome)SAME(QUEUE),
		stop ? (struct outcome)SAME(ALREADY_STOPPING) : (struct outcome)O(TD_SPOOLER, BEGIN_STOP),
		O(BRUTAL, BRUTAL),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		done, SAME(NONE), done, SAME(NONE),
		SAME(NONE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) } };
	return r;
}

static void check_row(const struct row *row)
{
	for (size_t e = 0; e < N_EVENTS; e++) {
		struct reload_fsm cur = { row->state, row->goal, false };
		struct reload_transition t = reload_fsm_next(cur, events[e]);
		enum reload_state want = row->out[e].next == RS_COUNT ? row->state : row->out[e].next;
		if (t.next.state != want || t.action != row->out[e].action) {
			fprintf(stderr, "%s (goal %d) + %s: got %s/%s, expected %s/%s\n",
				reload_state_name(row->state), row->goal, reload_event_name(events[e]),
				reload_state_name(t.next.state), reload_action_name(t.action),
				reload_state_name(want), reload_action_name(row->out[e].action));
			fail();
		}
		assert_int_equal(t.then, RE_NONE); /* nothing was pending */
	}
}

static void test_every_pair(void **state)
{
	bool seen[RS_COUNT] = { false };

	(void)state;
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
		check_row(&rows[i]);
		seen[rows[i].state] = true;
	}
	for (size_t i = 0; i < N_STEPS; i++) {
		struct row reload = teardown_row(i, GOAL_RELOAD), stop = teardown_row(i, GOAL_STOP);
		check_row(&reload);
		check_row(&stop);
		seen[steps[i]] = true;
	}
	for (int s = 0; s < RS_COUNT; s++) /* no state was left out */
		assert_true(seen[s]);
	/* RE_NONE is no event at all. */
	struct reload_fsm running = { RS_RUNNING, GOAL_NONE, false };
	assert_int_equal(reload_fsm_next(running, RE_NONE).action, RA_IMPOSSIBLE);
}

/* A request during a start or reload is queued once and runs when that one ends. */
static void test_queued_reload(void **state)
{
	static const enum reload_state busy[] = { RS_STARTING, RS_WORKERS, RS_CHAIN,
						   RS_OVERLAP_RETIRE };
	struct reload_transition t;

	(void)state;
	for (size_t i = 0; i < sizeof busy / sizeof *busy; i++) {
		struct reload_fsm s = { busy[i], busy[i] == RS_STARTING ? GOAL_NONE : GOAL_RELOAD, false };
		t = reload_fsm_next(s, RE_RELOAD);
		assert_int_equal(t.action, RA_QUEUE);
		assert_true(t.next.pending);
		t = reload_fsm_next(t.next, RE_CHAIN); /* a second one changes nothing more */
		assert_int_equal(t.action, RA_QUEUE);
		t = reload_fsm_next(t.next, RE_SETTLED);
		assert_int_equal(t.next.state, RS_RUNNING);
		assert_int_equal(t.action, RA_FINISH);
		assert_int_equal(t.then, RE_RELOAD);
		assert_false(t.next.pending);
		assert_int_equal(t.next.goal, GOAL_NONE);
		/* the queued request, served at once from RS_RUNNING */
		t = reload_fsm_next(t.next, t.then);
		assert_int_equal(t.next.state, RS_VALIDATING);
	}
	/* A failed chain also runs the queued reload. */
	struct reload_fsm chain = { RS_CHAIN, GOAL_RELOAD, true };
	t = reload_fsm_next(chain, RE_CHAIN_FAILED);
	assert_int_equal(t.action, RA_CHAIN_FAIL);
	assert_int_equal(t.then, RE_RELOAD);
	/* So does a failed overlap; a queued request during its start waits for its end. */
	struct reload_fsm overlap = { RS_OVERLAP, GOAL_RELOAD, false };
	t = reload_fsm_next(overlap, RE_RELOAD);
	assert_int_equal(t.action, RA_QUEUE);
	t = reload_fsm_next(t.next, RE_GEN_FAILED);
	assert_int_equal(t.action, RA_OVERLAP_FAIL);
	assert_int_equal(t.next.state, RS_RUNNING);
	assert_int_equal(t.then, RE_RELOAD);
	/* Queued during the teardown, it crosses the re-exec... */
	struct reload_fsm td = { RS_TD_WORKERS, GOAL_RELOAD, false };
	t = reload_fsm_next(td, RE_RELOAD);
	assert_true(t.next.pending);
	t = reload_fsm_next((struct reload_fsm){ RS_TD_WAIT, GOAL_RELOAD, true }, RE_STEP_DONE);
	assert_int_equal(t.next.state, RS_REEXEC);
	assert_true(t.next.pending);
	t = reload_fsm_next(t.next, RE_EXEC_DUE);
	assert_int_equal(t.action, RA_EXEC);
	assert_true(t.next.pending); /* handed to the next image (reexec.h) */
	/* ...and a stop or a brutal stop drops it. */
	t = reload_fsm_next((struct reload_fsm){ RS_TD_WORKERS, GOAL_RELOAD, true }, RE_STOP);
	assert_false(t.next.pending);
	t = reload_fsm_next((struct reload_fsm){ RS_STARTING, GOAL_NONE, true }, RE_BRUTAL);
	assert_false(t.next.pending);
}

/* Walks from s through events; returns the final state, checking each action. */
static struct reload_fsm walk(struct reload_fsm s, const enum reload_event *ev,
			      const enum reload_action *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct reload_transition t = reload_fsm_next(s, ev[i]);
		if (t.action != want[i]) {
			fprintf(stderr, "step %zu: %s in %s gave %s, expected %s\n", i,
				reload_event_name(ev[i]), reload_state_name(s.state),
				reload_action_name(t.action), reload_action_name(want[i]));
			fail();
		}
		s = t.next;
	}
	return s;
}

static void test_graceful_reload_walk(void **state)
{
	struct reload_fsm s = { RS_RUNNING, GOAL_NONE, false };
	enum reload_event ev[] = { RE_RELOAD, RE_CONFIG_GRACEFUL };
	enum reload_action want[] = { RA_VALIDATE, RA_BEGIN_GRACEFUL };

	(void)state;
	s = walk(s, ev, want, 2);
	assert_int_equal(s.state, RS_TD_SPOOLER);
	assert_int_equal(reload_fsm_master_state(s), MASTER_RELOADING);
	assert_true(reload_fsm_tearing_down(s));
	for (size_t i = 1; i < N_STEPS; i++) {
		s = reload_fsm_next(s, RE_STEP_DONE).next;
		assert_int_equal(s.state, steps[i]);
	}
	s = reload_fsm_next(s, RE_STEP_DONE).next;
	assert_int_equal(s.state, RS_REEXEC);
	assert_int_equal(reload_fsm_master_state(s), MASTER_RELOADING);
}

/* The defect: a stop after the reload's daemons step left the survive-reload daemons
 * running. A stop goes back to the first step with the stop's goal, so the daemons
 * step runs again (sparing nothing), and the walk ends in exit, not exec. */
/* Overlap, whole: the old generation serves until the new one is ready, then goes. */
static void test_overlap_walk(void **state)
{
	struct reload_fsm s = { RS_RUNNING, GOAL_NONE, false };
	enum reload_event ev[] = { RE_RELOAD, RE_CONFIG_OVERLAP, RE_CHILD_GONE, RE_SETTLED,
				   RE_GEN_READY, RE_CHILD_GONE, RE_SETTLED };
	enum reload_action want[] = { RA_VALIDATE, RA_BEGIN_OVERLAP, RA_NONE, RA_NONE,
				      RA_OVERLAP_SWITCH, RA_NONE, RA_FINISH };

	(void)state;
	s = walk(s, ev, want, 4);
	assert_int_equal(s.state, RS_OVERLAP);
	assert_int_equal(reload_fsm_master_state(s), MASTER_RELOADING);
	assert_false(reload_fsm_tearing_down(s)); /* a new worker that crashes is respawned */
	s = walk(s, ev + 4, want + 4, 3);
	assert_int_equal(s.state, RS_RUNNING);
	assert_int_equal(s.goal, GOAL_NONE);
}

static void test_stop_during_teardown_reruns_steps(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_STEPS; i++) {
		struct reload_fsm s = { steps[i], GOAL_RELOAD, false };
		struct reload_transition t = reload_fsm_next(s, RE_STOP);
		assert_int_equal(t.action, RA_BEGIN_STOP);
		assert_int_equal(t.next.state, RS_TD_SPOOLER);
		assert_int_equal(t.next.goal, GOAL_STOP);
		assert_int_equal(reload_fsm_master_state(t.next), MASTER_STOPPING);
		s = t.next;
		s = reload_fsm_next(s, RE_STEP_DONE).next;
		assert_int_equal(s.state, RS_TD_DAEMONS);
		assert_int_equal(s.goal, GOAL_STOP);
		for (size_t k = 2; k < N_STEPS; k++)
			s = reload_fsm_next(s, RE_STEP_DONE).next;
		t = reload_fsm_next(s, RE_STEP_DONE);
		assert_int_equal(t.next.state, RS_EXITING);
		assert_int_equal(t.action, RA_EXIT);
	}
	/* So does a stop that comes once the teardown is over, before the exec. */
	struct reload_transition t = reload_fsm_next((struct reload_fsm){ RS_REEXEC, GOAL_RELOAD, false },
						     RE_STOP);
	assert_int_equal(t.next.state, RS_TD_SPOOLER);
	assert_int_equal(t.next.goal, GOAL_STOP);
}

static void test_brutal_and_views(void **state)
{
	struct reload_fsm s = { RS_TD_MULES, GOAL_STOP, false };
	struct reload_transition t;

	(void)state;
	t = reload_fsm_next(s, RE_BRUTAL);
	assert_int_equal(t.next.state, RS_BRUTAL);
	assert_int_equal(reload_fsm_master_state(t.next), MASTER_STOPPING);
	t = reload_fsm_next(t.next, RE_CHILD_GONE);
	assert_int_equal(t.next.state, RS_BRUTAL);
	t = reload_fsm_next(t.next, RE_ALL_GONE);
	assert_int_equal(t.action, RA_EXIT);
	/* Who respawns: nobody once a teardown or stop runs; workers during their reloads. */
	assert_false(reload_fsm_tearing_down((struct reload_fsm){ RS_STARTING, GOAL_NONE, false }));
	assert_false(reload_fsm_tearing_down((struct reload_fsm){ RS_WORKERS, GOAL_RELOAD, false }));
	assert_false(reload_fsm_tearing_down((struct reload_fsm){ RS_CHAIN, GOAL_RELOAD, false }));
	assert_true(reload_fsm_tearing_down((struct reload_fsm){ RS_REEXEC, GOAL_RELOAD, false }));
	assert_true(reload_fsm_tearing_down((struct reload_fsm){ RS_BRUTAL, GOAL_STOP, false }));
	assert_int_equal(reload_fsm_master_state((struct reload_fsm){ RS_VALIDATING, GOAL_NONE, false }),
			 MASTER_RUNNING);
	assert_int_equal(reload_fsm_master_state((struct reload_fsm){ RS_CHAIN, GOAL_RELOAD, false }),
			 MASTER_RELOADING);
	/* Every state, event and action has a name for the debug log. */
	for (int i = 0; i < RS_COUNT; i++)
		assert_string_not_equal(reload_state_name(i), "?");
	for (int i = 0; i < RE_COUNT; i++)
		assert_string_not_equal(reload_event_name(i), "?");
	for (int i = 0; i < RA_COUNT; i++)
		assert_string_not_equal(reload_action_name(i), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_queued_reload),
		cmocka_unit_test(test_graceful_reload_walk),
		cmocka_unit_test(test_overlap_walk),
		cmocka_unit_test(test_stop_during_teardown_reruns_steps),
		cmocka_unit_test(test_brutal_and_views),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
