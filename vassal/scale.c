/* scale.c — workers that follow the load (see scale.h). The decision is a pure
 * function of the clock and one sample (scale_decide, unit-tested sample by sample);
 * the rest carries it out: one timer per master, armed only while the config has a
 * range, reads the accept queues of the workers' sockets (backlog.c), asks the
 * decision and adds a worker (workers_fill up to the new target) or removes the
 * highest-numbered one (workers_trim: its stop signal, its reload-mercy). Decisions
 * are taken only while the master runs: a start, reload or stop has its own plan for
 * the workers, and the clock starts again after it. */
#include "scale.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "backlog.h"
#include "log.h"
#include "master.h"
#include "util.h"
#include "workers.h"

#define SCALE_MIN_PERIOD 0.01
#define SCALE_MAX_PERIOD 0.5
#define SCALE_EPSILON 1e-6     /* seconds: 10.2 - 10.0 is 0.19999... */

struct scale {
	struct master *m;
	ev_timer tick;
	double period;             /* of tick; 0 = stopped */
	int target;                /* clamped into the range by scale_target() */
	struct scale_clock clock;
	struct backlog backlog;
	int queued;                /* the last sample's longest queue, -1 none */
	unsigned long ups, downs;
	bool unreadable;           /* a queue the kernel would not tell: logged once */
};

/* ---- the decision ------------------------------------------------------------------ */

/* The backlog was sustained for up-after: one more worker, if the range and the last
 * added worker's readiness allow it. */
static enum scale_verdict up(struct scale_clock *c, const struct cfg_scale *cfg,
			     const struct scale_sample *s, char *why, size_t len)
{
	double ms = (s->now - c->backlog_since) * 1000;

	if (s->target >= s->max) { /* said once per backlog */
		if (!c->held)
			snprintf(why, len, "accept queue %d, but already at the maximum of %d workers",
				 s->queued, s->max);
		c->held = true;
		return SCALE_HOLD;
	}
	if (s->ready < s->target)
		return SCALE_HOLD; /* the last one added is not ready yet */
	snprintf(why, len, "accept queue %d >= up-when-backlog %d for %.0f ms (up-after %.0f ms)",
		 s->queued, cfg->up_when_backlog, ms, cfg->up_after * 1000);
	c->backlog_since = s->now; /* the next one: sustained again, since this one */
	c->held = false;
	return SCALE_UP;
}

enum scale_verdict scale_decide(struct scale_clock *c, const struct cfg_scale *cfg,
				const struct scale_sample *s, char *why, size_t len)
{
	why[0] = '\0';
	if (!s->running) { /* a start or reload: its own plan; the clock starts again after */
		*c = (struct scale_clock){ 0 };
		return SCALE_HOLD;
	}
	if (s->queued >= cfg->up_when_backlog) {
		c->empty_since = 0;
		if (c->backlog_since == 0)
			c->backlog_since = s->now;
	} else {
		c->backlog_since = 0;
		c->held = false;
		if (s->queued > 0)
			c->empty_since = 0;
		else if (c->empty_since == 0)
			c->empty_since = s->now;
	}
	if (c->backlog_since > 0 && s->now - c->backlog_since + SCALE_EPSILON >= cfg->up_after)
		return up(c, cfg, s, why, len);
	if (c->empty_since > 0 && s->now - c->empty_since + SCALE_EPSILON >= cfg->down_after &&
	    s->target > s->min) {
		snprintf(why, len, "every accept queue empty for %.1fs (down-after %gs)",
			 s->now - c->empty_since, cfg->down_after);
		c->empty_since = s->now; /* the next one: another down-after without need */
		return SCALE_DOWN;
	}
	return SCALE_HOLD;
}

/* ---- carried out ------------------------------------------------------------------- */

static bool has_range(const struct config *cfg)
{
	return cfg->has_workers && cfg->workers.count_max > cfg->workers.count;
}

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int scale_target(const struct master *m)
{
	const struct cfg_workers *cw = &m->cfg->workers;

	if (!m->cfg->has_workers)
		return 0;
	if (!has_range(m->cfg))
		return cw->count;
	return clamp(m->scale ? m->scale->target : cw->count, cw->count, cw->count_max);
}

unsigned long scale_ups(const struct master *m)
{
	return m->scale ? m->scale->ups : 0;
}

