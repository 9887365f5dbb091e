/* reload.c — the reload machine of a vassal master, carried out; docs/reload.md
 * walks through it. reload_fsm.c decides (state × event → action, next state); here
 * the events are raised (requests, validation results, children reaped, workers
 * settled, the idle watcher before the exec) and the actions done, and every
 * transition is logged at debug level in fire(), the one place the state changes.
 * Every reload validates the file first and leaves everything running when it is
 * invalid. Then, by mode:
 *   graceful  teardown (spooler, daemons, gateways, nested emperor, legions,
 *             unsubscribe, workers, mules: each step finished before the next), then
 *             re-exec with the listening sockets, the emperor channel and the config;
 *   workers   curse the workers; each is replaced by a new one as it exits;
 *   chain     one worker at a time: the replacement is ready before the old one is
 *             cursed; a replacement not ready in time stops the chain there;
 *   overlap   the whole new generation starts beside the old one, which is cursed
 *             once every new worker is ready; a new worker that fails first stops
 *             the new generation, and the old one keeps serving its config.
 * Chain and overlap replacements start at workers.start-priority (start_prio.h).
 * A reload asked for while one runs is queued; a stop takes over from the start of
 * the teardown, so it also stops what the reload spares. */
#include "reload.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons.h"
#include "gateway.h"
#include "legion.h"
#include "log.h"
#include "reload_config.h"
#include "reload_fsm.h"
#include "scale.h"
#include "signals.h"
#include "util.h"

#define ANY_KIND (-2)   /* a step that waits for every child the teardown stops */
#define NO_KIND (-1)    /* a step without children */

struct reload {
	struct master *m;
	struct reload_fsm fsm;
	struct reload_hooks hooks;
	char why[PATH_MAX + 32];   /* the request being served, for the log */
	const char *chain_why;     /* why the chain's replacement (or overlap's worker) failed */
	bool after_reexec;         /* this image's start ends a reload */
	double started;            /* mono_now() when the running reload began */
	char *next_text;           /* graceful: the validated file, for the new image */
	size_t next_len;
	struct config *next_cfg;   /* validated, until the reload begins */
	struct config *old_cfg;    /* chain, overlap: restored if the reload fails */
	struct worker *chain_new, *chain_old;
	bool step_pending;         /* the current step finishes by itself (legions: etcd) */
	bool exec_armed;           /* signals blocked, exec_idle started */
	ev_idle exec_idle;         /* graceful: the re-exec, once caught signals are handled */
};

static void fire(struct reload *r, enum reload_event ev);

static void notify(struct reload *r, const char *msg)
{
	r->hooks.notify(r->hooks.arg, msg);
}

/* ---- the teardown steps --------------------------------------------------------------- */

/* A stop always withdraws the subscriptions; a reload only if asked to. */
static bool unsubscribe_all(struct reload *r)
{
	subscriptions_stop(r->m, r->fsm.goal == GOAL_STOP || r->m->cfg->unsubscribe_on_reload);
	return false;
}

static void legions_left(void *arg)
{
	struct reload *r = arg;

	if (!r->step_pending || r->fsm.state != RS_TD_LEGIONS)
		return;
	r->step_pending = false;
	fire(r, RE_STEP_DONE);
}

/* The death announcement (legion.c): lord-only children stopped, on-unlord run, the
 * lease revoked; the step ends when etcd has answered (bounded in legion.c). */
static bool announce_death(struct reload *r)
{
	r->step_pending = legion_announce_death(r->m, legions_left, r) == 1;
	return r->step_pending;
}

/* DESIGN.md's order, one entry per teardown state from RS_TD_SPOOLER on. */
static const struct teardown_step {
	const char *name;
	int kind;
	bool (*run)(struct reload *r); /* true: it raises RE_STEP_DONE itself, later */
} teardown_steps[] = {
	[RS_TD_SPOOLER - RS_TD_SPOOLER] = { "spooler", KIND_SPOOLER, NULL },
	[RS_TD_DAEMONS - RS_TD_SPOOLER] = { "daemons", KIND_DAEMON, NULL },
	[RS_TD_GATEWAYS - RS_TD_SPOOLER] = { "gateways", KIND_GATEWAY, NULL },
	[RS_TD_NESTED - RS_TD_SPOOLER] = { "nested emperor", KIND_EMPEROR, NULL },
	[RS_TD_LEGIONS - RS_TD_SPOOLER] = { "legions", NO_KIND, announce_death },
	[RS_TD_UNSUBSCRIBE - RS_TD_SPOOLER] = { "unsubscribe", NO_KIND, unsubscribe_all },
	[RS_TD_WORKERS - RS_TD_SPOOLER] = { "workers", KIND_WORKER, NULL },
	[RS_TD_MULES - RS_TD_SPOOLER] = { "mules", KIND_MULE, NULL },
	[RS_TD_WAIT - RS_TD_SPOOLER] = { "the rest", ANY_KIND, NULL },
};

