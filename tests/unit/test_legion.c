/* test_legion.c — a legion membership's pure part (vassal/legion_fsm.c) without a
 * process or etcd: who should lead given the members (valor, then the longest-standing),
 * what a member and a lord decide from what they see, and every state × event pair of
 * the membership's machine against the outcome written down here from docs/cluster.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "legion.h"

#define M(id, valor, rev) { (id), (valor), (rev), true }

static void test_best_is_highest_valor_then_oldest(void **state)
{
	const struct legion_member m[] = { M(1, 10, 5), M(2, 30, 9), M(3, 30, 7), M(4, 20, 1) };

	(void)state;
	assert_null(legion_best(m, 0));
	assert_int_equal(legion_best(m, 4)->id, 3); /* 30 twice: the one that joined first */
	assert_int_equal(legion_best(m, 2)->id, 2);
	assert_int_equal(legion_best(m, 1)->id, 1);
}

static void test_member_campaigns_only_when_best_and_no_lord(void **state)
{
	const struct legion_member m[] = { M(1, 10, 5), M(2, 30, 9), M(3, 30, 7) };

	(void)state;
	assert_int_equal(legion_decide(m, 3, 3, 0, false), LV_CAMPAIGN);
	assert_int_equal(legion_decide(m, 3, 2, 0, false), LV_WAIT);  /* equal valor, younger */
	assert_int_equal(legion_decide(m, 3, 1, 0, false), LV_WAIT);
	assert_int_equal(legion_decide(m, 3, 3, 1, false), LV_WAIT);  /* a lord is there */
	assert_int_equal(legion_decide(m, 3, 9, 0, false), LV_WAIT);  /* we are not seen yet */
	assert_int_equal(legion_decide(m, 1, 1, 0, false), LV_CAMPAIGN); /* alone */
}

/* A member that is not ready (its workers not all ready yet) neither leads nor makes
 * a lord hand over. */
static void test_only_ready_members_count(void **state)
{
	struct legion_member m[] = { M(1, 10, 5), M(2, 30, 9), M(3, 20, 7) };

	(void)state;
	m[1].ready = false;
	assert_int_equal(legion_best(m, 3)->id, 3);
	assert_int_equal(legion_decide(m, 3, 2, 0, false), LV_WAIT);
	assert_int_equal(legion_decide(m, 3, 3, 0, false), LV_CAMPAIGN);
	assert_int_equal(legion_decide(m, 3, 3, 3, true), LV_WAIT); /* 30 is not ready */
	m[1].ready = true;
	assert_int_equal(legion_decide(m, 3, 3, 3, true), LV_STEP_DOWN);
	m[0].ready = m[1].ready = m[2].ready = false;
	assert_null(legion_best(m, 3));
	assert_int_equal(legion_decide(m, 3, 1, 0, false), LV_WAIT);
}

/* A campaign's txn applied while its answer was lost: the key is ours, we do not lead.
 * The best member takes it up (campaigns again, and finds it its own); another one
 * releases it so that the best can lead. */
static void test_key_held_without_leading(void **state)
{
	const struct legion_member m[] = { M(1, 10, 5), M(2, 30, 9), M(3, 20, 7) };

	(void)state;
	assert_int_equal(legion_decide(m, 3, 2, 2, false), LV_CAMPAIGN);
	assert_int_equal(legion_decide(m, 3, 3, 3, false), LV_RELEASE);
	assert_int_equal(legion_decide(m, 3, 0, 0, false), LV_WAIT); /* no lease yet */
}

