/* daemons.h — attached daemons (vassal/daemons.c). */
#ifndef EMPEROR_DAEMONS_H
#define EMPEROR_DAEMONS_H

#include "master.h"

/* Starts (or adopts) every daemon. handover: "name=pid,..." of the survive-reload
 * daemons the previous image kept running (reexec.h), or NULL. -1 if one could not
 * start (logged; it is respawned with backoff). */
int daemons_start(struct master *m, const char *handover);
/* "name=pid,name=pid" of the daemons that survive a reload, for the next image
 * (malloc'd; NULL if out of memory). */
char *daemons_handover(const struct master *m);
/* The daemons with `legion: legion`, started when this vassal becomes its lord, with
 * env ("LEGION_TOKEN=...") added. -1 if one could not start (respawned with backoff). */
int daemons_legion_start(struct master *m, const char *legion, char *const *env);
/* Stops them for good (mercy at most max_mercy; a second call may shorten it);
 * retired(arg) is called as each one is reaped and freed. Returns how many it began
 * to stop (not those a previous call stops already). */
int daemons_legion_stop(struct master *m, const char *legion, double max_mercy,
			void (*retired)(void *arg), void *arg);

#endif
