/* test_vstate.c — the emperor's vassal machine (emperor/vstate.c) without a process:
 * every state × event pair has its expected next state and action, written here
 * independently of the table, the impossible ones included (they change nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vstate.h"

#define N_STATES VASSAL_N_STATES

/* For each event, the outcome in STARTING, READY, RELOADING, STOPPING, WAITING,
 * HALTED, ON-DEMAND, IDLE, STOPPING-IDLE, RESTARTING, QUEUED as "next:action"; "-" is
 * an impossible pair (state kept). */
static const char *const expected[VEV_COUNT][N_STATES] = {
	[VEV_SPAWNED] = { "-", "-", "-", "-", "starting:started", "starting:started",
			"starting:started", "starting:started", "-", "-", "starting:started" },
	[VEV_SPAWN_FAILED] = { "-", "-", "-", "-", "waiting:retry", "waiting:retry",
			"waiting:retry", "waiting:retry", "-", "-", "waiting:retry" },
	[VEV_REFUSED] = { "-", "-", "-", "-", "halted:halt-invalid", "halted:halt-invalid",
			"halted:halt-invalid", "halted:halt-invalid", "-", "-",
			"halted:halt-invalid" },
	[VEV_READY_MSG] = { "ready:announce-ready", "ready:ignore", "ready:announce-reloaded",
			    "stopping:ignore", "-", "-", "-", "-", "stopping-idle:ignore",
			    "restarting:ignore", "-" },
	[VEV_RELOADING_MSG] = { "starting:ignore", "reloading:note-self-reload",
				"reloading:ignore", "stopping:ignore", "-", "-", "-", "-",
				"stopping-idle:ignore", "restarting:ignore", "-" },
	[VEV_IDLE_MSG] = { "stopping-idle:note-idle", "stopping-idle:note-idle",
			   "stopping-idle:note-idle", "stopping:ignore", "-", "-", "-", "-",
			   "stopping-idle:ignore", "restarting:ignore", "-" },
	[VEV_RELOAD] = { "reloading:signal-reload", "reloading:signal-reload",
			 "reloading:signal-more", "stopping:ignore", "waiting:ignore",
			 "halted:ignore", "on-demand:ignore", "idle:ignore",
			 "stopping-idle:ignore", "restarting:ignore", "queued:ignore" },
	[VEV_CHANGED] = { "reloading:signal-reload", "reloading:signal-reload",
			  "reloading:signal-more", "stopping:ignore", "waiting:start",
			  "halted:start", "on-demand:start", "idle:start",
			  "restarting:note-restart", "restarting:ignore", "queued:start" },
	[VEV_STOP] = { "stopping:curse", "stopping:curse", "stopping:curse", "stopping:ignore",
		       "gone:forget", "gone:forget", "gone:forget", "gone:forget",
		       "stopping:curse", "stopping:curse", "gone:forget" },
	[VEV_HALT] = { "stopping:curse", "stopping:curse", "stopping:curse", "stopping:curse",
		       "halted:cancel-respawn", "halted:cancel-respawn",
		       "halted:cancel-respawn", "halted:cancel-respawn", "stopping:curse",
		       "stopping:curse", "halted:unqueue" },
	[VEV_KILL] = { "starting:kill", "ready:kill", "reloading:kill", "stopping:kill",
		       "waiting:ignore", "halted:ignore", "on-demand:ignore", "idle:ignore",
		       "stopping-idle:kill", "restarting:kill", "queued:ignore" },
	[VEV_BRUTAL_STOP] = { "stopping:kill", "stopping:kill", "stopping:kill", "stopping:kill",
			      "-", "-", "-", "-", "stopping:kill", "stopping:kill", "-" },
	[VEV_EXIT_OK] = { "halted:halt-exit-0", "halted:halt-exit-0", "halted:halt-exit-0",
			  "gone:stopped", "-", "-", "-", "-", "idle:idle-stopped",
			  "waiting:restart", "-" },
	[VEV_EXIT_CONFIG] = { "halted:halt-bad-config", "halted:halt-bad-config",
			      "halted:halt-bad-config", "gone:stopped", "-", "-", "-", "-",
			      "halted:halt-bad-config", "halted:halt-bad-config", "-" },
	[VEV_EXIT_FAILED] = { "waiting:respawn", "waiting:respawn", "waiting:respawn",
			      "gone:stopped", "-", "-", "-", "-", "waiting:respawn",
			      "waiting:respawn", "-" },
	[VEV_EXIT_HALTED] = { "-", "-", "-", "halted:stopped-keep", "-", "-", "-", "-", "-", "-",
			      "-" },
	[VEV_ARMED] = { "-", "-", "-", "-", "on-demand:armed", "on-demand:armed",
			"on-demand:armed", "on-demand:armed", "-", "-", "on-demand:armed" },
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
		VEV_EXIT_HALTED, VEV_BRUTAL_STOP, VEV_IDLE_MSG,
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
	assert_false(vstate_running(VASSAL_QUEUED));
	assert_true(vstate_running(VASSAL_IDLING));
	assert_true(vstate_running(VASSAL_RESTARTING));
	assert_false(vstate_running(VASSAL_GONE));
}

/* A process on its way out gets no reload: no reload event in a leaving state may
 * signal it, and the leaving states are exactly those the table keeps a reload from. */
