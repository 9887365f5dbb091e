/* scale.h — workers that follow the load (workers.count: MIN..MAX, workers.scale):
 * the master samples the accept queues of the vassal's sockets (backlog.h) with one
 * timer, armed only while a range is configured, and keeps a target count between
 * MIN and MAX. A backlog of at least up-when-backlog connections on some socket at
 * every sample for up-after adds one worker, the next only once it is ready; every
 * queue empty at every sample for down-after removes the highest-numbered worker with
 * its stop signal and its reload-mercy (a graceful curse). Never a reload. Each
 * decision is logged with its reason and counted for status and metrics. The target
 * crosses a graceful reload's exec (reexec.h) and survives chain, workers and overlap
 * reloads, clamped into the new range. */
#ifndef EMPEROR_SCALE_H
#define EMPEROR_SCALE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct master;

enum scale_verdict { SCALE_HOLD, SCALE_UP, SCALE_DOWN };

/* What the decision remembers between two samples (zeroed: nothing seen yet). */
struct scale_clock {
	double backlog_since;   /* first sample of the current run with a backlog; 0 none */
	double empty_since;     /* first sample of the current run with every queue empty; 0 none */
	bool held;              /* this backlog's hold at MAX was said (logged once) */
};

/* One sample, as the decision sees it. */
struct scale_sample {
	double now;             /* seconds, monotonic */
	int queued;             /* the longest accept queue of the vassal's sockets */
	int target, ready;      /* workers kept, workers ready */
	int min, max;           /* the range */
	bool running;           /* the master runs (not starting, reloading or stopping) */
};

/* The pure decision: the verdict for this sample and its reason in why (a phrase for
 * the log; "" when there is nothing to say). Updates the clock. */
enum scale_verdict scale_decide(struct scale_clock *c, const struct cfg_scale *cfg,
				const struct scale_sample *s, char *why, size_t len);

/* The worker count the master keeps: workers.count, or with a range the target
 * clamped into it. */
int scale_target(const struct master *m);
/* At start-up, after the config: a range's target from the previous image (0: MIN),
 * and its timer. Nothing at all without a range. */
void scale_start(struct master *m, int handed_over);
/* A worker became ready: the timer follows the config (a reload may add or remove
 * the range). */
void scale_worker_ready(struct master *m);
/* Status and metrics: workers added and removed, the last sample's longest queue
 * (-1 before the first or without a range). */
unsigned long scale_ups(const struct master *m);
unsigned long scale_downs(const struct master *m);
int scale_queued(const struct master *m);

#endif
