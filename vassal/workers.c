/* workers.c — the workers' policy (see workers.h). A worker is any program: it gets
 * the vassal's listening sockets on fds 3.. with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES,
 * NOTIFY_SOCKET, VASSAL_NAME and VASSAL_WORKER_ID, its configured env and cwd, stdin
 * on /dev/null, and stdout/stderr on a pipe of its own whose lines the master relays
 * to its own stdout whole (relay.c). What happens when one exits depends on why:
 * asked to (reload, stop) or not (crash: respawn with backoff). */
#include "workers.h"

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logfile.h"
#include "mules.h"
#include "preload.h"
#include "procs.h"
#include "reload.h"
#include "scale.h"
#include "start_prio.h"
#include "util.h"

static struct worker *as_worker(struct child *c)
{
	return c->kind == KIND_WORKER ? (struct worker *)c : NULL;
}

#define FOREACH_WORKER(w, m)                                                        \
	for (struct child *c_ = TAILQ_FIRST(&(m)->children.children); c_;            \
	     c_ = TAILQ_NEXT(c_, link))                                               \
		if (((w) = as_worker(c_)) != NULL)

/* A malloc'd "K=V", or NULL (asprintf leaves its pointer undefined when it fails). */
static char *kv_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *kv_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char **workers_env(const struct master *m, int id)
{
	char **farms = mules_env(m), **add, **env;
	size_t n = strv_len(m->cfg->workers.prog.env), n_farms = strv_len(farms), i = 0;
	char *const empty[] = { NULL };
	char *own[3] = { NULL };
	char health_buf[2][48];

	add = calloc(n + n_farms + 6, sizeof *add);
	own[0] = kv_printf("VASSAL_NAME=%s", m->cfg->name);
	own[1] = kv_printf("VASSAL_WORKER_ID=%d", id);
	own[2] = kv_printf("NOTIFY_SOCKET=%s", m->notify.address);
	if (!add || (m->cfg->n_mules && !farms) || !own[0] || !own[1] || !own[2]) {
		env = NULL;
		goto out;
	}
	for (size_t k = 0; k < n_farms; k++)
		add[i++] = farms[k];
	for (size_t k = 0; k < n; k++)
		add[i++] = m->cfg->workers.prog.env[k];
	for (size_t k = 0; k < 3; k++)
		add[i++] = own[k];
	i += health_env(&m->cfg->workers, add + i, health_buf);
	env = env_for_child(m->cfg->clear_env ? empty : NULL, add);
out:
	for (size_t k = 0; k < 3; k++)
		free(own[k]);
	free(add);
	strv_free(farms);
	return env;
}

/* The master's output for the workers' lines, opened at the first worker; NULL if it
 * cannot be (the workers then write to the master's stdout directly, as before). */
static struct relay_sink *output_sink(struct master *m)
{
	static bool failed;

	if (m->out || failed)
		return m->out;
	m->out = malloc(sizeof *m->out);
	if (!m->out || relay_sink_open(m->out, m->loop, STDOUT_FILENO) < 0) {
		log_warn("workers write to the master's stdout directly: lines may mix");
		free(m->out);
		m->out = NULL;
		failed = true;
	} else {
		logfile_attach(m, m->out);
		if (m->cfg->log.format == CFG_LOG_JSON)
			snprintf(m->out->json_vassal, sizeof m->out->json_vassal, "%s", m->cfg->name);
	}
	return m->out;
}

/* A pipe of its own for the worker's stdout and stderr: the write end, or -1 (the
 * master's stdout, inherited). */
int workers_output_pipe(struct master *m, struct relay_pipe *p)
{
	struct relay_sink *sink = output_sink(m);
	int child_end;

	if (!sink || relay_pipe_open(p, sink, &child_end) < 0)
		return -1;
	return child_end;
}

/* Whether a worker is no longer wanted (on its exit, a failed fork, or a fork answered
 * late): retired, above the scaling target, or its master stopping or tearing down. */