static const struct teardown_step *current_step(const struct reload *r)
{
	if (r->fsm.state < RS_TD_SPOOLER || r->fsm.state > RS_TD_WAIT)
		return NULL;
	return &teardown_steps[r->fsm.state - RS_TD_SPOOLER];
}

/* A graceful reload leaves survive-reload daemons running; a stop does not. */
static bool to_stop(const struct reload *r, const struct child *c, int kind)
{
	if (kind != ANY_KIND && c->kind != kind)
		return false;
	return !(c->keep_on_reload && r->fsm.goal == GOAL_RELOAD);
}

static int running_to_stop(const struct reload *r, int kind)
{
	const struct child *c;
	int n = 0;

	TAILQ_FOREACH(c, &r->m->children.children, link)
		if (child_running(c) && to_stop(r, c, kind))
			n++;
	return n;
}

/* A child cursed already (by the reload a stop took over) keeps its deadline. */
static void curse_kind(struct reload *r, int kind)
{
	struct child *c;

	TAILQ_FOREACH(c, &r->m->children.children, link) {
		if (!to_stop(r, c, kind))
			continue;
		if (c->state == CHILD_WAITING)
			child_cancel_respawn(c);
		if (child_running(c) && c->state != CHILD_CURSED)
			child_curse(c, c->stop_signal, c->mercy);
	}
}

static void step_begin(struct reload *r)
{
	const struct teardown_step *s = current_step(r);

	if (s->run && s->run(r))
		return; /* the step raises RE_STEP_DONE when it is done */
	if (s->kind != NO_KIND && running_to_stop(r, s->kind) > 0) {
		log_info("teardown: stopping %s", s->name);
		curse_kind(r, s->kind);
	}
	if (s->kind == NO_KIND || running_to_stop(r, s->kind) == 0)
		fire(r, RE_STEP_DONE);
	/* else reload_child_gone() raises RE_STEP_DONE when the last one is reaped */
}

/* ---- validation and the three modes ------------------------------------------------------ */

static void validate(struct reload *r, enum reload_how how)
{
	struct master *m = r->m;
	enum cfg_reload mode;
	const char *change;

	r->next_cfg = reload_config_load(m->path, &r->next_text, &r->next_len);
	if (!r->next_cfg) {
		fire(r, RE_CONFIG_INVALID);
		return;
	}
	mode = how == RELOAD_CHAIN ? CFG_RELOAD_CHAIN : r->next_cfg->reload;
	if (mode != CFG_RELOAD_GRACEFUL && (change = reload_config_master_change(m, r->next_cfg))) {
		log_info("reload (%s): %s changed, which needs a graceful reload", r->why, change);
		mode = CFG_RELOAD_GRACEFUL;
	}
	fire(r, mode == CFG_RELOAD_GRACEFUL ? RE_CONFIG_GRACEFUL :
		mode == CFG_RELOAD_CHAIN ? RE_CONFIG_CHAIN :
		mode == CFG_RELOAD_OVERLAP ? RE_CONFIG_OVERLAP : RE_CONFIG_WORKERS);
}

static void begin(struct reload *r, enum cfg_reload mode)
{
	static const char *const mode_names[] = { "graceful", "workers", "chain", "overlap" };
	struct master *m = r->m;

	r->started = mono_now();
	notify(r, "RELOADING=1\nSTATUS=reloading");
	log_info("reloading (%s): %s reload of generation %u", r->why, mode_names[mode],
		 m->generation);
	if (mode == CFG_RELOAD_GRACEFUL) {
		config_free(r->next_cfg); /* the new image parses the same text again */
		r->next_cfg = NULL;
		return;
	}
	free(r->next_text);
	r->next_text = NULL;
	if (mode == CFG_RELOAD_CHAIN || mode == CFG_RELOAD_OVERLAP)
		r->old_cfg = m->cfg;
	else
		config_free(m->cfg);
	m->cfg = r->next_cfg;
	r->next_cfg = NULL;
	m->generation++;
}

