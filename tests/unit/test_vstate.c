/* test_vstate.c — the emperor's vassal machine (emperor/vstate.c) without a process:
 * every state × event pair has its expected next state and action, written here
 * independently of the table, the impossible ones included (they change nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vstate.h"

#define N_STATES VASSAL_N_STATES

/* For each event, the outcome in STARTING, READY, RELOADING, STOPPING, WAITING,
 * HALTED, ON-DEMAND, IDLE, as "next:action"; "-" is an impossible pair (state kept). */
static const char *const expected[VEV_COUNT][N_STATES] = {
	[VEV_SPAWNED] = { "-", "-", "-", "-", "starting:started", "starting:started",
			"starting:started", "starting:started" },
	[VEV_SPAWN_FAILED] = { "-", "-", "-", "-", "waiting:retry", "waiting:retry",
			"waiting:retry", "waiting:retry" },
	[VEV_REFUSED] = { "-", "-", "-", "-", "halted:halt-invalid", "halted:halt-invalid",
			"halted:halt-invalid", "halted:halt-invalid" },
	[VEV_READY_MSG] = { "ready:announce-ready", "ready:ignore", "ready:announce-reloaded",
			    "stopping:ignore", "-", "-",
			"-", "-" },
	[VEV_RELOADING_MSG] = { "starting:ignore", "reloading:note-self-reload",
				"reloading:ignore", "stopping:ignore", "-", "-",
			"-", "-" },
	[VEV_RELOAD] = { "reloading:signal-reload", "reloading:signal-reload",
			 "reloading:signal-more", "stopping:ignore", "waiting:ignore",
			 "halted:ignore",
			"on-demand:ignore", "idle:ignore" },
	[VEV_STOP] = { "stopping:curse", "stopping:curse", "stopping:curse", "stopping:ignore",
		       "gone:forget", "gone:forget",
			"gone:forget", "gone:forget" },
	[VEV_HALT] = { "stopping:curse", "stopping:curse", "stopping:curse", "stopping:curse",
		       "halted:cancel-respawn", "halted:cancel-respawn",
			"halted:cancel-respawn", "halted:cancel-respawn" },
	[VEV_KILL] = { "starting:kill", "ready:kill", "reloading:kill", "stopping:kill",
		       "waiting:ignore", "halted:ignore",
			"on-demand:ignore", "idle:ignore" },
	[VEV_BRUTAL_STOP] = { "stopping:kill", "stopping:kill", "stopping:kill", "stopping:kill",
			      "-", "-",
			"-", "-" },
	[VEV_EXIT_OK] = { "halted:halt-exit-0", "halted:halt-exit-0", "halted:halt-exit-0",
			  "gone:stopped", "-", "-",
			"-", "-" },
	[VEV_EXIT_CONFIG] = { "halted:halt-bad-config", "halted:halt-bad-config",
			      "halted:halt-bad-config", "gone:stopped", "-", "-",
			"-", "-" },
	[VEV_EXIT_FAILED] = { "waiting:respawn", "waiting:respawn", "waiting:respawn",
			      "gone:stopped", "-", "-",
			"-", "-" },
	[VEV_EXIT_HALTED] = { "-", "-", "-", "halted:stopped-keep", "-", "-",
			"-", "-" },
	[VEV_ARMED] = { "-", "-", "-", "-", "on-demand:armed", "on-demand:armed",
			"on-demand:armed", "idle:armed" },
	[VEV_EXIT_IDLE] = { "idle:idle-stopped", "idle:idle-stopped", "idle:idle-stopped",
			    "gone:stopped", "-", "-", "-", "-" },
};

static void test_every_pair(void **state)
{
	(void)state;
	for (int ev = 0; ev < VEV_COUNT; ev++)
		for (int st = 0; st < N_STATES; st++) {
			struct vstate_step s = vstate_next((enum vassal_state)st, (enum vstate_event)ev);
			const char *want = expected[ev][st];
			char got[96];
			if (s.action == VA_IMPOSSIBLE) {
				if (s.next != (enum vassal_state)st)
					fail_msg("%s in %s: impossible, yet the state changes",
						 vstate_event_name(ev), vstate_name(st));
				snprintf(got, sizeof got, "-");
			} else {
				snprintf(got, sizeof got, "%s:%s", vstate_name(s.next),
					 vstate_action_name(s.action));
			}
			if (!want || strcmp(got, want) != 0)
				fail_msg("%s in %s: %s, expected %s", vstate_event_name(ev),
					 vstate_name(st), got, want ? want : "(no expectation)");
		}
}