static bool worker_unwanted(const struct worker *w)
{
	const struct master *m = w->m;

	return w->retire || w->id > scale_target(m) || m->state == MASTER_STOPPING ||
	       reload_tearing_down(m);
}

static void worker_free(struct worker *w)
{
	if (w->child.state == CHILD_REQUESTED)
		preload_forget(w->m, w);
	relay_pipe_close(&w->out);
	ev_timer_stop(w->m->loop, &w->ready_timer);
	child_fini(&w->child);
	free(w);
}

static void worker_became_ready(struct worker *w)
{
	struct master *m = w->m;

	child_set_ready(&w->child);
	if (w->child.state != CHILD_READY)
		return; /* its exec failed: its exit will tell */
	ev_timer_stop(m->loop, &w->ready_timer);
	log_info("worker %d (pid %d) ready in %.0f ms", w->id, (int)w->child.pid,
		 (w->child.ready_at - w->child.started_at) * 1000);
	if (w->start_prio != CFG_START_PRIO_NORMAL && start_prio_restore(w->child.pid) >= 0)
		log_debug("worker %d (pid %d): back to the normal CPU priority", w->id,
			  (int)w->child.pid);
	w->start_prio = CFG_START_PRIO_NORMAL;
	health_worker_ready(w);
	scale_worker_ready(m);
	reload_worker_ready(m, w);
	master_worker_ready(m);
}

/* Half its ready-timeout has passed at the low start priority: a machine busy with
 * other work may never leave an idle worker the CPU to start, so it gets the normal
 * priority for the other half (READY=1 restores it again, for threads made since). */
static void starved_start(struct worker *w)
{
	double rest = w->m->cfg->workers.ready_timeout / 2;

	log_info("worker %d (pid %d) not ready after %.1fs at its start priority: the normal "
		 "priority for the rest of its ready-timeout", w->id, (int)w->child.pid, rest);
	w->prio_guarded = true;
	(void)start_prio_restore(w->child.pid);
	ev_timer_set(&w->ready_timer, rest, 0);
	ev_timer_start(w->m->loop, &w->ready_timer);
}

static void ready_timer_fired(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = container_of(t, struct worker, ready_timer);
	char why[64];

	(void)loop, (void)revents;
	if (w->child.state != CHILD_STARTING)
		return;
	if (w->start_prio != CFG_START_PRIO_NORMAL && !w->prio_guarded) {
		starved_start(w);
		return;
	}
	/* Stopped, not killed: it may already accept and serve on the shared sockets. */
	log_warn("worker %d (pid %d) not ready after %.1fs (ready: notify): stopping it", w->id,
		 (int)w->child.pid, w->m->cfg->workers.ready_timeout);
	w->not_ready_in_time = true;
	child_curse(&w->child, w->child.stop_signal, w->child.mercy);
	snprintf(why, sizeof why, "was not ready within %.1fs", w->m->cfg->workers.ready_timeout);
	reload_worker_failed(w->m, w, why);
}

/* In the worker's process, before exec: its starting CPU priority (chain and overlap
 * replacements). */
static void worker_in_child(void *arg, const struct child_report *rep)
{
	struct worker *w = arg;

	(void)rep;
	start_prio_in_child(w->start_prio);
}

/* The ready-timeout from now (notify mode); at a low start priority, its first half
 * (starved_start()). */
static void arm_ready_timer(struct worker *w)
{
	const struct cfg_workers *cw = &w->m->cfg->workers;

	if (cw->ready != CFG_READY_NOTIFY)
		return;
	ev_timer_set(&w->ready_timer, cw->ready_timeout /
		     (w->start_prio != CFG_START_PRIO_NORMAL ? 2 : 1), 0);
	ev_timer_start(w->m->loop, &w->ready_timer);
}