static void chain_next(struct reload *r)
{
	struct master *m = r->m;
	struct worker *old;

	while ((old = workers_oldest(m)) && old->id > scale_target(m)) {
		old->retire = true;
		child_curse(&old->child, old->child.stop_signal, old->child.mercy);
	}
	if (!old) {
		r->chain_new = r->chain_old = NULL;
		workers_fill(m);
		reload_workers_ready(m);
		return;
	}
	r->chain_old = old;
	r->chain_new = workers_spawn_replacement(m, old->id);
	log_info("chain: replacing worker %d (pid %d)", old->id, (int)old->child.pid);
}

static void chain_replaced(struct reload *r)
{
	struct worker *old = r->chain_old;

	old->retire = true;
	child_curse(&old->child, old->child.stop_signal, old->child.mercy);
	chain_next(r);
}

static void chain_failed(struct reload *r)
{
	struct master *m = r->m;

	log_warn("chain reload failed: the new worker %d %s; "
		 "the old workers keep serving with the previous config", r->chain_new->id,
		 r->chain_why);
	r->chain_new->retire = true;
	r->chain_new = r->chain_old = NULL;
	config_free(m->cfg);
	m->cfg = r->old_cfg;
	r->old_cfg = NULL;
	workers_adopt_all(m);
	notify(r, "READY=1\nSTATUS=chain reload failed");
}

/* Overlap: every worker of the new generation, beside the old ones, which keep
 * serving but are no longer respawned. */
static void overlap_begin(struct reload *r)
{
	struct master *m = r->m;

	r->chain_why = NULL;
	workers_keep_older(m, false);
	for (int id = 1; id <= scale_target(m); id++)
		workers_spawn_replacement(m, id);
	log_info("overlap: %d new workers starting beside the old ones", scale_target(m));
	reload_workers_ready(m);
}

static void overlap_switch(struct reload *r)
{
	log_info("overlap: generation %u ready; stopping the old workers", r->m->generation);
	workers_stop_generation(r->m, true);
	reload_workers_ready(r->m);
}

static void overlap_failed(struct reload *r)
{
	struct master *m = r->m;

	log_warn("overlap reload failed: a new worker %s; the new generation is stopped and "
		 "the old workers keep serving with the previous config",
		 r->chain_why ? r->chain_why : "is failing");
	r->chain_why = NULL;
	workers_stop_generation(m, false);
	workers_keep_older(m, true);
	config_free(m->cfg);
	m->cfg = r->old_cfg;
	r->old_cfg = NULL;
	workers_adopt_all(m);
	workers_fill(m); /* an old worker that crashed meanwhile */
	notify(r, "READY=1\nSTATUS=overlap reload failed");
}

/* How the start or reload ended: every worker ready, or some of them failing. */
static void finish(struct reload *r, bool was_reload)
{
	struct master *m = r->m;
	double ms = (mono_now() - r->started) * 1000;

	was_reload = was_reload || r->after_reexec;
	if (workers_all_ready(m) && !was_reload)
		log_info("ready: %d workers, generation %u", workers_ready_count(m), m->generation);
	else if (workers_all_ready(m))
		log_info("reload complete: generation %u ready in %.0f ms", m->generation, ms);
	else
		log_warn("%s: generation %u runs with %d of %d workers ready; the others keep "
			 "failing and are respawned with backoff", was_reload ? "reload ended" :
			 "start ended", m->generation, workers_ready_count(m), scale_target(m));
	r->after_reexec = false;
	config_free(r->old_cfg);
	r->old_cfg = NULL;
	notify(r, workers_all_ready(m) ? "READY=1\nSTATUS=ready"
				       : "READY=1\nSTATUS=degraded: some workers keep failing");
}

/* ---- stops and the exec ---------------------------------------------------------------- */

static void disarm_exec(struct reload *r)
{
	if (!r->exec_armed)
		return;
	ev_idle_stop(r->m->loop, &r->exec_idle);
	if (signals_unblock_all() < 0)
		log_errno("sigprocmask");
	r->exec_armed = false;
}

static void begin_stop(struct reload *r, enum master_state was)
{
	log_info("stopping gracefully (%s)%s", r->why,
		 was == MASTER_RELOADING ? ": the stop takes over the reload" : "");
	r->chain_new = r->chain_old = NULL;
	r->step_pending = false; /* a legions step under way: its answer is not waited for */
	disarm_exec(r);
	notify(r, "STOPPING=1\nSTATUS=stopping");
	step_begin(r);
}