static void test_lord_hands_over_to_higher_valor_only(void **state)
{
	const struct legion_member m[] = { M(1, 10, 5), M(2, 30, 9), M(3, 30, 7) };

	(void)state;
	/* 2 leads; 3 has the same valor and joined earlier: 2 keeps it */
	assert_int_equal(legion_decide(m, 3, 2, 2, true), LV_WAIT);
	/* 1 leads (it was alone): a higher valor is there now */
	assert_int_equal(legion_decide(m, 3, 1, 1, true), LV_STEP_DOWN);
	/* we think we lead but the key is gone or someone else's */
	assert_int_equal(legion_decide(m, 3, 3, 0, true), LV_STEP_DOWN);
	assert_int_equal(legion_decide(m, 3, 3, 2, true), LV_STEP_DOWN);
	assert_int_equal(legion_decide(m, 3, 3, 3, true), LV_WAIT);
}

struct outcome {
	enum legion_state next;
	enum legion_action action;
};
#define O(st, act) { LG_##st, LA_##act }
#define SAME(act) { LG_NSTATES, LA_##act }
#define NEVER SAME(IMPOSSIBLE)

/* What docs/cluster.md says each state does with each event. A cell left out is zero:
 * LA_IMPOSSIBLE, the event cannot happen in that state (logged and ignored). */