static void worker_reset(struct worker *w)
{
	const struct cfg_workers *cw = &w->m->cfg->workers;

	w->generation = w->m->generation;
	w->not_ready_in_time = false;
	w->failing = false;
	w->prio_guarded = false;
	w->child.stop_signal = cw->prog.stop_signal;
	w->child.mercy = cw->prog.reload_mercy;
	w->child.backoff_min = cw->respawn_min;
	w->child.backoff_max = cw->respawn_max;
}

/* workers.preload: asked of the generation's template (preload.c). */
static int worker_fork(struct worker *w)
{
	worker_reset(w);
	w->start_prio = CFG_START_PRIO_NORMAL; /* forked loaded: nothing to deprioritize */
	child_requested(&w->child);
	if (preload_fork(w->m, w) == 0)
		return 0;
	child_request_failed(&w->child);
	log_errno("worker %d: not forked: out of memory", w->id);
	return -1;
}

void workers_forked(struct worker *w, pid_t pid)
{
	struct master *m = w->m;

	child_adopt_forked(&w->child, pid);
	log_info("worker %d forked by its template (pid %d)", w->id, (int)pid);
	if (worker_unwanted(w) || w->generation != m->generation) { /* or replaced meanwhile */
		child_curse(&w->child, w->child.stop_signal, w->child.mercy);
		return;
	}
	if (m->cfg->workers.ready == CFG_READY_EXEC)
		worker_became_ready(w);
	else
		arm_ready_timer(w);
}

static int worker_start(struct worker *w)
{
	struct master *m = w->m;
	const struct cfg_workers *cw = &m->cfg->workers;
	char **env, *names = NULL;
	int *fds = NULL, rc;

	if (cw->preload)
		return worker_fork(w);
	env = workers_env(m, w->id);
	if (!env || vsock_worker_fds(&m->socks, &fds, &names) < 0) {
		log_errno("worker %d: not started: out of memory", w->id);
		strv_free(env);
		return -1;
	}
	struct child_exec x = {
		.argv = cw->prog.argv, .env = env, .cwd = cw->prog.cwd, .fds = fds,
		.n_fds = (int)m->socks.n_workers, .fdnames = names, .out_fd = workers_output_pipe(m, &w->out),
		.die_with_parent = true,
		.pid_env = cw->watchdog > 0 ? "WATCHDOG_PID" : NULL, /* systemd's protocol */
		.in_child = w->start_prio != CFG_START_PRIO_NORMAL ? worker_in_child : NULL,
		.in_child_arg = w,
	};
	worker_reset(w);
	rc = child_spawn(&w->child, &x);
	if (x.out_fd >= 0)
		close(x.out_fd);
	strv_free(env);
	free(fds);
	free(names);
	if (rc == 0) {
		log_info("worker %d started (pid %d)", w->id, (int)w->child.pid);
		arm_ready_timer(w);
	}
	return rc;
}

/* ready: exec — ready as soon as its exec succeeded. */
static void worker_exec_known(struct child *c)
{
	struct worker *w = (struct worker *)c;

	if (!c->exec_errno && w->m->cfg->workers.ready == CFG_READY_EXEC)
		worker_became_ready(w);
}

static void worker_schedule(struct worker *w)
{
	procs_respawn_later(&w->child);
}

/* Starts w; when not even a process could be made, tries again after a backoff. */
static void worker_launch(struct worker *w)
{
	if (worker_start(w) < 0 && !child_running(&w->child)) {
		w->failing = true;
		worker_schedule(w);
	}
}

static void worker_respawn_due(struct child *c)
{
	struct worker *w = (struct worker *)c;

	if (w->m->state == MASTER_STOPPING || reload_tearing_down(w->m)) {
		reload_child_gone(w->m);
		return;
	}
	if (w->retire) { /* a generation an overlap reload dropped */
		struct master *m = w->m;
		worker_free(w);
		master_worker_ready(m);
		return;
	}
	worker_launch(w);
}

/* It crashed or missed its ready-timeout: a start or reload stops waiting for it,
 * and a chain reload that was waiting for it fails. */
