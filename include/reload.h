/* reload.h — the reload state machine of a vassal master (docs/reload.md): graceful
 * reload (teardown in DESIGN.md's order, then re-exec with the sockets kept open),
 * `workers` mode, chain reload, graceful stop and brutal stop. */
#ifndef EMPEROR_RELOAD_H
#define EMPEROR_RELOAD_H

#include "master.h"
#include "workers.h"

int reload_init(struct master *m);
/* A reload was asked for (SIGHUP, touch, the emperor). Validates the file first. */
void reload_request(struct master *m, const char *why, enum reload_how how);
/* Graceful stop: the teardown, then exit 0. Takes over a running reload. */
void reload_stop(struct master *m, const char *why);
/* SIGINT/SIGQUIT: SIGKILL every child's group, exit when they are reaped. */
void reload_brutal_stop(struct master *m, const char *why);
/* True while the teardown runs: exiting children are not respawned. */
bool reload_tearing_down(const struct master *m);
/* A child exited; the teardown may move on. */
void reload_child_gone(struct master *m);
/* Chain reload hooks, called by workers.c. */
void reload_worker_ready(struct master *m, struct worker *w);
/* w will not be ready (why: "was not ready within 2.0s"); a chain waiting for it fails. */
void reload_worker_failed(struct master *m, struct worker *w, const char *why);
/* Every worker is ready, or failing: finish a start or a reload, run a queued one. */
void reload_workers_ready(struct master *m);
/* Re-execs with the sockets, the emperor channel and the validated config, from the
 * loop once the signals already caught are handled (a stop among them wins). */
void reload_reexec(struct master *m);

#endif
