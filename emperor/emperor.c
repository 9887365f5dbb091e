/* emperor.c — the emperor process: start-up, signals and the whole-emperor actions.
 *   SIGHUP        rescan, then reload every vassal, --reload-concurrency at a time
 *   SIGTERM/INT   stop every vassal gracefully; exit 0 when all are gone
 *   2nd SIGINT    SIGKILL every vassal's process group
 *   SIGUSR1       one status line per vassal
 *   SIGUSR2       re-exec the emperor binary in place, keeping every vassal (upgrade.c)
 * It is a child subreaper and speaks sd_notify to its own parent when NOTIFY_SOCKET
 * is set (READY=1 after the first scan, STATUS= with counts). With --etcd it also
 * scans the etcd mirror (etcd_feed.c) and publishes its vassals (etcd_status.c). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "control.h"
#include "demand.h"
#include "emperor.h"
#include "etcd_status.h"
#include "monitor.h"
#include "output.h"
#include "scan.h"
#include "log.h"
#include "notify.h"
#include "signals.h"
#include "upgrade.h"
#include "util.h"

#define SCAN_SETTLE 0.005   /* lets a burst of inotify events (create, write, close) land */
#define RELOAD_SLOT_MAX 60. /* a full-reload slot is given back after this long anyway */
#define START_BATCH 16      /* new vassals started per loop iteration: between two
			     * batches the loop takes its I/O (READY=1, emperorctl,
			     * signals) and its clock moves on */

static void scan_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct emperor *e = container_of(w, struct emperor, scan_timer);

	(void)loop, (void)revents;
	if (!e->stopping)
		scan_run(e);
}

void emperor_schedule_scan(struct emperor *e)
{
	if (e->stopping || ev_is_active(&e->scan_timer))
		return;
	ev_timer_set(&e->scan_timer, SCAN_SETTLE, 0);
	ev_timer_start(e->loop, &e->scan_timer);
}

void emperor_scan_soon(struct emperor *e)
{
	if (e->stopping || ev_is_active(&e->scan_timer))
		return; /* due already, or settling for a file of the directory */
	ev_timer_set(&e->scan_timer, 0, 0);
	ev_timer_start(e->loop, &e->scan_timer);
}

/* ---- the start queue ------------------------------------------------------------------ */

void emperor_queue_start(struct emperor *e, struct vassal *v)
{
	if (v->in_start_queue)
		return;
	TAILQ_INSERT_TAIL(&e->start_queue, v, start_link);
	v->in_start_queue = true;
	if (!ev_is_active(&e->start_timer)) {
		ev_timer_set(&e->start_timer, 0, 0);
		ev_timer_start(e->loop, &e->start_timer);
	}
}

void emperor_unqueue_start(struct emperor *e, struct vassal *v)
{
	if (!v->in_start_queue)
		return;
	TAILQ_REMOVE(&e->start_queue, v, start_link);
	v->in_start_queue = false;
}

/* The sockets an upgrade handed across (demand.c) that no record took are closed once
 * every record of the new image's first scan has been set up: the start queue is
 * through and none waits for its predecessor's stop (a renamed file takes its old
 * name's sockets by address when it starts, after that stop). */
static void handed_check(struct emperor *e)
{
	if (!demand_handed_left() || !TAILQ_EMPTY(&e->start_queue) || e->records_waiting)
		return;
	demand_handed_close();
}

/* A timer due at once, not an ev_idle: idle watchers wait while any event is pending,
 * and a thousand starting vassals keep events pending. */
static void start_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct emperor *e = container_of(w, struct emperor, start_timer);
	struct vassal *v;

	(void)revents;
	for (int i = 0; i < START_BATCH && (v = TAILQ_FIRST(&e->start_queue)) != NULL; i++) {
		emperor_unqueue_start(e, v);
		if (!e->stopping)
			scan_start_new(v);
	}
	if (!TAILQ_EMPTY(&e->start_queue))
		ev_timer_start(loop, w);
	else
		handed_check(e);
}

void emperor_status_notify(struct emperor *e)
{
	int counts[VASSAL_N_STATES] = { 0 };
	struct vassal *v;
	char msg[400];

	if (!getenv("NOTIFY_SOCKET"))
		return;
	TAILQ_FOREACH(v, &e->vassals, link)
		counts[v->state]++;
	snprintf(msg, sizeof msg, "STATUS=%d ready, %d starting, %d reloading, %d stopping, "
		 "%d waiting to respawn, %d halted, %d on-demand, %d idle, %d stopping-idle, "
		 "%d restarting, %d queued", counts[VASSAL_READY],
		 counts[VASSAL_STARTING], counts[VASSAL_RELOADING], counts[VASSAL_STOPPING],
		 counts[VASSAL_WAITING], counts[VASSAL_HALTED], counts[VASSAL_ON_DEMAND],
		 counts[VASSAL_IDLE], counts[VASSAL_IDLING], counts[VASSAL_RESTARTING],
		 counts[VASSAL_QUEUED]);
	notify_parent(msg);
}

