/* reload_fsm.h — the reload machine of a vassal master as one pure transition
 * function: state × event → action, next state (and a queued reload to run next). It
 * starts no process and reads no clock, so a test walks every pair (tests/unit/
 * test_reload_fsm.c). vassal/reload.c feeds it the events and carries out the actions;
 * docs/reload.md draws it. */
#ifndef EMPEROR_RELOAD_FSM_H
#define EMPEROR_RELOAD_FSM_H

#include <stdbool.h>

#include "master.h"

enum reload_state {
	RS_STARTING,        /* the first generation of this image is starting */
	RS_RUNNING,         /* every worker settled; nothing in progress */
	RS_VALIDATING,      /* a request is being validated (synchronous) */
	RS_WORKERS,         /* reload: workers — each cursed worker is replaced as it exits */
	RS_CHAIN,           /* reload: chain — one replacement at a time */
	RS_OVERLAP,         /* reload: overlap — the new generation starts beside the old */
	RS_OVERLAP_RETIRE,  /* reload: overlap — the new one ready, the old one cursed */
	/* The teardown (DESIGN.md "Graceful reload", step 4), for a reload or a stop: */
	RS_TD_SPOOLER,      /* 1 the spooler processes */
	RS_TD_DAEMONS,      /* 2 attached daemons (a reload spares survive-reload ones) */
	RS_TD_GATEWAYS,     /* 3 the routers */
	RS_TD_NESTED,       /* 4 the nested emperor */
	RS_TD_LEGIONS,      /* 5 legion death announcement: no legions yet, a no-op */
	RS_TD_UNSUBSCRIBE,  /* 6 unsubscribe (a reload only with unsubscribe-on-reload) */
	RS_TD_WORKERS,      /* 7 curse the workers */
	RS_TD_MULES,        /* 8 curse the mules */
	RS_TD_WAIT,         /* every child the teardown stops is gone */
	RS_REEXEC,          /* reload: re-exec once the signals already caught are handled */
	RS_BRUTAL,          /* SIGKILL sent to every child; exit when all are reaped */
	RS_EXITING,         /* exit(0) */
	RS_COUNT
};

enum reload_goal {
	GOAL_NONE,          /* no teardown */
	GOAL_RELOAD,        /* the teardown ends in a re-exec */
	GOAL_STOP,          /* the teardown ends in exit 0 */
};

enum reload_event {
	RE_NONE,
	RE_RELOAD,          /* SIGHUP, a touch: reload as configured */
	RE_CHAIN,           /* SIGUSR2: chain reload */
	RE_STOP,            /* SIGTERM, the emperor gone: graceful stop */
	RE_BRUTAL,          /* SIGINT, SIGQUIT: SIGKILL everything */
	RE_CONFIG_INVALID,  /* validation: the file is invalid */
	RE_CONFIG_GRACEFUL, /* validation: valid, reload by teardown and re-exec */
	RE_CONFIG_WORKERS,  /* validation: valid, reload: workers */
	RE_CONFIG_CHAIN,    /* validation: valid, chain reload */
	RE_CONFIG_OVERLAP,  /* validation: valid, reload: overlap */
	RE_STEP_DONE,       /* the current teardown step has nothing left to stop */
	RE_CHILD_GONE,      /* a child was reaped; others of the step still run */
	RE_ALL_GONE,        /* a child was reaped and no child runs any more */
	RE_MERCY_EXPIRED,   /* a cursed child's mercy ran out (lib/child.c SIGKILLs it) */
	RE_SETTLED,         /* every worker is ready or failing, no chain step waits */
	RE_CHAIN_READY,     /* the chain's replacement worker is ready */
	RE_CHAIN_FAILED,    /* the chain's replacement failed or missed its ready-timeout */
	RE_GEN_READY,       /* overlap: every worker of the new generation is ready */
	RE_GEN_FAILED,      /* overlap: a new worker crashed or missed its ready-timeout */
	RE_EXEC_DUE,        /* the idle watcher: every caught signal has been handled */
	RE_COUNT
};

enum reload_action {
	RA_NONE,            /* nothing to do: an expected event that changes nothing */
	RA_IMPOSSIBLE,      /* cannot happen in this state: logged as a warning, ignored */
	RA_REFUSE,          /* a reload during a stop: refused, logged */
	RA_QUEUE,           /* a reload during a start/reload: runs when that one ends */
	RA_ALREADY_STOPPING,/* a stop during a stop: logged */
	RA_VALIDATE,        /* read and validate the file, then feed the RE_CONFIG_* result */
	RA_VALIDATE_CHAIN,  /* the same for a chain request */
	RA_ABORT,           /* invalid: everything keeps running, READY=1 */
	RA_BEGIN_GRACEFUL,  /* RELOADING=1, then the first teardown step */
	RA_BEGIN_WORKERS,   /* RELOADING=1, curse the old workers */
	RA_BEGIN_CHAIN,     /* RELOADING=1, the first replacement */
	RA_CHAIN_NEXT,      /* curse the replaced worker, start the next replacement */
	RA_CHAIN_FAIL,      /* back to the previous config, the old workers kept */
	RA_BEGIN_OVERLAP,   /* RELOADING=1, the whole new generation started */
	RA_OVERLAP_SWITCH,  /* the new generation ready: curse the old one */
	RA_OVERLAP_FAIL,    /* stop the new generation, the old one kept with its config */
	RA_FINISH,          /* a start or reload ended: logged, READY=1 */
	RA_STEP,            /* begin the teardown step the new state names */
	RA_BEGIN_STOP,      /* STOPPING=1, then the teardown from its first step */
	RA_BRUTAL,          /* SIGKILL to every child's process group */
	RA_REEXEC,          /* block the signals, arm the idle watcher */
	RA_EXEC,            /* hand over and execv (does not return) */
	RA_EXIT,            /* final clean-up, exit(0) */
	RA_COUNT
};

struct reload_fsm {
	enum reload_state state;
	enum reload_goal goal;
	bool pending;       /* a reload was asked for meanwhile; crosses the re-exec */
};

struct reload_transition {
	struct reload_fsm next;
	enum reload_action action;
	enum reload_event then; /* RE_RELOAD: the queued reload runs now; else RE_NONE */
};

struct reload_transition reload_fsm_next(struct reload_fsm cur, enum reload_event ev);
/* The coarse view others read (status, the kinds' exit policy). */
enum master_state reload_fsm_master_state(struct reload_fsm s);
/* True in the states where an exiting child is not replaced: teardown, re-exec,
 * brutal stop, exit. */
bool reload_fsm_tearing_down(struct reload_fsm s);
const char *reload_state_name(enum reload_state s);
const char *reload_event_name(enum reload_event e);
const char *reload_action_name(enum reload_action a);

#endif
