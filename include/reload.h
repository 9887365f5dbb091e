/* reload.h — the reload machine of a vassal master (docs/reload.md): graceful reload
 * (teardown in DESIGN.md's order, then re-exec with the sockets kept open), `workers`
 * mode, chain reload, graceful stop and brutal stop. The decisions are one transition
 * function (reload_fsm.h); this module feeds it events and carries out its actions.
 * It never calls up into master.c: what it needs from above comes in as hooks. */
#ifndef EMPEROR_RELOAD_H
#define EMPEROR_RELOAD_H

#include "master.h"
#include "reexec.h"
#include "workers.h"

struct reload_hooks {
	void (*notify)(void *arg, const char *msg);  /* sd_notify to the emperor */
	void (*stopped)(void *arg);                  /* the final clean-up before exit(0) */
	void *arg;
};

/* The machine of m, in RS_STARTING, with what the previous image handed over (its
 * generation, reload start, pending request). m->reload points at it. */
int reload_init(struct master *m, const struct reexec_state *from, const struct reload_hooks *h);
/* A reload was asked for (SIGHUP, touch, the emperor). Validates the file first. */
void reload_request(struct master *m, const char *why, enum reload_how how);
/* Graceful stop: the teardown, then exit 0. Takes over a running reload. */
void reload_stop(struct master *m, const char *why);
/* SIGINT/SIGQUIT: SIGKILL every child's group, exit when they are reaped. */
void reload_brutal_stop(struct master *m, const char *why);
/* True while exiting children must not be replaced (teardown, re-exec, stops). */
bool reload_tearing_down(const struct master *m);
/* A child exited and will not be replaced; the teardown may move on. */
void reload_child_gone(struct master *m);
/* Chain reload hooks, called by workers.c. */
void reload_worker_ready(struct master *m, struct worker *w);
/* w will not be ready (why: "was not ready within 2.0s"); a chain waiting for it fails. */
void reload_worker_failed(struct master *m, struct worker *w, const char *why);
/* A worker became ready, failed or is gone: a start or reload may have ended. */
void reload_workers_ready(struct master *m);
/* When the running reload (or this image's start) began, for the status. */
double reload_started_at(const struct master *m);

#endif
