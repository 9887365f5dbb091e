/* prom.h — the Prometheus text we write (exposition format 0.0.4): one table of
 * every metric family, for the emperor's own (emperor/control_render.c) and for the
 * samples each master gives (vassal/status.c), so that names, types and help never
 * drift apart; and the escaping of label values. */
#ifndef EMPEROR_PROM_H
#define EMPEROR_PROM_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum prom_family {
	/* the emperor's, from its table and its own process */
	PROM_BUILD_INFO,
	PROM_PROCESS_CPU,
	PROM_PROCESS_RSS,
	PROM_PROCESS_FDS,
	PROM_PROCESS_MAX_FDS,
	PROM_PROCESS_START,
	PROM_VASSALS,
	PROM_RESTARTS,
	PROM_CONFIG_ERROR,
	PROM_LAST_RELOAD,
	PROM_RELOAD_DURATION,
	/* each master's, merged by the emperor */
	PROM_WORKERS,
	PROM_WORKERS_CONFIGURED,
	PROM_WORKER_RESPAWNS,
	PROM_GENERATION,
	PROM_CHILDREN,
	PROM_SPOOL_QUEUED,
	PROM_SPOOL_FAILED,
	PROM_LEGION_LORD,
	PROM_LEGION_TRANSITIONS,
	PROM_GATEWAY_REQUESTS,
	PROM_GATEWAY_KEY_REQUESTS,
	PROM_WORKER_RECYCLES,
	PROM_LOG_ERROR,
	PROM_LOG_LOST_LINES,
	PROM_LOG_ROTATIONS,
	PROM_WORKERS_TARGET,
	PROM_WORKER_SCALINGS,
	PROM_ACCEPT_QUEUE,
	PROM_N_FAMILIES
};

#define PROM_FIRST_MASTER_FAMILY PROM_WORKERS

struct prom_family_info {
	const char *name, *type, *help;
};

extern const struct prom_family_info prom_families[PROM_N_FAMILIES];

/* The "# HELP" and "# TYPE" lines of a family. */
void prom_header(struct strbuf *b, enum prom_family f);
/* s as a label value (\, " and newline escaped) in buf, truncated to fit; buf. */
const char *prom_label(const char *s, char *buf, size_t len);

#endif
