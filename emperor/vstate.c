/* vstate.c — the table of a vassal's life in the emperor (see vstate.h). Rows are
 * events, columns states; each cell is the next state and what vtable.c does then.
 * Running states (a process exists): STARTING, READY, RELOADING, STOPPING, IDLING,
 * RESTARTING. A new event is one new row here and one case in vtable.c's action
 * switch; a new state, one column.
 *
 *  (new) QUEUED --SPAWNED--> STARTING --READY=1--> READY <--READY=1-- RELOADING
 *                                 \                  |  \--RELOAD/RELOADING=1--^
 *        exit 0/78 → HALTED        \--STOP/HALT--> STOPPING --exit--> (gone) or HALTED
 *        other exit → WAITING --SPAWNED--> STARTING        (HALTED after emperorctl stop)
 *        a change of its file, in any state without a process: started (START)
 *
 * On-demand and idle (emperor/demand.c holds the sockets):
 *   QUEUED/HALTED/WAITING/IDLE --ARMED--> ON-DEMAND --SPAWNED (a connection)--> STARTING
 *   STARTING/READY/RELOADING --X_IDLE=1--> IDLING --exit 0--> IDLE (on-demand: ARMED)
 *   IDLING --file changed--> RESTARTING --exit 0--> WAITING --START--> STARTING/ON-DEMAND
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
#define D VASSAL_IDLING
#define T VASSAL_RESTARTING
#define Q VASSAL_QUEUED
#define G VASSAL_GONE
#define STAY(st) { st, VA_IGNORE }
#define NO(st) { st, VA_IMPOSSIBLE }
#define DO(st, a) { st, a }

/* [event][state]: STARTING, READY, RELOADING, STOPPING, WAITING, HALTED, ON-DEMAND, IDLE,
 * IDLING, RESTARTING, QUEUED */
static const struct vstate_step table[VEV_COUNT][VASSAL_N_STATES] = {
	[VEV_SPAWNED] = { NO(S), NO(R), NO(L), NO(P), DO(S, VA_STARTED), DO(S, VA_STARTED),
			  DO(S, VA_STARTED), DO(S, VA_STARTED), NO(D), NO(T), DO(S, VA_STARTED) },
	[VEV_SPAWN_FAILED] = { NO(S), NO(R), NO(L), NO(P), DO(W, VA_RETRY), DO(W, VA_RETRY),
			       DO(W, VA_RETRY), DO(W, VA_RETRY), NO(D), NO(T), DO(W, VA_RETRY) },
	[VEV_REFUSED] = { NO(S), NO(R), NO(L), NO(P), DO(H, VA_HALT_INVALID),
			  DO(H, VA_HALT_INVALID), DO(H, VA_HALT_INVALID), DO(H, VA_HALT_INVALID),
			  NO(D), NO(T), DO(H, VA_HALT_INVALID) },
	[VEV_READY_MSG] = { DO(R, VA_ANNOUNCE_READY), STAY(R), DO(R, VA_ANNOUNCE_RELOADED),
			    STAY(P), NO(W), NO(H), NO(O), NO(I), STAY(D), STAY(T), NO(Q) },
	[VEV_RELOADING_MSG] = { STAY(S), DO(L, VA_NOTE_SELF_RELOAD), STAY(L), STAY(P), NO(W),
				NO(H), NO(O), NO(I), STAY(D), STAY(T), NO(Q) },
	[VEV_IDLE_MSG] = { DO(D, VA_NOTE_IDLE), DO(D, VA_NOTE_IDLE), DO(D, VA_NOTE_IDLE),
			   STAY(P), NO(W), NO(H), NO(O), NO(I), STAY(D), STAY(T), NO(Q) },
	[VEV_RELOAD] = { DO(L, VA_SIGNAL_RELOAD), DO(L, VA_SIGNAL_RELOAD), DO(L, VA_SIGNAL_MORE),
			 STAY(P), STAY(W), STAY(H), STAY(O), STAY(I), STAY(D), STAY(T), STAY(Q) },
	[VEV_CHANGED] = { DO(L, VA_SIGNAL_RELOAD), DO(L, VA_SIGNAL_RELOAD), DO(L, VA_SIGNAL_MORE),
			  STAY(P), DO(W, VA_START), DO(H, VA_START), DO(O, VA_START),
			  DO(I, VA_START), DO(T, VA_NOTE_RESTART), STAY(T), DO(Q, VA_START) },
	[VEV_STOP] = { DO(P, VA_CURSE), DO(P, VA_CURSE), DO(P, VA_CURSE), STAY(P),
		       DO(G, VA_FORGET), DO(G, VA_FORGET), DO(G, VA_FORGET), DO(G, VA_FORGET),
		       DO(P, VA_CURSE), DO(P, VA_CURSE), DO(G, VA_FORGET) },
	[VEV_HALT] = { DO(P, VA_CURSE), DO(P, VA_CURSE), DO(P, VA_CURSE), DO(P, VA_CURSE),
		       DO(H, VA_CANCEL_RESPAWN), DO(H, VA_CANCEL_RESPAWN),
		       DO(H, VA_CANCEL_RESPAWN), DO(H, VA_CANCEL_RESPAWN), DO(P, VA_CURSE),
		       DO(P, VA_CURSE), DO(H, VA_UNQUEUE) },
	[VEV_KILL] = { DO(S, VA_KILL), DO(R, VA_KILL), DO(L, VA_KILL), DO(P, VA_KILL), STAY(W),
		       STAY(H), STAY(O), STAY(I), DO(D, VA_KILL), DO(T, VA_KILL), STAY(Q) },
	[VEV_BRUTAL_STOP] = { DO(P, VA_KILL), DO(P, VA_KILL), DO(P, VA_KILL), DO(P, VA_KILL),
			      NO(W), NO(H), NO(O), NO(I), DO(P, VA_KILL), DO(P, VA_KILL), NO(Q) },
	[VEV_EXIT_OK] = { DO(H, VA_HALT_EXIT0), DO(H, VA_HALT_EXIT0), DO(H, VA_HALT_EXIT0),
			  DO(G, VA_STOPPED), NO(W), NO(H), NO(O), NO(I), DO(I, VA_IDLE_STOPPED),
			  DO(W, VA_RESTART), NO(Q) },
	[VEV_EXIT_CONFIG] = { DO(H, VA_HALT_BAD_CONFIG), DO(H, VA_HALT_BAD_CONFIG),
			      DO(H, VA_HALT_BAD_CONFIG), DO(G, VA_STOPPED), NO(W), NO(H), NO(O),
			      NO(I), DO(H, VA_HALT_BAD_CONFIG), DO(H, VA_HALT_BAD_CONFIG), NO(Q) },
	[VEV_EXIT_FAILED] = { DO(W, VA_RESPAWN), DO(W, VA_RESPAWN), DO(W, VA_RESPAWN),
			      DO(G, VA_STOPPED), NO(W), NO(H), NO(O), NO(I), DO(W, VA_RESPAWN),
			      DO(W, VA_RESPAWN), NO(Q) },
	[VEV_EXIT_HALTED] = { NO(S), NO(R), NO(L), DO(H, VA_STOPPED_KEEP), NO(W), NO(H), NO(O),
			      NO(I), NO(D), NO(T), NO(Q) },
	[VEV_ARMED] = { NO(S), NO(R), NO(L), NO(P), DO(O, VA_ARMED), DO(O, VA_ARMED),
			DO(O, VA_ARMED), DO(O, VA_ARMED), NO(D), NO(T), DO(O, VA_ARMED) },
};

