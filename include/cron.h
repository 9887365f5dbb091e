/* cron.h — crons (vassal/cron.c): programs the master runs on a schedule (cron fields
 * or `every`), each a child on the one child mechanism, never two runs of one cron at
 * once (a tick that finds the last run still going is skipped and logged); and the
 * one-shot runs of the legion hooks (on-lord, on-unlord). One timer for every cron,
 * armed at the earliest next tick; none without crons. */
#ifndef EMPEROR_CRON_H
#define EMPEROR_CRON_H

#include "master.h"
#include "util.h"

/* Schedules every cron of m->cfg; m->crons points at the module's state (also when
 * there is no cron: the hooks use it). -1 if out of memory (logged). */
int cron_start(struct master *m);
/* Stops for good the runs of the crons with `legion: legion` (mercy at most
 * max_mercy; a second call may shorten it); done(arg) is called as each one is
 * reaped. Returns how many it began to stop. */
int cron_legion_stop(struct master *m, const char *legion, double max_mercy,
		     void (*done)(void *arg), void *arg);
/* Runs argv once now, with env ("K=V") added, as "hook NAME"; done(arg) when it has
 * exited (or at once, with -1 returned, if it could not start). */
int cron_run_hook(struct master *m, const char *name, char *const *argv, char *const *env,
		  void (*done)(void *arg), void *arg);
/* The status: "cron NAME: next in 12s, 3 runs, 1 skipped, last exited 0" per cron. */
void cron_status_text(const struct master *m, struct strbuf *b);

#endif