static void test_no_reload_reaches_a_leaving_process(void **state)
{
	(void)state;
	for (int st = 0; st < N_STATES; st++) {
		struct vstate_step r = vstate_next(st, VEV_RELOAD);
		bool signals = r.action == VA_SIGNAL_RELOAD || r.action == VA_SIGNAL_MORE;
		if (vstate_running(st) && signals == (bool)vstate_leaving(st))
			fail_msg("reload in %s: %s", vstate_name(st), vstate_action_name(r.action));
		struct vstate_step c = vstate_next(st, VEV_CHANGED);
		if (vstate_leaving(st) && (c.action == VA_SIGNAL_RELOAD || c.action == VA_SIGNAL_MORE))
			fail_msg("a change in %s signals it", vstate_name(st));
	}
	assert_true(vstate_leaving(VASSAL_STOPPING));
	assert_true(vstate_leaving(VASSAL_IDLING));
	assert_true(vstate_leaving(VASSAL_RESTARTING));
	assert_false(vstate_leaving(VASSAL_READY));
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

/* Walks steps from QUEUED (a new record), each checked against the table. */
static void walk_life(const struct life_step *life, size_t n)
{
	enum vassal_state st = VASSAL_QUEUED;

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

/* An on-demand life: armed, woken by a connection, stopping for being idle (a SIGHUP
 * then is not sent to it), stopped: its sockets watched again (ON-DEMAND, one meaning
 * whatever brought it there); woken again, idle again, its changed socket not bound
 * after the stop (waiting, retried), armed again, removed while waiting. */
static void test_an_on_demand_life(void **state)
{
	static const struct life_step life[] = {
		{ VEV_ARMED, VASSAL_ON_DEMAND, VA_ARMED },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_IDLE_MSG, VASSAL_IDLING, VA_NOTE_IDLE },
		{ VEV_RELOAD, VASSAL_IDLING, VA_IGNORE },
		{ VEV_EXIT_OK, VASSAL_IDLE, VA_IDLE_STOPPED },
		{ VEV_ARMED, VASSAL_ON_DEMAND, VA_ARMED },
		{ VEV_RELOAD, VASSAL_ON_DEMAND, VA_IGNORE },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_IDLE_MSG, VASSAL_IDLING, VA_NOTE_IDLE },
		{ VEV_EXIT_OK, VASSAL_IDLE, VA_IDLE_STOPPED },
		{ VEV_SPAWN_FAILED, VASSAL_WAITING, VA_RETRY },
		{ VEV_ARMED, VASSAL_ON_DEMAND, VA_ARMED },
		{ VEV_STOP, VASSAL_GONE, VA_FORGET },
	};

	(void)state;
	walk_life(life, sizeof life / sizeof life[0]);
}

/* An idle stop without on-demand: queued, started, ready; X_IDLE=1 makes it
 * stopping-idle, where the emperor's SIGHUP (a reload) is not sent to the master and
 * changes nothing; its exit 0 is an idle stop (no flag: the state says it), not a
 * halt; a touch starts it again. Then a touch during the next idle stop: restarting,
 * and its exit 0 makes a start due at once (WAITING: restart), which spawns it. */
static void test_an_idle_life(void **state)
{
	static const struct life_step life[] = {
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_IDLE_MSG, VASSAL_IDLING, VA_NOTE_IDLE },
		{ VEV_RELOAD, VASSAL_IDLING, VA_IGNORE },
		{ VEV_READY_MSG, VASSAL_IDLING, VA_IGNORE },
		{ VEV_EXIT_OK, VASSAL_IDLE, VA_IDLE_STOPPED },
		{ VEV_RELOAD, VASSAL_IDLE, VA_IGNORE },
		{ VEV_CHANGED, VASSAL_IDLE, VA_START },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_IDLE_MSG, VASSAL_IDLING, VA_NOTE_IDLE },
		{ VEV_CHANGED, VASSAL_RESTARTING, VA_NOTE_RESTART },
		{ VEV_RELOAD, VASSAL_RESTARTING, VA_IGNORE },
		{ VEV_CHANGED, VASSAL_RESTARTING, VA_IGNORE },
		{ VEV_EXIT_OK, VASSAL_WAITING, VA_RESTART },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
		{ VEV_READY_MSG, VASSAL_READY, VA_ANNOUNCE_READY },
		{ VEV_IDLE_MSG, VASSAL_IDLING, VA_NOTE_IDLE },
		{ VEV_STOP, VASSAL_STOPPING, VA_CURSE },   /* its file removed meanwhile */
		{ VEV_EXIT_OK, VASSAL_GONE, VA_STOPPED },
	};

	(void)state;
	walk_life(life, sizeof life / sizeof life[0]);
}

/* A queued record halted by emperorctl stop leaves the queue and stays halted; a
 * queued one whose file is removed goes at once; a queued one refused is halted. */
static void test_queued(void **state)
{
	static const struct life_step halted[] = {
		{ VEV_RELOAD, VASSAL_QUEUED, VA_IGNORE },
		{ VEV_HALT, VASSAL_HALTED, VA_UNQUEUE },
		{ VEV_CHANGED, VASSAL_HALTED, VA_START },
		{ VEV_SPAWNED, VASSAL_STARTING, VA_STARTED },
	};
	static const struct life_step removed[] = { { VEV_STOP, VASSAL_GONE, VA_FORGET } };
	static const struct life_step refused[] = { { VEV_REFUSED, VASSAL_HALTED, VA_HALT_INVALID } };

	(void)state;
	walk_life(halted, sizeof halted / sizeof halted[0]);
	walk_life(removed, 1);
	walk_life(refused, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_process_events_need_a_process),
		cmocka_unit_test(test_out_of_range_and_names),
		cmocka_unit_test(test_a_life),
		cmocka_unit_test(test_an_on_demand_life),
		cmocka_unit_test(test_an_idle_life),
		cmocka_unit_test(test_queued),
		cmocka_unit_test(test_no_reload_reaches_a_leaving_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
