/* vstate.h — a vassal's life as the emperor sees it, as one machine (emperor/vstate.c):
 * state × event → (next state, action). The table is pure: it starts no process and
 * touches no record, so a unit test walks every pair. vtable.c feeds it the events
 * (a spawn, a channel message, a request, a reaped exit), sets the state it returns
 * in one place (logged at debug level) and carries out the action. */
#ifndef EMPEROR_VSTATE_H
#define EMPEROR_VSTATE_H

enum vassal_state {
	VASSAL_STARTING,  /* spawned, no READY=1 yet */
	VASSAL_READY,     /* READY=1 received */
	VASSAL_RELOADING, /* SIGHUP sent, or RELOADING=1 received; waiting for READY=1 */
	VASSAL_STOPPING,  /* SIGTERM sent; the record goes when the process is reaped */
	VASSAL_WAITING,   /* a start is due: respawn throttled, or right away */
	VASSAL_HALTED,    /* not running until its file changes: bad config or exit 0 */
	VASSAL_ON_DEMAND, /* the emperor holds and watches its sockets; no master until a
			   * connection comes (emperor/demand.c): after its start, and after
			   * an idle stop of an on-demand vassal */
	VASSAL_IDLE,      /* stopped by itself after `idle:` without a connection, not
			   * on-demand: not an error; started by a change of its file */
	/* Appended, so that an upgrade from an older image keeps its numbers. */
	VASSAL_IDLING,    /* running, and stopping by itself for being idle (it said
			   * X_IDLE=1): no reload is sent to it; its exit 0 makes it IDLE
			   * (or ON-DEMAND) */
	VASSAL_RESTARTING,/* IDLING, and its file changed meanwhile: started again once
			   * its process has exited */
	VASSAL_QUEUED,    /* a new record, not started yet: in the start queue, or its
			   * predecessor (same name, or its old name) still stopping */
	VASSAL_GONE,      /* the record is freed: never held by a record */
};

enum vstate_event {
	VEV_SPAWNED,       /* a start forked its process */
	VEV_SPAWN_FAILED,  /* a start got no process (no pipe, no fork) */
	VEV_REFUSED,       /* a start found its file invalid, or refused (tyrant mode) */
	VEV_READY_MSG,     /* READY=1 on its channel */
	VEV_RELOADING_MSG, /* RELOADING=1 on its channel: it reloads by itself */
	VEV_IDLE_MSG,      /* X_IDLE=1 on its channel: it stops for being idle */
	VEV_RELOAD,        /* we ask it to reload: SIGHUP, heartbeat, emperorctl */
	VEV_CHANGED,       /* its file was touched, or edited and valid */
	VEV_STOP,          /* its file is gone, or the emperor stops */
	VEV_HALT,          /* emperorctl stop: stop it, keep the record halted */
	VEV_KILL,          /* SIGKILL to its group now (heartbeat lost twice) */
	VEV_BRUTAL_STOP,   /* the emperor's second SIGINT */
	VEV_EXIT_OK,       /* reaped: exited 0 */
	VEV_EXIT_CONFIG,   /* reaped: exited 78, bad config */
	VEV_EXIT_FAILED,   /* reaped: any other exit or a signal */
	VEV_EXIT_HALTED,   /* reaped after emperorctl stop (the emperor is not stopping) */
	VEV_ARMED,         /* a start of an on-demand vassal bound and watches its sockets */
	VEV_COUNT
};

enum vstate_action {
	VA_IGNORE,         /* nothing to do in this state */
	VA_IMPOSSIBLE,     /* cannot happen in this state: logged, nothing changes */
	VA_STARTED,        /* log it, time it from now */
	VA_RETRY,          /* schedule the next start, throttled */
	VA_HALT_INVALID,   /* wait for the file to change */
	VA_ANNOUNCE_READY, /* "ready after N ms" */
	VA_ANNOUNCE_RELOADED, /* "reloaded (why) in N ms" */
	VA_NOTE_SELF_RELOAD,  /* time the reload it started by itself */
	VA_NOTE_IDLE,      /* log that it stops for being idle; its reload slot is freed */
	VA_SIGNAL_RELOAD,  /* signal it, time the reload from now */
	VA_SIGNAL_MORE,    /* signal it again: one more reload, timed from the first */
	VA_START,          /* no process: start it now (the throttle, if any, cancelled) */
	VA_NOTE_RESTART,   /* log that it starts again once its idle stop is over */
	VA_CURSE,          /* SIGTERM, SIGKILL of its group after its stop-mercy */
	VA_FORGET,         /* no process: the record goes now */
	VA_CANCEL_RESPAWN, /* no process: no respawn either */
	VA_UNQUEUE,        /* not started yet: out of the start queue, halted */
	VA_KILL,           /* SIGKILL its group */
	VA_STOPPED,        /* stopped as asked: the record goes */
	VA_STOPPED_KEEP,   /* stopped by emperorctl: halted until started again */
	VA_HALT_EXIT0,     /* exited 0 unasked: stays stopped until its file changes */
	VA_HALT_BAD_CONFIG,/* exit 78: waits for the file to change */
	VA_RESPAWN,        /* died unasked: respawn after the throttle */
	VA_ARMED,          /* log that it waits for a connection */
	VA_IDLE_STOPPED,   /* log it; on-demand: watch its sockets again (ARMED) */
	VA_RESTART,        /* stopped (idle) after its file changed: start it now */
	VA_COUNT
};

struct vstate_step {
	enum vassal_state next;
	enum vstate_action action;
};

/* The transition: pure, defined for every state (but GONE) and event. */
struct vstate_step vstate_next(enum vassal_state st, enum vstate_event ev);
const char *vstate_name(enum vassal_state st);
const char *vstate_event_name(enum vstate_event ev);
const char *vstate_action_name(enum vstate_action a);
/* States a record can hold: STARTING .. QUEUED (GONE is never held). */
#define VASSAL_N_STATES VASSAL_GONE
/* A process exists in this state (STARTING, READY, RELOADING, STOPPING, IDLING,
 * RESTARTING). */
int vstate_running(enum vassal_state st);
/* Its process is on its way out (STOPPING, IDLING, RESTARTING): no reload is sent to
 * it, no heartbeat is awaited. */
int vstate_leaving(enum vassal_state st);

#endif