static const struct outcome table[LG_NSTATES][LE_NEVENTS] = {
	[LG_OFF] = { [LE_GRANTED] = O(JOINING, JOIN), [LE_LEASE_LOST] = O(OFF, REJOIN),
		     [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	[LG_JOINING] = { [LE_JOINED] = O(MEMBER, EVALUATE), [LE_LEASE_LOST] = O(OFF, REJOIN),
			 [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	[LG_MEMBER] = { [LE_CAMPAIGN] = O(CAMPAIGN, CAMPAIGN), [LE_LEASE_LOST] = O(OFF, REJOIN),
			[LE_TEARDOWN] = O(LEAVING, LEAVE) },
	[LG_CAMPAIGN] = { [LE_WON] = O(LORD, ENTHRONE), [LE_BEATEN] = O(MEMBER, EVALUATE),
			  [LE_LEASE_LOST] = O(OFF, REJOIN), [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	/* a lord fences: its lease given up, its children stopped within the margin */
	[LG_LORD] = { [LE_OUTRANKED] = O(STEPPING_DOWN, STEP_DOWN), [LE_LEASE_LOST] = O(FENCING, FENCE),
		      [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	/* stepping down, the lease lost: fencing, the mercies shortened */
	[LG_STEPPING_DOWN] = { [LE_OUTRANKED] = SAME(NONE), [LE_CHILDREN_GONE] = O(RELEASING, RELEASE),
			       [LE_LEASE_LOST] = O(FENCING, HASTEN), [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	/* the children gone already: a lost lease is a member's (no second on-unlord) */
	[LG_RELEASING] = { [LE_DOWN] = O(MEMBER, EVALUATE), [LE_LEASE_LOST] = O(OFF, REJOIN),
			   [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	/* etcd back during the fence: a new lease joins, no campaign; that one lost too:
	 * given up and revoked, still fencing; the children gone: the old lease revoked */
	[LG_FENCING] = { [LE_GRANTED] = SAME(JOIN), [LE_JOINED] = SAME(NONE),
			 [LE_CHILDREN_GONE] = O(OFF, UNFENCE), [LE_LEASE_LOST] = SAME(REJOIN),
			 [LE_TEARDOWN] = O(LEAVING, LEAVE) },
	[LG_LEAVING] = { [LE_GRANTED] = SAME(NONE), [LE_JOINED] = SAME(NONE), [LE_CAMPAIGN] = SAME(NONE),
			 [LE_WON] = SAME(NONE), [LE_BEATEN] = SAME(NONE), [LE_OUTRANKED] = SAME(NONE),
			 [LE_CHILDREN_GONE] = SAME(REVOKE), [LE_DOWN] = SAME(NONE),
			 [LE_LEASE_LOST] = SAME(NONE), [LE_TEARDOWN] = SAME(NONE), [LE_LEFT] = O(GONE, DONE) },
	[LG_GONE] = { [LE_GRANTED] = NEVER }, /* and every other cell */
};

/* The lease is ttl - 0.5 s rounded down: a crashed lord's lease expires, etcd's check
 * (every 0.5 s) revokes it and the handover runs, all within ttl + 0.5 s. */
static void test_lease_ttl_leaves_room_for_the_handover(void **state)
{
	(void)state;
	assert_int_equal(legion_lease_ttl(3), 2);
	assert_int_equal(legion_lease_ttl(2), 1);
	assert_int_equal(legion_lease_ttl(2.5), 2);
	assert_int_equal(legion_lease_ttl(3.4), 2);
	assert_int_equal(legion_lease_ttl(10), 9);
	assert_int_equal(legion_lease_ttl(1), 1);
	for (double ttl = 2; ttl <= 3600; ttl += 0.25)
		assert_true((double)legion_lease_ttl(ttl) + 0.5 <= ttl &&
			    (double)legion_lease_ttl(ttl) + 1.5 > ttl);
}

static void test_every_pair(void **state)
{
	(void)state;
	for (int s = 0; s < LG_NSTATES; s++)
		for (int e = 0; e < LE_NEVENTS; e++) {
			struct legion_step t = legion_fsm_next((enum legion_state)s, (enum legion_event)e);
			struct outcome want = table[s][e];
			bool stays = want.next == LG_NSTATES || want.action == LA_IMPOSSIBLE;
			enum legion_state next = stays ? (enum legion_state)s : want.next;
			if (t.next != next || t.action != want.action)
				fprintf(stderr, "%s --%s--> %s/%d, expected %s/%d\n",
					legion_state_name(s), legion_event_name(e),
					legion_state_name(t.next), t.action, legion_state_name(next),
					want.action);
			assert_int_equal(t.next, next);
			assert_int_equal(t.action, want.action);
		}
}

/* A lord that is outranked, steps down, and the newcomer's walk to lordship. */
static void test_handover_walk(void **state)
{
	static const enum legion_event walk[] = { LE_GRANTED, LE_JOINED, LE_CAMPAIGN, LE_WON,
						  LE_OUTRANKED, LE_CHILDREN_GONE, LE_DOWN,
						  LE_LEASE_LOST, LE_GRANTED, LE_JOINED, LE_TEARDOWN,
						  LE_LEFT };
	static const enum legion_state want[] = { LG_JOINING, LG_MEMBER, LG_CAMPAIGN, LG_LORD,
						  LG_STEPPING_DOWN, LG_RELEASING, LG_MEMBER,
						  LG_OFF, LG_JOINING, LG_MEMBER, LG_LEAVING, LG_GONE };
	enum legion_state s = LG_OFF;

	(void)state;
	for (size_t i = 0; i < sizeof walk / sizeof *walk; i++) {
		s = legion_fsm_next(s, walk[i]).next;
		assert_int_equal(s, want[i]);
	}
	assert_string_equal(legion_state_name(LG_STEPPING_DOWN), "stepping down");
	assert_string_equal(legion_event_name(LE_LEASE_LOST), "lease lost");
	assert_string_equal(legion_state_name(LG_NSTATES), "?");
}

struct step {
	enum legion_event ev;
	enum legion_state next;
	enum legion_action action;
};

/* Walks from `from` through steps; a wrong step is named. */
static void walk_steps(enum legion_state from, const struct step *steps, size_t n)
{
	enum legion_state s = from;

	for (size_t i = 0; i < n; i++) {
		struct legion_step t = legion_fsm_next(s, steps[i].ev);
		if (t.next != steps[i].next || t.action != steps[i].action)
			fprintf(stderr, "step %zu: %s --%s--> %s/%d, expected %s/%d\n", i,
				legion_state_name(s), legion_event_name(steps[i].ev),
				legion_state_name(t.next), t.action,
				legion_state_name(steps[i].next), steps[i].action);
		assert_int_equal(t.next, steps[i].next);
		assert_int_equal(t.action, steps[i].action);
		s = t.next;
	}
}

#define STEP(ev, st, act) { LE_##ev, LG_##st, LA_##act }

/* A lord whose lease is lost is FENCING until its lord-only children are gone (and
 * on-unlord has run): it campaigns for nothing meanwhile, and only then revokes the lease
 * it gave up. Three ways out of it: etcd back after the fence, etcd back during it (the
 * new lease joins at once, and is taken up when the fence ends; lost too, it is given
 * up and the fence goes on), and the master's teardown, which waits for the fence. */
static void test_fencing_walk(void **state)
{
	static const struct step after[] = {
		STEP(LEASE_LOST, FENCING, FENCE), STEP(CHILDREN_GONE, OFF, UNFENCE),
		STEP(GRANTED, JOINING, JOIN), STEP(JOINED, MEMBER, EVALUATE),
		STEP(CAMPAIGN, CAMPAIGN, CAMPAIGN), STEP(WON, LORD, ENTHRONE),
	};
	static const struct step during[] = {
		STEP(LEASE_LOST, FENCING, FENCE), STEP(GRANTED, FENCING, JOIN),
		STEP(JOINED, FENCING, NONE), STEP(CAMPAIGN, FENCING, IMPOSSIBLE),
		STEP(LEASE_LOST, FENCING, REJOIN), STEP(GRANTED, FENCING, JOIN),
		STEP(CHILDREN_GONE, OFF, UNFENCE), STEP(GRANTED, JOINING, JOIN),
		STEP(JOINED, MEMBER, EVALUATE),
	};
	static const struct step stopped[] = {
		STEP(OUTRANKED, STEPPING_DOWN, STEP_DOWN), STEP(LEASE_LOST, FENCING, HASTEN),
		STEP(TEARDOWN, LEAVING, LEAVE), STEP(CHILDREN_GONE, LEAVING, REVOKE),
		STEP(LEFT, GONE, DONE),
	};
	static const struct step released[] = {
		STEP(OUTRANKED, STEPPING_DOWN, STEP_DOWN), STEP(CHILDREN_GONE, RELEASING, RELEASE),
		STEP(LEASE_LOST, OFF, REJOIN), STEP(GRANTED, JOINING, JOIN),
	};

	(void)state;
	walk_steps(LG_LORD, after, sizeof after / sizeof *after);
	walk_steps(LG_LORD, during, sizeof during / sizeof *during);
	walk_steps(LG_LORD, stopped, sizeof stopped / sizeof *stopped);
	walk_steps(LG_LORD, released, sizeof released / sizeof *released);
}

/* The status line says where a lord's way out is. */
static void test_status_words(void **state)
{
	(void)state;
	assert_string_equal(legion_state_status(LG_LORD), "lord");
	assert_string_equal(legion_state_status(LG_MEMBER), "member");
	assert_string_equal(legion_state_status(LG_OFF), "fenced (no lease: etcd unreachable)");
	assert_string_equal(legion_state_status(LG_FENCING),
			    "fencing (lease lost: lord-only children stopping)");
	assert_string_equal(legion_state_status(LG_STEPPING_DOWN),
			    "stepping down (outranked: lord-only children stopping)");
	assert_string_equal(legion_state_status(LG_RELEASING),
			    "releasing (stepped down: deleting the lord key)");
	assert_string_equal(legion_state_name(LG_FENCING), "fencing");
	assert_string_equal(legion_event_name(LE_CHILDREN_GONE), "children gone");
	for (int s = 0; s < LG_NSTATES; s++)
		assert_string_not_equal(legion_state_status((enum legion_state)s), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_best_is_highest_valor_then_oldest),
		cmocka_unit_test(test_member_campaigns_only_when_best_and_no_lord),
		cmocka_unit_test(test_lord_hands_over_to_higher_valor_only),
		cmocka_unit_test(test_only_ready_members_count),
		cmocka_unit_test(test_key_held_without_leading),
		cmocka_unit_test(test_lease_ttl_leaves_room_for_the_handover),
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_handover_walk),
		cmocka_unit_test(test_fencing_walk),
		cmocka_unit_test(test_status_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
