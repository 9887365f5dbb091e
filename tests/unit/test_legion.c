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

/* Columns: the events in enum order (GRANTED JOINED CAMPAIGN WON BEATEN OUTRANKED DOWN
 * LEASE_LOST TEARDOWN LEFT). */
static const struct outcome table[LG_NSTATES][LE_NEVENTS] = {
	[LG_OFF] = { O(JOINING, JOIN), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		     SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(OFF, REJOIN),
		     O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_JOINING] = { SAME(IMPOSSIBLE), O(MEMBER, EVALUATE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
			 SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(OFF, REJOIN),
			 O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_MEMBER] = { SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(CAMPAIGN, CAMPAIGN), SAME(IMPOSSIBLE),
			SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(OFF, REJOIN),
			O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_CAMPAIGN] = { SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(LORD, ENTHRONE),
			  O(MEMBER, EVALUATE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), O(OFF, REJOIN),
			  O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_LORD] = { SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		      SAME(IMPOSSIBLE), O(STEPPING_DOWN, STEP_DOWN), SAME(IMPOSSIBLE), O(OFF, FENCE),
		      O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_STEPPING_DOWN] = { SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
			       SAME(IMPOSSIBLE), SAME(NONE), O(MEMBER, EVALUATE), O(OFF, FENCE),
			       O(LEAVING, LEAVE), SAME(IMPOSSIBLE) },
	[LG_LEAVING] = { SAME(NONE), SAME(NONE), SAME(NONE), SAME(NONE), SAME(NONE), SAME(NONE),
			 SAME(NONE), SAME(NONE), SAME(NONE), O(GONE, DONE) },
	[LG_GONE] = { SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		      SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE), SAME(IMPOSSIBLE),
		      SAME(IMPOSSIBLE), SAME(IMPOSSIBLE) },
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
			enum legion_state next = want.next == LG_NSTATES ? (enum legion_state)s : want.next;
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
						  LE_OUTRANKED, LE_DOWN, LE_LEASE_LOST, LE_GRANTED,
						  LE_JOINED, LE_TEARDOWN, LE_LEFT };
	static const enum legion_state want[] = { LG_JOINING, LG_MEMBER, LG_CAMPAIGN, LG_LORD,
						  LG_STEPPING_DOWN, LG_MEMBER, LG_OFF, LG_JOINING,
						  LG_MEMBER, LG_LEAVING, LG_GONE };
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