static void worker_failed(struct worker *w, int status)
{
	char how[64], why[96];

	w->failing = true;
	if (w->not_ready_in_time)
		return; /* ready_timer_fired() told the chain */
	snprintf(why, sizeof why, "%s before it was ready", child_status_text(status, how, sizeof how));
	reload_worker_failed(w->m, w, why);
}

/* An unwanted worker goes: whoever waited for it (a reload, the start) is told. */
static void worker_drop(struct worker *w)
{
	struct master *m = w->m;

	worker_free(w);
	reload_child_gone(m);
	master_worker_ready(m);
}

static void worker_exited(struct child *c, int status)
{
	struct worker *w = (struct worker *)c;
	struct master *m = w->m;

	ev_timer_stop(m->loop, &w->ready_timer);
	w->start_prio = CFG_START_PRIO_NORMAL; /* a respawn is no replacement */
	health_worker_exited(w);
	relay_pipe_close(&w->out); /* its last lines first */
	procs_log_exit(c, status);
	if (!c->asked_to_stop || w->not_ready_in_time)
		worker_failed(w, status);
	preload_gc(m);
	if (worker_unwanted(w)) {
		worker_drop(w);
		return;
	}
	if (!w->failing) {
		worker_launch(w); /* replaced on purpose (reload: workers): at once */
		return;
	}
	worker_schedule(w);
	master_worker_ready(m); /* a start or reload may have nothing left to wait for */
}

void workers_fork_failed(struct worker *w, const char *why)
{
	struct master *m = w->m;

	child_request_failed(&w->child);
	w->failing = true;
	log_warn("worker %d %s", w->id, why);
	reload_worker_failed(m, w, why);
	preload_gc(m);
	if (worker_unwanted(w)) {
		worker_drop(w);
		return;
	}
	worker_schedule(w);
	master_worker_ready(m);
}

static struct worker *spawn(struct master *m, int id, enum cfg_start_prio prio)
{
	struct worker *w = calloc(1, sizeof *w);
	char name[32];

	if (!w)
		return NULL;
	snprintf(name, sizeof name, "worker %d", id);
	child_init(&w->child, &m->children, KIND_WORKER, name);
	w->m = m;
	w->id = id;
	w->child.on_exit = worker_exited;
	w->child.on_exec = worker_exec_known;
	relay_pipe_init(&w->out);
	w->child.on_respawn = worker_respawn_due;
	ev_timer_init(&w->ready_timer, ready_timer_fired, 0, 0);
	w->start_prio = prio;
	worker_launch(w);
	return w;
}

struct worker *workers_spawn(struct master *m, int id)
{
	return spawn(m, id, CFG_START_PRIO_NORMAL);
}

struct worker *workers_spawn_replacement(struct master *m, int id)
{
	return spawn(m, id, start_prio_effective(m->cfg->workers.start_priority));
}

static bool id_present(const struct master *m, int id)
{
	struct worker *w;

	FOREACH_WORKER(w, m)
		if (w->id == id && !w->retire)
			return true;
	return false;
}

void workers_fill(struct master *m)
{
	if (!m->cfg->has_workers)
		return;
	for (int id = 1; id <= scale_target(m); id++)
		if (!id_present(m, id))
			workers_spawn(m, id);
}

void workers_trim(struct master *m)
{
	struct worker *w;
	struct child *c, *next;

	for (c = TAILQ_FIRST(&m->children.children); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!(w = as_worker(c)) || w->retire || w->id <= scale_target(m))
			continue;
		w->retire = true;
		if (child_running(&w->child)) {
			if (w->child.state != CHILD_CURSED)
				child_curse(&w->child, w->child.stop_signal, w->child.mercy);
		} else if (w->child.state == CHILD_WAITING) { /* crashed, waiting: not respawned */
			child_cancel_respawn(&w->child);
			worker_free(w);
		}
	}
}

