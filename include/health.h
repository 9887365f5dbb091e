/* health.h — the workers' limits (workers.watchdog, max-rss, max-lifetime, stall):
 * what the master checks of each running worker and what it does when one is over.
 * A worker that stops sending WATCHDOG=1 gets its stop signal (SIGKILL at its mercy)
 * and a replacement; one that stays busy (X_BUSY=1) past `stall` is killed at once
 * and replaced; one over max-rss or max-lifetime is recycled: a replacement with the
 * same id is started and, once it is ready, the old one is cursed (chain reload's
 * order: the vassal never drops below its ready capacity). Each limit is checked only
 * when configured, by one timer per master; with none configured there is no timer. */
#ifndef EMPEROR_HEALTH_H
#define EMPEROR_HEALTH_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

enum health_reason { HEALTH_WATCHDOG, HEALTH_MAX_RSS, HEALTH_MAX_LIFETIME, HEALTH_STALL,
		     HEALTH_N_REASONS };

/* Embedded in each struct worker; zeroed by calloc. */
struct worker_health {
	ev_tstamp last_ping;        /* READY=1 or the last WATCHDOG=1 */
	ev_tstamp busy_since;       /* X_BUSY=1 (its oldest request began), 0 = idle */
	ev_tstamp lifetime_end;     /* max-lifetime: recycled from then on, 0 = never */
	struct worker *replaces;    /* a recycle's replacement: the worker it replaces */
};

struct master;
struct worker;

/* The names used in logs, status and the metrics' reason label. */
const char *health_reason_name(enum health_reason r);
/* Recycles and kills for reason r since the master started (status, metrics). */
unsigned long health_count(const struct master *m, enum health_reason r);

/* Worker hooks, called by workers.c. */
/* Adds WATCHDOG_USEC / VASSAL_STALL_USEC to a worker's env: at most 2 entries written
 * into add (their text in buf), returns how many. */
size_t health_env(const struct cfg_workers *cw, char **add, char buf[2][48]);
void health_worker_ready(struct worker *w);
void health_worker_notify(struct worker *w, const char *msg);
/* Before workers.c decides whether to replace it: a recycled worker's replacement
 * takes its place, and a failed replacement is not respawned. */
void health_worker_exited(struct worker *w);

/* Pure parts, for the unit tests. */
/* The process group and RSS (pages) from a /proc/PID/stat line; 0, or -1. */
int health_parse_stat(const char *line, pid_t *pgrp, long *rss_pages);
/* The lifetime of worker id of count: spread over [0.9, 1.1] x lifetime by id, with
 * r (0..1) placing it inside its id's slot. */
double health_lifetime(double lifetime, int id, int count, double r);
/* The timer's period for these limits; 0 if none is set. */
double health_period(const struct cfg_workers *cw);

#endif