/* Only a running state (a process exists) may see its process's events. */
static void test_process_events_need_a_process(void **state)
{
	static const enum vstate_event process_events[] = {
		VEV_READY_MSG, VEV_RELOADING_MSG, VEV_EXIT_OK, VEV_EXIT_CONFIG, VEV_EXIT_FAILED,
		VEV_EXIT_HALTED, VEV_BRUTAL_STOP, VEV_EXIT_IDLE,
	};

	(void)state;
	for (int st = 0; st < N_STATES; st++)
		for (size_t i = 0; i < sizeof process_events / sizeof process_events[0]; i++)
			if (!vstate_running(st))
				assert_int_equal(vstate_next(st, process_events[i]).action, VA_IMPOSSIBLE);
	assert_true(vstate_running(VASSAL_STOPPING));
	assert_false(vstate_running(VASSAL_WAITING));
	assert_false(vstate_running(VASSAL_ON_DEMAND));
	assert_false(vstate_running(VASSAL_IDLE));
	assert_false(vstate_running(VASSAL_GONE));
}

static void test_out_of_range_and_names(void **state)
{
	(void)state;
	assert_int_equal(vstate_next(VASSAL_GONE, VEV_STOP).action, VA_IMPOSSIBLE);
	assert_int_equal(vstate_next(VASSAL_READY, VEV_COUNT).action, VA_IMPOSSIBLE);
	for (int st = 0; st <= VASSAL_GONE; st++)
		assert_string_not_equal(vstate_name(st), "?");
	for (int ev = 0; ev < VEV_COUNT; ev++)
		assert_string_not_equal(vstate_event_name(ev), "?");
	for (int a = 0; a < VA_COUNT; a++)
		assert_string_not_equal(vstate_action_name(a), "?");
}

/* One step of a life: the event, the state it leads to, the action taken. */
struct life_step {
	enum vstate_event ev;
	enum vassal_state st;
	enum vstate_action a;
};

/* Walks steps from HALTED (a new record), each checked against the table. */
static void walk_life(const struct life_step *life, size_t n)
{
	enum vassal_state st = VASSAL_HALTED;

	for (size_t i = 0; i < n; i++) {
		struct vstate_step s = vstate_next(st, life[i].ev);
		if (s.next != life[i].st || s.action != life[i].a)
			fail_msg("step %zu (%s from %s): %s/%s, expected %s/%s", i,
				 vstate_event_name(life[i].ev), vstate_name(st), vstate_name(s.next),
				 vstate_action_name(s.action), vstate_name(life[i].st),
				 vstate_action_name(life[i].a));
		st = s.next;
	}
}

/* A life walked through the table: start, ready, touched twice, reloaded, crashed,
 * respawned, removed. */
static void test_a_life(void **state)
{
	static const struct life_step life[] = {
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_RELOAD, VASSAL_RELOADING, VA_SIGNAL_RELOAD },
		{ VEV_RELOAD, VASSAL_RELOADING, VA_SIGNAL_MORE },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_RELOADED },
		{ VEV_EXIT_FAILED, VASSAL_WAITING, VA_RESPAWN },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_STOP, VASSAL_STOPPING, VA_CURSE },
		{ VEV_EXIT_OK, VASSAL_GONE, VA_STOPPED },
	};

	(void)state;
	walk_life(life, sizeof life / sizeof life[0]);
}

/* An on-demand life: armed, woken by a connection, stopped for being idle, woken
 * again, its changed socket not bound after an idle stop (waiting, retried), armed
 * again, removed while waiting: no process at either end. */
static void test_an_on_demand_life(void **state)
{
	static const struct life_step life[] = {
		{ VEV_ARMED, VASSAL_ON_DEMAND, VA_ARMED },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_EXIT_IDLE, VASSAL_IDLE, VA_IDLE_STOPPED },
		{ VEV_RELOAD, VASSAL_IDLE, VA_IGNORE },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_EXIT_IDLE, VASSAL_IDLE, VA_IDLE_STOPPED },
		{ VEV_SPAWN_FAILED, VASSAL_WAITING, VA_RETRY },
		{ VEV_ARMED, VASSAL_ON_DEMAND, VA_ARMED },
		{ VEV_STOP, VASSAL_GONE, VA_FORGET },
	};

	(void)state;
	walk_life(life, sizeof life / sizeof life[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_process_events_need_a_process),
		cmocka_unit_test(test_out_of_range_and_names),
		cmocka_unit_test(test_a_life),
		cmocka_unit_test(test_an_on_demand_life),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