static void brutal(struct reload *r)
{
	struct child *c;

	log_warn("stopping now (%s): SIGKILL to every child's process group", r->why);
	r->step_pending = false;
	disarm_exec(r);
	notify(r, "STOPPING=1\nSTATUS=stopping");
	TAILQ_FOREACH(c, &r->m->children.children, link) {
		child_cancel_respawn(c);
		child_kill(c);
	}
	if (child_set_running(&r->m->children, -1) == 0)
		fire(r, RE_ALL_GONE);
}

/* An idle watcher runs only when nothing else is pending: every signal caught before
 * the block has been dispatched by then (a SIGTERM racing the end of the teardown
 * takes the machine out of RS_REEXEC, and disarms this watcher). */
static void exec_when_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop, (void)revents;
	fire(w->data, RE_EXEC_DUE);
}

static void arm_exec(struct reload *r)
{
	/* Without cgroups, a child's setsid'd offspring escapes its group's SIGKILL and
	 * is adopted by us (a subreaper): a reload does not leave it behind. */
	child_set_kill_strays(&r->m->children);
	/* From now on a signal waits, pending, for the new image's handlers. */
	if (signals_block_for_exec() < 0)
		log_errno("sigprocmask");
	r->exec_armed = true;
	ev_idle_init(&r->exec_idle, exec_when_idle);
	r->exec_idle.data = r;
	ev_set_priority(&r->exec_idle, EV_MINPRI);
	ev_idle_start(r->m->loop, &r->exec_idle);
}

static _Noreturn void exec_now(struct reload *r)
{
	struct master *m = r->m;
	struct reexec_state next = {
		.generation = m->generation + 1, .reload_started = r->started,
		.reload_pending = r->fsm.pending, .config_text = r->next_text,
		.config_len = r->next_len, .daemons = daemons_handover(m),
		.workers_target = m->scale ? scale_target(m) : 0,
	};

	ev_idle_stop(m->loop, &r->exec_idle);
	reexec_exec(m, &next);
	log_fatal("reload: the new image could not be started; exiting for the emperor to "
		  "start the vassal again");
}

static _Noreturn void exit_now(struct reload *r)
{
	child_set_kill_strays(&r->m->children);
	r->hooks.stopped(r->hooks.arg);
	exit(0);
}

/* ---- the machine ------------------------------------------------------------------------ */

static void act(struct reload *r, enum reload_action a, struct reload_fsm prev)
{
	switch (a) {
	case RA_NONE: break;
	case RA_IMPOSSIBLE: break; /* fire() logged it */
	case RA_REFUSE: log_warn("reload (%s) refused: stopping", r->why); break;
	case RA_QUEUE:
		if (!prev.pending)
			log_info("reload (%s) queued: it runs when the current %s ends", r->why,
				 prev.state == RS_STARTING ? "start" : "reload");
		break;
	case RA_ALREADY_STOPPING: log_info("stop (%s): already stopping", r->why); break;
	case RA_VALIDATE: validate(r, RELOAD_AS_CONFIGURED); break;
	case RA_VALIDATE_CHAIN: validate(r, RELOAD_CHAIN); break;
	case RA_ABORT:
		log_warn("reload (%s) aborted: %s is invalid; generation %u keeps running", r->why,
			 r->m->path, r->m->generation);
		/* Still ready: whoever asked (the emperor's reload queue) may move on. */
		notify(r, "READY=1\nSTATUS=reload aborted: invalid config");
		break;
	case RA_BEGIN_GRACEFUL: begin(r, CFG_RELOAD_GRACEFUL); step_begin(r); break;
	case RA_BEGIN_WORKERS:
		begin(r, CFG_RELOAD_WORKERS);
		workers_replace_all(r->m);
		reload_workers_ready(r->m);
		break;
	case RA_BEGIN_CHAIN: begin(r, CFG_RELOAD_CHAIN); chain_next(r); reload_workers_ready(r->m); break;
	case RA_CHAIN_NEXT: chain_replaced(r); break;
	case RA_CHAIN_FAIL: chain_failed(r); break;
	case RA_BEGIN_OVERLAP: begin(r, CFG_RELOAD_OVERLAP); overlap_begin(r); break;
	case RA_OVERLAP_SWITCH: overlap_switch(r); break;
	case RA_OVERLAP_FAIL: overlap_failed(r); break;
	case RA_FINISH: finish(r, prev.state != RS_STARTING); break;
	case RA_STEP: step_begin(r); break;
	case RA_BEGIN_STOP: begin_stop(r, reload_fsm_master_state(prev)); break;
	case RA_BRUTAL: brutal(r); break;
	case RA_REEXEC: arm_exec(r); break;
	case RA_EXEC: exec_now(r);
	case RA_EXIT: exit_now(r);
	case RA_COUNT: break;
	}
}