struct vstate_step vstate_next(enum vassal_state st, enum vstate_event ev)
{
	if ((unsigned)st >= VASSAL_N_STATES || (unsigned)ev >= VEV_COUNT)
		return (struct vstate_step){ st, VA_IMPOSSIBLE };
	return table[ev][st];
}

int vstate_running(enum vassal_state st)
{
	return st == S || st == R || st == L || st == P || st == D || st == T;
}

int vstate_leaving(enum vassal_state st)
{
	return st == P || st == D || st == T;
}

const char *vstate_name(enum vassal_state st)
{
	static const char *const names[] = {
		[S] = "starting", [R] = "ready", [L] = "reloading", [P] = "stopping",
		[W] = "waiting", [H] = "halted", [O] = "on-demand", [I] = "idle", [D] = "stopping-idle",
		[T] = "restarting", [Q] = "queued", [G] = "gone",
	};
	return (unsigned)st < ARRAY_LEN(names) ? names[st] : "?";
}

const char *vstate_event_name(enum vstate_event ev)
{
	static const char *const names[] = {
		[VEV_SPAWNED] = "spawned", [VEV_SPAWN_FAILED] = "spawn-failed",
		[VEV_REFUSED] = "refused", [VEV_READY_MSG] = "READY=1",
		[VEV_RELOADING_MSG] = "RELOADING=1", [VEV_IDLE_MSG] = "X_IDLE=1",
		[VEV_RELOAD] = "reload", [VEV_CHANGED] = "changed", [VEV_STOP] = "stop",
		[VEV_HALT] = "halt", [VEV_KILL] = "kill", [VEV_BRUTAL_STOP] = "brutal-stop",
		[VEV_EXIT_OK] = "exit-0", [VEV_EXIT_CONFIG] = "exit-78",
		[VEV_EXIT_FAILED] = "exit-failed", [VEV_EXIT_HALTED] = "exit-halted",
		[VEV_ARMED] = "armed",
	};
	return (unsigned)ev < ARRAY_LEN(names) ? names[ev] : "?";
}

const char *vstate_action_name(enum vstate_action a)
{
	static const char *const names[] = {
		[VA_IGNORE] = "ignore", [VA_IMPOSSIBLE] = "impossible", [VA_STARTED] = "started",
		[VA_RETRY] = "retry", [VA_HALT_INVALID] = "halt-invalid",
		[VA_ANNOUNCE_READY] = "announce-ready", [VA_ANNOUNCE_RELOADED] = "announce-reloaded",
		[VA_NOTE_SELF_RELOAD] = "note-self-reload", [VA_NOTE_IDLE] = "note-idle",
		[VA_SIGNAL_RELOAD] = "signal-reload", [VA_SIGNAL_MORE] = "signal-more",
		[VA_START] = "start", [VA_NOTE_RESTART] = "note-restart", [VA_CURSE] = "curse",
		[VA_FORGET] = "forget", [VA_CANCEL_RESPAWN] = "cancel-respawn",
		[VA_UNQUEUE] = "unqueue", [VA_KILL] = "kill", [VA_STOPPED] = "stopped",
		[VA_STOPPED_KEEP] = "stopped-keep", [VA_HALT_EXIT0] = "halt-exit-0",
		[VA_HALT_BAD_CONFIG] = "halt-bad-config", [VA_RESPAWN] = "respawn",
		[VA_ARMED] = "armed", [VA_IDLE_STOPPED] = "idle-stopped", [VA_RESTART] = "restart",
	};
	return (unsigned)a < ARRAY_LEN(names) ? names[a] : "?";
}