/* ---- full reload ---------------------------------------------------------------------- */

/* One timer for all the slots, at the earliest one's end: a record holds no timer of
 * its own for a slot it holds only during a full reload. */
static void slots_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct emperor *e = container_of(w, struct emperor, slot_timer);
	double now = mono_now(), earliest = 0;
	struct vassal *v, *next;

	(void)revents;
	for (v = TAILQ_FIRST(&e->vassals); v; v = next) {
		next = TAILQ_NEXT(v, link);
		if (v->holds_slot && v->slot_since + RELOAD_SLOT_MAX <= now) {
			log_warn("%s: reload not finished after %.0fs: the next vassal goes on",
				 v->name, RELOAD_SLOT_MAX);
			emperor_reload_slot_free(e, v);
		}
	}
	TAILQ_FOREACH(v, &e->vassals, link) /* the slots taken meanwhile too */
		if (v->holds_slot && (earliest == 0 || v->slot_since < earliest))
			earliest = v->slot_since;
	if (earliest > 0) {
		ev_timer_stop(loop, w); /* a slot freed above may have started it again */
		ev_timer_set(w, earliest + RELOAD_SLOT_MAX - now, 0);
		ev_timer_start(loop, w);
	}
}

static void reload_pump(struct emperor *e)
{
	struct vassal *v;

	while (e->reloads_running < e->opts.reload_concurrency &&
	       (v = TAILQ_FIRST(&e->reload_queue)) != NULL) {
		TAILQ_REMOVE(&e->reload_queue, v, reload_link);
		v->in_reload_queue = false;
		if (!child_running(&v->child) || vstate_leaving(v->state))
			continue;
		v->holds_slot = true;
		v->slot_since = mono_now();
		e->reloads_running++;
		if (!ev_is_active(&e->slot_timer)) { /* else it ends earlier than this one */
			ev_timer_set(&e->slot_timer, RELOAD_SLOT_MAX, 0);
			ev_timer_start(e->loop, &e->slot_timer);
		}
		vtable_reload(v, "SIGHUP");
	}
}

void emperor_reload_slot_free(struct emperor *e, struct vassal *v)
{
	if (!v->holds_slot)
		return;
	v->holds_slot = false;
	e->reloads_running--;
	if (e->reloads_running == 0)
		ev_timer_stop(e->loop, &e->slot_timer);
	reload_pump(e);
}

static void reload_all(struct emperor *e)
{
	struct vassal *v;

	log_info("SIGHUP: rescanning %s, then reloading every vassal, %d at a time", e->dir,
		 e->opts.reload_concurrency);
	scan_run(e);
	TAILQ_FOREACH(v, &e->vassals, link) {
		if (v->state == VASSAL_QUEUED)
			continue; /* new: the start queue (or its predecessor's stop) starts it */
		if (v->state == VASSAL_HALTED && !v->halting) /* emperorctl stop sticks */
			vtable_start(v);
		else if (v->state == VASSAL_ON_DEMAND)
			vtable_start(v); /* its file read again, its sockets re-bound if changed */
		else if (child_running(&v->child) && !vstate_leaving(v->state) &&
			 !v->in_reload_queue && !v->holds_slot) {
			TAILQ_INSERT_TAIL(&e->reload_queue, v, reload_link);
			v->in_reload_queue = true;
		}
	}
	reload_pump(e);
}

/* ---- stop ------------------------------------------------------------------------------- */

void emperor_vassal_gone(struct emperor *e)
{
	emperor_status_notify(e);
	handed_check(e); /* a record that waited for the one gone has started */
	if (!e->stopping || !TAILQ_EMPTY(&e->vassals))
		return;
	log_info("every vassal has stopped: exiting");
	child_set_kill_strays(&e->children); /* the sweep a last exit asked for, now */
	control_close(e);
	exit(0);
}

static void stop_all(struct emperor *e, const char *why)
{
	struct vassal *v, *next;

	if (e->stopping)
		return;
	e->stopping = true;
	log_info("%s: stopping every vassal gracefully", why);
	notify_parent("STOPPING=1");
	ev_timer_stop(e->loop, &e->scan_timer);
	monitor_close(e->monitor);
	e->monitor = NULL;
	for (v = TAILQ_FIRST(&e->vassals); v; v = next) {
		next = TAILQ_NEXT(v, link);
		vtable_stop(v, why);
	}
	emperor_vassal_gone(e);
}

static void stop_brutally(struct emperor *e)
{
	struct vassal *v;

	log_warn("second SIGINT: SIGKILL to every vassal's process group");
	e->brutal = true;
	TAILQ_FOREACH(v, &e->vassals, link)
		vtable_brutal_stop(v);
}