void workers_notify(struct notify_server *ns, pid_t sender, const char *msg)
{
	struct master *m = ns->data;
	pid_t group = getpgid(sender);
	struct worker *w;

	FOREACH_WORKER(w, m) {
		if (!child_running(&w->child) || (w->child.pid != sender && w->child.pid != group))
			continue;
		health_worker_notify(w, msg);
		if (notify_has(msg, "READY=1") && w->child.state == CHILD_STARTING)
			worker_became_ready(w);
		return;
	}
	preload_stash(m, sender, msg); /* a forked worker whose pid is not known yet */
}

/* During an overlap the old generation, retired but not yet cursed, still serves:
 * the count is that of whichever generation serves more. */
int workers_ready_count(const struct master *m)
{
	struct worker *w;
	int n = 0, old_serving = 0;

	FOREACH_WORKER(w, m) {
		if (w->child.state != CHILD_READY)
			continue;
		if (!w->retire)
			n++;
		else if (w->generation != m->generation)
			old_serving++;
	}
	return n > old_serving ? n : old_serving;
}

bool workers_settled(const struct master *m)
{
	struct worker *w;
	int done = 0;

	if (!m->cfg->has_workers)
		return true;
	FOREACH_WORKER(w, m) {
		if (child_running(&w->child) && w->generation != m->generation)
			return false;
		if (!w->retire && (w->child.state == CHILD_READY || w->failing))
			done++;
	}
	return done >= scale_target(m);
}

bool workers_all_ready(const struct master *m)
{
	struct worker *w;
	int ready = 0;

	if (!m->cfg->has_workers)
		return true;
	FOREACH_WORKER(w, m) {
		if (child_running(&w->child) && w->generation != m->generation)
			return false;
		if (w->child.state == CHILD_READY && !w->retire)
			ready++;
	}
	return ready >= scale_target(m);
}

struct worker *workers_oldest(const struct master *m)
{
	struct worker *w, *best = NULL;

	FOREACH_WORKER(w, m)
		if (w->generation != m->generation && !w->retire &&
		    child_running(&w->child) && w->child.state != CHILD_CURSED &&
		    (!best || w->id < best->id))
			best = w;
	return best;
}

void workers_replace_all(struct master *m)
{
	struct worker *w;

	FOREACH_WORKER(w, m) {
		if (w->generation == m->generation)
			continue;
		if (w->id > scale_target(m))
			w->retire = true;
		if (child_running(&w->child))
			child_curse(&w->child, w->child.stop_signal, w->child.mercy);
		else if (w->child.state == CHILD_WAITING) /* crashed and waiting: go now */
			child_cancel_respawn(&w->child), worker_launch(w);
	}
	workers_fill(m);
}

void workers_keep_older(struct master *m, bool keep)
{
	struct worker *w;

	FOREACH_WORKER(w, m)
		if (w->generation != m->generation)
			w->retire = !keep;
}

void workers_stop_generation(struct master *m, bool older)
{
	struct worker *w;

	FOREACH_WORKER(w, m) {
		if ((w->generation != m->generation) != older)
			continue;
		w->retire = true;
		if (child_running(&w->child) && w->child.state != CHILD_CURSED)
			child_curse(&w->child, w->child.stop_signal, w->child.mercy);
	}
}

bool workers_generation_ready(const struct master *m)
{
	struct worker *w;
	int ready = 0;

	if (!m->cfg->has_workers)
		return true;
	FOREACH_WORKER(w, m)
		if (w->generation == m->generation && !w->retire && w->child.state == CHILD_READY)
			ready++;
	return ready >= scale_target(m);
}

bool workers_generation_failing(const struct master *m)
{
	struct worker *w;

	FOREACH_WORKER(w, m)
		if (w->generation == m->generation && !w->retire && w->failing)
			return true;
	return false;
}

void workers_adopt_all(struct master *m)
{
	struct worker *w;

	FOREACH_WORKER(w, m)
		if (!w->retire)
			w->generation = m->generation;
	preload_adopt(m);
}
