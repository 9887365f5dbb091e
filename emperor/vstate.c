/* vstate.c — the table of a vassal's life in the emperor (see vstate.h). Rows are
 * events, columns states; each cell is the next state and what vtable.c does then.
 * Running states (a process exists): STARTING, READY, RELOADING, STOPPING. A new
 * event is one new row here and one case in vtable.c's action switch.
 *
 *   (new) HALTED --SPAWNED--> STARTING --READY=1--> READY <--READY=1-- RELOADING
 *                                 \                  |  \--RELOAD/RELOADING=1--^
 *        exit 0/78 → HALTED        \--STOP/HALT--> STOPPING --exit--> (gone) or HALTED
 *        other exit → WAITING --SPAWNED--> STARTING        (HALTED after emperorctl stop)
 *
 * On-demand and idle (emperor/demand.c holds the sockets):
 *   HALTED/WAITING --ARMED--> ON-DEMAND --SPAWNED (a connection)--> STARTING ...
 *   STARTING/READY/RELOADING --exit-idle--> IDLE --SPAWNED--> STARTING
 */
#include "vstate.h"

#include <stddef.h>

#include "util.h"

#define S VASSAL_STARTING
#define R VASSAL_READY
#define L VASSAL_RELOADING
#define P VASSAL_STOPPING
#define W VASSAL_WAITING
#define H VASSAL_HALTED
#define O VASSAL_ON_DEMAND
#define I VASSAL_IDLE
#define G VASSAL_GONE
#define STAY(st) { st, VA_IGNORE }
#define NO(st) { st, VA_IMPOSSIBLE }

/* [event][state]: STARTING, READY, RELOADING, STOPPING, WAITING, HALTED, ON-DEMAND, IDLE */
static const struct vstate_step table[VEV_COUNT][VASSAL_N_STATES] = {
	[VEV_SPAWNED] = { NO(S), NO(R), NO(L), NO(P), { S, VA_STARTED }, { S, VA_STARTED },
			  { S, VA_STARTED }, { S, VA_STARTED } },
	[VEV_SPAWN_FAILED] = { NO(S), NO(R), NO(L), NO(P), { W, VA_RETRY }, { W, VA_RETRY },
			       { W, VA_RETRY }, { W, VA_RETRY } },
	[VEV_REFUSED] = { NO(S), NO(R), NO(L), NO(P), { H, VA_HALT_INVALID },
			  { H, VA_HALT_INVALID }, { H, VA_HALT_INVALID }, { H, VA_HALT_INVALID } },
	[VEV_READY_MSG] = { { R, VA_ANNOUNCE_READY }, STAY(R), { R, VA_ANNOUNCE_RELOADED },
			    STAY(P), NO(W), NO(H), NO(O), NO(I) },
	[VEV_RELOADING_MSG] = { STAY(S), { L, VA_NOTE_SELF_RELOAD }, STAY(L), STAY(P), NO(W),
				NO(H), NO(O), NO(I) },
	[VEV_RELOAD] = { { L, VA_SIGNAL_RELOAD }, { L, VA_SIGNAL_RELOAD }, { L, VA_SIGNAL_MORE },
			 STAY(P), STAY(W), STAY(H), STAY(O), STAY(I) },
	[VEV_STOP] = { { P, VA_CURSE }, { P, VA_CURSE }, { P, VA_CURSE }, STAY(P),
		       { G, VA_FORGET }, { G, VA_FORGET }, { G, VA_FORGET }, { G, VA_FORGET } },
	[VEV_HALT] = { { P, VA_CURSE }, { P, VA_CURSE }, { P, VA_CURSE }, { P, VA_CURSE },
		       { H, VA_CANCEL_RESPAWN }, { H, VA_CANCEL_RESPAWN },
		       { H, VA_CANCEL_RESPAWN }, { H, VA_CANCEL_RESPAWN } },
	[VEV_KILL] = { { S, VA_KILL }, { R, VA_KILL }, { L, VA_KILL }, { P, VA_KILL }, STAY(W),
		       STAY(H), STAY(O), STAY(I) },
	[VEV_BRUTAL_STOP] = { { P, VA_KILL }, { P, VA_KILL }, { P, VA_KILL }, { P, VA_KILL },
			      NO(W), NO(H), NO(O), NO(I) },
	[VEV_EXIT_OK] = { { H, VA_HALT_EXIT0 }, { H, VA_HALT_EXIT0 }, { H, VA_HALT_EXIT0 },
			  { G, VA_STOPPED }, NO(W), NO(H), NO(O), NO(I) },
	[VEV_EXIT_CONFIG] = { { H, VA_HALT_BAD_CONFIG }, { H, VA_HALT_BAD_CONFIG },
			      { H, VA_HALT_BAD_CONFIG }, { G, VA_STOPPED }, NO(W), NO(H), NO(O),
			      NO(I) },
	[VEV_EXIT_FAILED] = { { W, VA_RESPAWN }, { W, VA_RESPAWN }, { W, VA_RESPAWN },
			      { G, VA_STOPPED }, NO(W), NO(H), NO(O), NO(I) },
	[VEV_EXIT_HALTED] = { NO(S), NO(R), NO(L), { H, VA_STOPPED_KEEP }, NO(W), NO(H), NO(O),
			      NO(I) },
	[VEV_ARMED] = { NO(S), NO(R), NO(L), NO(P), { O, VA_ARMED }, { O, VA_ARMED },
			{ O, VA_ARMED }, { I, VA_ARMED } },
	[VEV_EXIT_IDLE] = { { I, VA_IDLE_STOPPED }, { I, VA_IDLE_STOPPED }, { I, VA_IDLE_STOPPED },
			    { G, VA_STOPPED }, NO(W), NO(H), NO(O), NO(I) },
};