unsigned long scale_downs(const struct master *m)
{
	return m->scale ? m->scale->downs : 0;
}

int scale_queued(const struct master *m)
{
	return m->scale && has_range(m->cfg) ? m->scale->queued : -1;
}

/* A quarter of the shorter delay, within [10 ms, 500 ms]. */
static double period_of(const struct cfg_scale *cfg)
{
	double p = (cfg->up_after < cfg->down_after ? cfg->up_after : cfg->down_after) / 4;

	return p < SCALE_MIN_PERIOD ? SCALE_MIN_PERIOD : p > SCALE_MAX_PERIOD ? SCALE_MAX_PERIOD : p;
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents);

static struct scale *scale_of(struct master *m, int target)
{
	struct scale *s;

	if (m->scale)
		return m->scale;
	if (!(s = calloc(1, sizeof *s))) {
		log_errno("scale: calloc; the workers stay at %d", m->cfg->workers.count);
		return NULL;
	}
	s->m = m;
	s->target = target;
	s->queued = -1;
	backlog_init(&s->backlog);
	ev_init(&s->tick, tick_cb);
	m->scale = s;
	return s;
}

/* The timer follows the config: armed with a range, stopped without one. */
static void arm(struct master *m)
{
	double period = has_range(m->cfg) ? period_of(&m->cfg->workers.scale) : 0;
	struct scale *s = m->scale;

	if (!s && period <= 0)
		return;
	if (!s && !(s = scale_of(m, m->cfg->workers.count)))
		return;
	if (period == s->period)
		return;
	s->period = period;
	ev_timer_stop(m->loop, &s->tick);
	s->clock = (struct scale_clock){ 0 };
	if (period > 0) {
		ev_timer_set(&s->tick, period, period);
		ev_timer_start(m->loop, &s->tick);
	}
}

/* The longest accept queue of the workers' stream sockets; -1 if none could be read. */
static int longest_queue(struct scale *s)
{
	const struct vsock_table *t = &s->m->socks;
	int longest = -1;

	for (size_t i = 0; i < t->n_workers; i++) {
		const struct vsock *v = &t->v[i];
		int q;

		if (v->type != SOCK_STREAM)
			continue;
		q = backlog_queued(&s->backlog, v->fd, v->addr.ss.ss_family, NULL);
		if (q < 0 && !s->unreadable) {
			log_warn("scale: the kernel does not tell the accept queue of socket %s (%s): "
				 "%s; it does not count", v->name, v->addr.text, strerror(errno));
			s->unreadable = true;
		}
		if (q > longest)
			longest = q;
	}
	return longest;
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct scale *s = container_of(t, struct scale, tick);
	struct master *m = s->m;
	struct scale_sample in;
	char why[160];
	int was;

	(void)revents;
	arm(m);
	if (s->period <= 0)
		return;
	s->queued = longest_queue(s);
	was = s->target = scale_target(m);
	in = (struct scale_sample){ .now = ev_now(loop), .queued = s->queued < 0 ? 0 : s->queued,
				    .target = was, .ready = workers_ready_count(m),
				    .min = m->cfg->workers.count, .max = m->cfg->workers.count_max,
				    .running = m->state == MASTER_RUNNING };
	switch (scale_decide(&s->clock, &m->cfg->workers.scale, &in, why, sizeof why)) {
	case SCALE_UP:
		s->target++, s->ups++;
		log_info("scale: up from %d to %d workers: %s", was, s->target, why);
		workers_fill(m);
		master_worker_ready(m);
		break;
	case SCALE_DOWN:
		s->target--, s->downs++;
		log_info("scale: down from %d to %d workers: %s", was, s->target, why);
		workers_trim(m);
		master_worker_ready(m);
		break;
	case SCALE_HOLD:
		if (why[0])
			log_info("scale: %d workers kept: %s", was, why);
		break;
	}
}

void scale_start(struct master *m, int handed_over)
{
	if (!has_range(m->cfg))
		return;
	if (!scale_of(m, handed_over > 0 ? handed_over : m->cfg->workers.count))
		return;
	if (handed_over > 0)
		log_info("scale: %d workers, as before the reload (range %d..%d)", scale_target(m),
			 m->cfg->workers.count, m->cfg->workers.count_max);
	arm(m);
}

void scale_worker_ready(struct master *m)
{
	arm(m);
}