static void status_dump(struct emperor *e)
{
	struct vassal *v;

	log_info("status: watching %s, %s", e->dir, e->stopping ? "stopping" : "running");
	TAILQ_FOREACH(v, &e->vassals, link)
		signals_status_line(v->name, vtable_state_name(v->state), &v->child);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct emperor *e = w->data;

	(void)loop, (void)revents;
	switch (w->signum) {
	case SIGHUP:
		if (!e->stopping)
			reload_all(e);
		break;
	case SIGTERM: stop_all(e, "SIGTERM"); break;
	case SIGQUIT: stop_all(e, "SIGQUIT"); break;
	case SIGINT:
		if (++e->sigint_count > 1 && !e->brutal)
			stop_brutally(e);
		stop_all(e, "SIGINT");
		break;
	case SIGUSR1: status_dump(e); break;
	case SIGUSR2:
		if (!e->stopping)
			upgrade_exec(e, e->opts.argv);
		break;
	}
}

/* Every signal was blocked across an upgrade's exec, SIGCHLD (libev's child watchers)
 * included; signals_start() delivers the ones that arrived meanwhile. */
static void emperor_signals_start(struct emperor *e)
{
	const struct signals_entry table[] = {
		{ SIGHUP, &e->sig_hup }, { SIGTERM, &e->sig_term }, { SIGINT, &e->sig_int },
		{ SIGQUIT, &e->sig_quit }, { SIGUSR1, &e->sig_usr1 }, { SIGUSR2, &e->sig_usr2 },
	};

	signals_start(e->loop, table, ARRAY_LEN(table), on_signal, e);
}

static int resolve_paths(struct emperor *e)
{
	char buf[PATH_MAX];
	ssize_t n;

	if (!realpath(e->opts.dir, buf)) {
		log_errno("cannot watch %s", e->opts.dir);
		return -1;
	}
	e->dir = strdup(buf);
	n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n < 0) {
		log_errno("readlink /proc/self/exe");
		return -1;
	}
	buf[n] = '\0';
	e->exe = strdup(buf);
	return e->dir && e->exe ? 0 : -1;
}

/* Says once how vassals are contained: their own cgroups, or process groups. */
static void containment(struct emperor *e)
{
	cgroup_probe(&e->cg);
	if (e->cg.usable && cgroup_prepare(&e->cg) == 0)
		log_info("containment: cgroup v2: each vassal gets %s/vassal.NAME; the no-mercy "
			 "kill uses cgroup.kill", e->cg.path);
	else
		log_info("containment: process groups and subreaping (no cgroup v2: %s)", e->cg.why);
	if (e->opts.tyrant)
		log_info("tyrant mode: each vassal runs as the owner of its file%s%s",
			 e->opts.tyrant_allow_root ? "; root-owned files allowed" : "",
			 e->opts.tyrant_nofollow ? "; symlinked files refused" : "");
}

int emperor_main(const struct emperor_opts *opts)
{
	static struct emperor e;

	e.opts = *opts;
	log_init("emperor");
	log_set_debug(e.opts.debug || (getenv("EMPEROR_DEBUG") && *getenv("EMPEROR_DEBUG") &&
				       strcmp(getenv("EMPEROR_DEBUG"), "0") != 0));
	e.loop = ev_default_loop(EVFLAG_AUTO);
	if (!e.loop || resolve_paths(&e) < 0)
		return 1;
	output_sink_open(&e); /* without it, stderr is written directly; logged */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_errno("prctl(PR_SET_CHILD_SUBREAPER)");
	TAILQ_INIT(&e.vassals);
	TAILQ_INIT(&e.reload_queue);
	TAILQ_INIT(&e.start_queue);
	ev_timer_init(&e.start_timer, start_due, 0, 0);
	ev_timer_init(&e.slot_timer, slots_expired, 0, 0);
	child_set_init(&e.children, e.loop);
	ev_timer_init(&e.scan_timer, scan_due, 0, 0);
	emperor_signals_start(&e);
	e.monitor = monitor_open(&e, e.dir);
	if (!e.monitor)
		return 1;
	if (e.opts.etcd.endpoints && etcd_feed_open(&e) < 0)
		return 1;
	if (e.etcd_feed && !(e.etcd_status = etcd_status_open(&e)))
		return 1;
	if (upgrade_restore(&e) < 0)
		return 1;
	e.started_at = mono_now();
	control_open(&e); /* without it the emperor still runs; the error is logged */
	containment(&e);
	scan_run(&e);
	handed_check(&e); /* else once the queue is through (start_due) */
	log_info("watching %s (vassal binary %s)", e.dir, e.opts.vassal_bin);
	notify_parent("READY=1");
	emperor_status_notify(&e);
	ev_run(e.loop, 0);
	return 1;
}