struct vstate_step vstate_next(enum vassal_state st, enum vstate_event ev)
{
	if ((unsigned)st >= VASSAL_N_STATES || (unsigned)ev >= VEV_COUNT)
		return (struct vstate_step){ st, VA_IMPOSSIBLE };
	return table[ev][st];
}

int vstate_running(enum vassal_state st)
{
	return st == S || st == R || st == L || st == P;
}

const char *vstate_name(enum vassal_state st)
{
	static const char *const names[] = {
		[S] = "starting", [R] = "ready", [L] = "reloading", [P] = "stopping",
		[W] = "waiting", [H] = "halted", [O] = "on-demand", [I] = "idle", [G] = "gone",
	};
	return (unsigned)st < ARRAY_LEN(names) ? names[st] : "?";
}

const char *vstate_event_name(enum vstate_event ev)
{
	static const char *const names[] = {
		[VEV_SPAWNED] = "spawned", [VEV_SPAWN_FAILED] = "spawn-failed",
		[VEV_REFUSED] = "refused", [VEV_READY_MSG] = "READY=1",
		[VEV_RELOADING_MSG] = "RELOADING=1", [VEV_RELOAD] = "reload", [VEV_STOP] = "stop",
		[VEV_HALT] = "halt", [VEV_KILL] = "kill", [VEV_BRUTAL_STOP] = "brutal-stop",
		[VEV_EXIT_OK] = "exit-0", [VEV_EXIT_CONFIG] = "exit-78",
		[VEV_EXIT_FAILED] = "exit-failed", [VEV_EXIT_HALTED] = "exit-halted",
		[VEV_ARMED] = "armed", [VEV_EXIT_IDLE] = "exit-idle",
	};
	return (unsigned)ev < ARRAY_LEN(names) ? names[ev] : "?";
}

const char *vstate_action_name(enum vstate_action a)
{
	static const char *const names[] = {
		[VA_IGNORE] = "ignore", [VA_IMPOSSIBLE] = "impossible", [VA_STARTED] = "started",
		[VA_RETRY] = "retry", [VA_HALT_INVALID] = "halt-invalid",
		[VA_ANNOUNCE_READY] = "announce-ready", [VA_ANNOUNCE_RELOADED] = "announce-reloaded",
		[VA_NOTE_SELF_RELOAD] = "note-self-reload", [VA_SIGNAL_RELOAD] = "signal-reload",
		[VA_SIGNAL_MORE] = "signal-more", [VA_CURSE] = "curse", [VA_FORGET] = "forget",
		[VA_CANCEL_RESPAWN] = "cancel-respawn", [VA_KILL] = "kill", [VA_STOPPED] = "stopped",
		[VA_STOPPED_KEEP] = "stopped-keep", [VA_HALT_EXIT0] = "halt-exit-0",
		[VA_HALT_BAD_CONFIG] = "halt-bad-config", [VA_RESPAWN] = "respawn",
		[VA_ARMED] = "armed", [VA_IDLE_STOPPED] = "idle-stopped",
	};
	return (unsigned)a < ARRAY_LEN(names) ? names[a] : "?";
}
