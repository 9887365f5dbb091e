/* spool_gauge.h — how many tasks a spool directory holds (queued in DIR, and in
 * DIR/failed/), for the master's status and metrics. Kept current by inotify in the
 * caller's loop, so that reading it costs O(1), not a scan of the directory: one scan
 * when it starts, and again only after the kernel's event queue overflowed. */
#ifndef EMPEROR_SPOOL_GAUGE_H
#define EMPEROR_SPOOL_GAUGE_H

#include <ev.h>

struct spool_gauge;

/* Watches dir (which may not exist yet: counted as empty until it does). NULL with
 * errno if inotify cannot be had. */
struct spool_gauge *spool_gauge_new(struct ev_loop *loop, const char *dir);
void spool_gauge_free(struct spool_gauge *g);
/* Task files ("*.task", not hidden) in dir and in dir/failed. */
void spool_gauge_counts(struct spool_gauge *g, int *queued, int *failed);

#endif