/* The one place the machine moves. An action may raise the next event itself (a step
 * with nothing to stop is done at once): fire() nests, at most once per step. */
static void fire(struct reload *r, enum reload_event ev)
{
	struct reload_fsm prev = r->fsm;
	struct reload_transition t = reload_fsm_next(prev, ev);

	if (t.action == RA_IMPOSSIBLE)
		log_warn("reload machine: %s in state %s cannot happen; ignored",
			 reload_event_name(ev), reload_state_name(prev.state));
	else if (t.next.state != prev.state || t.action != RA_NONE)
		log_debug("reload machine: %s --%s--> %s: %s%s", reload_state_name(prev.state),
			  reload_event_name(ev), reload_state_name(t.next.state),
			  reload_action_name(t.action), t.next.pending ? " (a reload is queued)" : "");
	r->fsm = t.next;
	r->m->state = reload_fsm_master_state(t.next);
	act(r, t.action, prev);
	if (t.then == RE_RELOAD) {
		snprintf(r->why, sizeof r->why, "queued request");
		fire(r, RE_RELOAD);
	}
}

static void fire_why(struct master *m, enum reload_event ev, const char *why)
{
	snprintf(m->reload->why, sizeof m->reload->why, "%s", why);
	fire(m->reload, ev);
}

void reload_request(struct master *m, const char *why, enum reload_how how)
{
	fire_why(m, how == RELOAD_CHAIN ? RE_CHAIN : RE_RELOAD, why);
}

void reload_stop(struct master *m, const char *why)
{
	fire_why(m, RE_STOP, why);
}

void reload_brutal_stop(struct master *m, const char *why)
{
	fire_why(m, RE_BRUTAL, why);
}

bool reload_tearing_down(const struct master *m)
{
	return reload_fsm_tearing_down(m->reload->fsm);
}

void reload_child_gone(struct master *m)
{
	struct reload *r = m->reload;
	const struct teardown_step *s = current_step(r);

	if (r->step_pending)
		fire(r, RE_CHILD_GONE); /* the step ends by itself */
	else if (child_set_running(&m->children, -1) == 0)
		fire(r, RE_ALL_GONE);
	else if (s && s->kind != NO_KIND && running_to_stop(r, s->kind) == 0)
		fire(r, RE_STEP_DONE);
	else
		fire(r, RE_CHILD_GONE);
}

void reload_worker_ready(struct master *m, struct worker *w)
{
	if (w && w == m->reload->chain_new)
		fire(m->reload, RE_CHAIN_READY);
}

void reload_worker_failed(struct master *m, struct worker *w, const char *why)
{
	if (w && m->reload->fsm.state == RS_OVERLAP && w->generation == m->generation &&
	    !w->retire) {
		m->reload->chain_why = why;
		fire(m->reload, RE_GEN_FAILED);
		return;
	}
	if (!w || w != m->reload->chain_new)
		return;
	m->reload->chain_why = why;
	fire(m->reload, RE_CHAIN_FAILED);
}

void reload_workers_ready(struct master *m)
{
	if (m->reload->fsm.state == RS_OVERLAP) {
		if (workers_generation_failing(m))
			fire(m->reload, RE_GEN_FAILED);
		else if (workers_generation_ready(m))
			fire(m->reload, RE_GEN_READY);
		return;
	}
	if (!m->reload->chain_new && workers_settled(m))
		fire(m->reload, RE_SETTLED);
}

double reload_started_at(const struct master *m)
{
	return m->reload->started;
}

int reload_init(struct master *m, const struct reexec_state *from, const struct reload_hooks *h)
{
	struct reload *r = calloc(1, sizeof *r);

	if (!r) {
		log_errno("reload: calloc");
		return -1;
	}
	r->m = m;
	r->hooks = *h;
	r->fsm = (struct reload_fsm){ .state = RS_STARTING, .goal = GOAL_NONE,
				      .pending = from->reload_pending };
	r->after_reexec = from->after_reexec;
	r->started = from->reload_started;
	m->reload = r;
	m->state = reload_fsm_master_state(r->fsm);
	return 0;
}
