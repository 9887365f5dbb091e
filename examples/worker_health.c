/* worker_health.c — hello-worker's side of the master's worker limits (docs/worker.md):
 * WATCHDOG=1 every half WATCHDOG_USEC when the master asks for a watchdog (systemd's
 * protocol: WATCHDOG_PID, when set, must be our pid), and, when VASSAL_STALL_USEC is
 * set, X_BUSY=1 / X_BUSY=0 as requests begin and end: X_BUSY=1 when the first begins
 * and again each time the oldest one is answered while others are still unanswered
 * (the master measures a stall from the last X_BUSY=1), X_BUSY=0 when none is left. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hello_worker.h"
#include "log.h"

static long env_usec(const char *name)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return 0;
	v = strtol(s, &end, 10);
	return *end || v <= 0 ? 0 : v;
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop, (void)revents, (void)t;
	notify("WATCHDOG=1");
}

void health_start(struct worker *w)
{
	const char *pid = getenv("WATCHDOG_PID");
	long usec = env_usec("WATCHDOG_USEC");

	w->report_busy = env_usec("VASSAL_STALL_USEC") > 0;
	if (!usec || (pid && strtol(pid, NULL, 10) != (long)getpid()))
		return;
	if (w->opt.test.no_watchdog) {
		log_info("--no-watchdog: not sending WATCHDOG=1 (WATCHDOG_USEC=%ld)", usec);
		return;
	}
	ev_timer_init(&w->watchdog, watchdog_cb, 0., (double)usec / 2e6);
	ev_timer_again(w->loop, &w->watchdog);
}

void health_busy(struct conn *c)
{
	struct worker *w = c->w;

	if (!w->report_busy || c->busy_since > 0)
		return;
	c->busy_since = ev_now(w->loop);
	if (w->n_busy++ == 0)
		notify("X_BUSY=1");
}

void health_idle(struct conn *c)
{
	struct worker *w = c->w;
	ev_tstamp was = c->busy_since, oldest = 0;
	struct conn *o;

	if (was <= 0)
		return;
	c->busy_since = 0;
	if (--w->n_busy == 0) {
		notify("X_BUSY=0");
		return;
	}
	TAILQ_FOREACH(o, &w->conns, link)
		if (o->busy_since > 0 && (oldest == 0 || o->busy_since < oldest))
			oldest = o->busy_since;
	if (oldest > was)
		notify("X_BUSY=1"); /* it was the oldest: the clock restarts for the next */
}
