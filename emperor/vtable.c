/* vtable.c — the vassal table: one record per vassal file and its life. Its state
 * changes only in fire(): the event goes through the table of vstate.c, set_state()
 * assigns the next state, and the action is carried out here. A vassal is a
 * `vassal FILE` process in its own process group, with stdin on /dev/null,
 * stdout/stderr on a pipe to output.c, and one end of a SOCK_SEQPACKET socketpair as
 * EMPEROR_FD (fd 3) carrying sd_notify messages both ways; its EOF tells each side
 * that the other is gone. Exit status: 0 stays stopped, 78 (bad config) waits for the
 * file to change, anything else is respawned with a throttle that doubles up to
 * --max-throttle. An on-demand vassal's start binds its sockets (demand.c) instead of
 * spawning: the spawn comes with the first connection, and the sockets are handed to
 * the master at fds 3.. with the channel after them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "demand.h"
#include "emperor.h"
#include "etcd_status.h"
#include "log.h"
#include "notify.h"
#include "output.h"
#include "parse.h"
#include "privs.h"
#include "status_proto.h"
#include "tyrant.h"
#include "upgrade.h"
#include "util.h"

const char *vtable_state_name(enum vassal_state st)
{
	return vstate_name(st);
}

struct vassal *vtable_find(struct emperor *e, const char *file, bool from_etcd)
{
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link)
		if ((v->state != VASSAL_STOPPING || v->halting) && v->from_etcd == from_etcd &&
		    strcmp(v->file, file) == 0)
			return v;
	return NULL;
}

/* ---- validation and spawn ------------------------------------------------------------ */

static void drop_cgroup(struct vassal *v)
{
	if (!v->cgroup)
		return;
	free(v->cgroup->parent);
	free(v->cgroup->cpu_max);
	free(v->cgroup);
	v->cgroup = NULL;
}

static void keep_cgroup(struct vassal *v, const struct config *cfg)
{
	drop_cgroup(v);
	if (!cfg->has_cgroup || !(v->cgroup = malloc(sizeof *v->cgroup)))
		return;
	*v->cgroup = cfg->cgroup;
	v->cgroup->parent = cfg->cgroup.parent ? strdup(cfg->cgroup.parent) : NULL;
	v->cgroup->cpu_max = cfg->cgroup.cpu_max ? strdup(cfg->cgroup.cpu_max) : NULL;
}

static void woken(void *arg);

/* An on-demand config's sockets become the ones its next arm binds. */
static void keep_sockets(struct vassal *v, const struct config *cfg)
{
	v->on_demand = cfg->on_demand;
	if (!v->on_demand)
		return;
	if (!v->demand && !(v->demand = demand_new(v->e->loop, woken, v))) {
		log_errno("%s: on-demand", v->name);
		return;
	}
	if (demand_want(v->demand, cfg) < 0)
		log_errno("%s: on-demand sockets", v->name);
}

enum validity { VALID, INVALID, REFUSED };

/* What an event's action needs besides the record. */
struct vctx {
	const char *why;            /* a reload's or a stop's reason; a refusal's */
	const char *how;            /* an exit, as text */
	int sig;                    /* the reload signal: SIGHUP, SIGUSR2 (chain) */
	int status;                 /* a spawn's result: 0, or -1 if its exec failed */
};

static void fire(struct vassal *v, enum vstate_event ev, const struct vctx *x);

/* In tyrant mode, the file is opened by tyrant_open() and read only if it passes the
 * owner checks; a refusal is the error shown, never the file's content. */
static struct config *load(struct vassal *v, struct config_errors *errs, char *why, size_t len)
{
	struct config *cfg;
	int fd;

	if (!v->e->opts.tyrant)
		return config_load_file(v->path, errs);
	if (!v->owner && !(v->owner = calloc(1, sizeof *v->owner))) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	fd = tyrant_open(v->e, v, v->owner, why, len);
	if (fd < 0)
		return NULL;
	cfg = config_load_fd(v->path, fd, errs);
	close(fd);
	if (cfg && tyrant_config_ok(v->e, v, cfg, why, len) < 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Loads the file; logs every error as file:line:col. Keeps what the emperor needs. */
static enum validity validate(struct vassal *v)
{
	struct config_errors errs = { 0 };
	char why[512] = "";
	struct config *cfg = load(v, &errs, why, sizeof why);

	for (size_t i = 0; i < errs.n; i++)
		log_warn("%s: config error: %s", v->name, errs.msgs[i]);
	free(v->config_error);
	v->config_error = errs.n ? strdup(errs.msgs[0]) : why[0] ? strdup(why) : NULL;
	config_errors_fini(&errs);
	etcd_status_dirty(v->e->etcd_status);
	if (!cfg)
		return why[0] ? REFUSED : INVALID;
	v->stop_mercy = cfg->stop_mercy;
	v->heartbeat = cfg->heartbeat;
	keep_cgroup(v, cfg);
	keep_sockets(v, cfg);
	config_free(cfg);
	return VALID;
}

static void close_channel(struct vassal *v)
{
	if (v->chan_fd < 0)
		return;
	ev_io_stop(v->e->loop, &v->chan_io);
	close(v->chan_fd);
	v->chan_fd = -1;
}

/* Allocated only for a vassal that asks for a heartbeat: 10,000 records. */
struct vassal_heartbeat {
	ev_timer timer;             /* due when the next WATCHDOG=1 is late */
	struct vassal *v;
	int misses;
};

/* Everything a run of the vassal owns in the emperor: its channel, its output pipe
 * (what is in it now is still passed on), its heartbeat. Called when the run is
 * reaped, whatever its uptime, and before a spawn, so that no watcher of an old run
 * is ever re-initialised while active and no fd of it outlives it. */
static void release_run(struct vassal *v)
{
	close_channel(v);
	output_stop(v);
	if (v->hb)
		ev_timer_stop(v->e->loop, &v->hb->timer);
}

static void heartbeat_missed(struct ev_loop *loop, ev_timer *w, int revents);

static void heartbeat_arm(struct vassal *v)
{
	if (v->hb) {
		ev_timer_stop(v->e->loop, &v->hb->timer);
		v->hb->misses = 0;
	}
	if (v->heartbeat <= 0)
		return;
	if (!v->hb) {
		if (!(v->hb = calloc(1, sizeof *v->hb))) {
			log_errno("%s: heartbeat not watched", v->name);
			return;
		}
		v->hb->v = v;
		ev_init(&v->hb->timer, heartbeat_missed);
	}
	ev_timer_set(&v->hb->timer, v->heartbeat, 0);
	ev_timer_start(v->e->loop, &v->hb->timer);
}

static void on_message(struct vassal *v, const char *msg)
{
	char workers[32], gen[16];

	if (notify_has(msg, "WATCHDOG=1"))
		heartbeat_arm(v);
	if (notify_get(msg, "X_WORKERS", workers, sizeof workers)) {
		int ready = v->workers_ready, total = v->workers_total;
		sscanf(workers, "%d/%d", &v->workers_ready, &v->workers_total);
		if (ready != v->workers_ready || total != v->workers_total)
			etcd_status_dirty(v->e->etcd_status);
	}
	if (notify_get(msg, "X_GENERATION", gen, sizeof gen)) {
		unsigned was = v->generation;
		sscanf(gen, "%u", &v->generation);
		if (was != v->generation)
			etcd_status_dirty(v->e->etcd_status);
	}
	if (notify_has(msg, "RELOADING=1"))
		fire(v, VEV_RELOADING_MSG, NULL);
	if (notify_has(msg, "READY=1"))
		fire(v, VEV_READY_MSG, NULL);
	if (notify_has(msg, STATUS_MSG_IDLE))
		fire(v, VEV_IDLE_MSG, NULL);
	if (notify_has(msg, "X_LOGS_REOPENED=1"))
		control_vassal_event(v->e, v, CTL_LOGS_REOPENED);
}

static void chan_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vassal *v = container_of(w, struct vassal, chan_io);
	char buf[NOTIFY_MSG_MAX + 1];

	(void)loop, (void)revents;
	for (int i = 0; i < 32; i++) {
		ssize_t n = recv(v->chan_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) { /* EOF: the vassal is gone or going; its exit says the rest */
			close_channel(v);
			return;
		}
		buf[n] = '\0';
		on_message(v, buf);
	}
}

/* With --etcd, a vassal's legions default to the emperor's etcd (vassal/legion.c). */
static char **vassal_env(const struct emperor *e, int emperor_fd)
{
	char fd[16];

	char **env = env_for_child(NULL, NULL);

	if (env && e->opts.etcd.endpoints)
		env = env_set(env, "EMPEROR_ETCD", e->opts.etcd.endpoints);
	if (env && e->opts.etcd.endpoints)
		env = env_set(env, "EMPEROR_ETCD_PREFIX", e->opts.etcd.prefix);
	snprintf(fd, sizeof fd, "%d", emperor_fd);
	return env ? env_set(env, "EMPEROR_FD", fd) : NULL;
}

/* What the vassal's process does before its exec, prepared by spawn(): it runs in a
 * vfork'd child (lib/child.c), so the NSS lookup of the owner's groups and the path of
 * its cgroup are done here, and the child only makes system calls. */
struct vassal_launch {
	const struct privs *owner;  /* tyrant mode: who it becomes, else NULL */
	gid_t *groups;              /* the owner's supplementary groups */
	int n_groups;
	int cg_procs;               /* its cgroup's cgroup.procs, else -1 */
};

/* In the vassal's process, before exec: its cgroup, then (tyrant) its owner. */
static void vassal_in_child(void *arg, const struct child_report *rep)
{
	const struct vassal_launch *vl = arg;
	const char *what = NULL;

	if (vl->cg_procs >= 0 && cgroup_join_fd(vl->cg_procs) < 0)
		child_fail(rep, "joining its cgroup");
	if (vl->owner && privs_drop_in_child(vl->owner, vl->groups, vl->n_groups, &what) < 0)
		child_fail(rep, what);
}

/* Its cgroup (created, or left without one: logged) and its owner's groups. -1 when
 * the groups cannot be known (logged): not started. */
static int launch_prepare(struct vassal *v, struct vassal_launch *vl)
{
	char cg_path[PATH_MAX], why[300];

	*vl = (struct vassal_launch){ .owner = v->owner, .cg_procs = -1 };
	if (v->owner && privs_groups(v->owner, &vl->groups, &vl->n_groups, why, sizeof why) < 0) {
		log_warn("%s: not started: %s", v->name, why);
		return -1;
	}
	free(v->cg_path);
	v->cg_path = NULL;
	if (v->e->cg.usable && cgroup_create(&v->e->cg, v->name, v->cgroup,
					     cg_path, sizeof cg_path) == 0)
		v->cg_path = strdup(cg_path); /* NULL: it runs without (the log said why) */
	if (v->cg_path && (vl->cg_procs = cgroup_procs_open(v->cg_path)) < 0)
		log_errno("%s: cgroups: %s/cgroup.procs (it runs without)", v->name, v->cg_path);
	return 0;
}

static void launch_done(struct vassal_launch *vl)
{
	free(vl->groups);
	if (vl->cg_procs >= 0)
		close(vl->cg_procs);
}

static void vassal_cgroup_kill(struct child *c)
{
	struct vassal *v = c->data;

	if (v->cg_path && cgroup_kill(v->cg_path) < 0)
		log_errno("%s: cgroup.kill in %s", v->name, v->cg_path);
}

/* fds for the master: an on-demand vassal's sockets at 3.. (LISTEN_FDS), then the
 * channel. NULL when out of memory. */
static int *vassal_fds(const struct vassal *v, int chan, int *n, const char **names)
{
	const int *socks = NULL;
	size_t n_socks = v->demand ? demand_fds(v->demand, &socks, names) : 0;
	int *fds = calloc(n_socks + 1, sizeof *fds);

	if (!fds)
		return NULL;
	if (n_socks)
		memcpy(fds, socks, n_socks * sizeof *fds);
	fds[n_socks] = chan;
	*n = (int)n_socks + 1;
	return fds;
}

static int spawn(struct vassal *v)
{
	int sp[2], out[2], rc, *fds = NULL, n_fds = 0;
	char *argv[] = { (char *)v->e->opts.vassal_bin, v->path, NULL };
	const char *names = NULL;
	char **env = NULL;
	struct vassal_launch vl;

	release_run(v);
	if (launch_prepare(v, &vl) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		log_errno("%s: socketpair", v->name);
		launch_done(&vl);
		return -1;
	}
	if (!(fds = vassal_fds(v, sp[1], &n_fds, &names)) ||
	    !(env = vassal_env(v->e, 3 + n_fds - 1)) || pipe2(out, O_CLOEXEC) < 0) {
		log_errno("%s: its fds, environment or output pipe", v->name);
		close(sp[0]), close(sp[1]), strv_free(env), free(fds), launch_done(&vl);
		return -1;
	}
	struct child_exec x = { .argv = argv, .env = env, .fds = fds, .n_fds = n_fds,
				.fdnames = n_fds > 1 ? names : NULL, .n_listen_fds = n_fds - 1,
				.out_fd = out[1], .in_child = vassal_in_child, .in_child_arg = &vl };
	rc = child_spawn(&v->child, &x);
	launch_done(&vl);
	close(sp[1]);
	close(out[1]);
	strv_free(env);
	free(fds);
	v->chan_fd = sp[0];
	fd_set_nonblock(v->chan_fd, 1);
	ev_io_init(&v->chan_io, chan_readable, v->chan_fd, EV_READ);
	ev_io_start(v->e->loop, &v->chan_io);
	output_start(v, out[0]);
	return rc;
}

void vtable_start(struct vassal *v)
{
	enum validity valid;
	int rc;

	v->halting = false;
	emperor_unqueue_start(v->e, v);
	if (v->e->stopping)
		return;
	valid = validate(v);
	if (valid != VALID) {
		fire(v, VEV_REFUSED, &(struct vctx){ .why = valid == REFUSED ? v->config_error : NULL });
		return;
	}
	if (v->on_demand && v->demand) { /* the spawn waits for a connection */
		fire(v, demand_arm(v->demand) == 0 ? VEV_ARMED : VEV_SPAWN_FAILED, NULL);
		return;
	}
	rc = spawn(v);
	/* No process came of it (no socketpair, pipe or fork): nothing will exit to tell,
	 * so the retry is scheduled now, throttled like a respawn. */
	fire(v, child_running(&v->child) ? VEV_SPAWNED : VEV_SPAWN_FAILED,
	     &(struct vctx){ .status = rc });
}

/* A connection on an on-demand vassal's socket (demand.c disarmed them). */
static void woken(void *arg)
{
	struct vassal *v = arg;
	int rc;

	if (v->e->stopping || child_running(&v->child))
		return;
	log_info("%s: a connection is waiting: starting it", v->name);
	rc = spawn(v);
	fire(v, child_running(&v->child) ? VEV_SPAWNED : VEV_SPAWN_FAILED,
	     &(struct vctx){ .status = rc });
}

/* ---- the machine ---------------------------------------------------------------------- */

/* The record goes; the emperor may exit if it was the last one of a stop. */
static void forget(struct vassal *v)
{
	struct emperor *e = v->e;

	vtable_free(v);
	emperor_vassal_gone(e);
}

/* An on-demand vassal's sockets follow its state: unwatched while a master runs or a
 * start is due (the master, then the next start, arms them), closed once it is
 * halted, gone or no longer on-demand. ON-DEMAND is armed by its action (VA_ARMED).
 * Gone closes them before the action logs "removed" or "stopped": whoever reads that
 * line may bind the port at once. */
static void sockets_follow(struct vassal *v, enum vassal_state st)
{
	if (!v->demand)
		return;
	if (st == VASSAL_GONE || st == VASSAL_HALTED ||
	    (!v->on_demand && !child_running(&v->child))) {
		demand_free(v->demand);
		v->demand = NULL;
	} else if (st != VASSAL_ON_DEMAND) {
		demand_disarm(v->demand);
	}
}

/* The one place a vassal's state is assigned, logged at debug level. */
static void set_state(struct vassal *v, enum vassal_state next, const char *via)
{
	log_debug("%s: %s -> %s (%s)", v->name, vstate_name(v->state), vstate_name(next), via);
	if (next != VASSAL_GONE) {
		v->e->records_stopping += (next == VASSAL_STOPPING) - (v->state == VASSAL_STOPPING);
		v->state = next;
	}
	sockets_follow(v, next);
	etcd_status_dirty(v->e->etcd_status);
}

/* READY=1 after a start or a reload. */
static void now_ready(struct vassal *v)
{
	heartbeat_arm(v);
	emperor_reload_slot_free(v->e, v);
	emperor_status_notify(v->e);
	control_vassal_event(v->e, v, CTL_READY);
}

/* Its process is gone unasked and no respawn follows at once, or one does. */
static void exit_told(struct vassal *v, const char *warning)
{
	if (warning)
		log_warn("%s: %s", v->name, warning);
	control_vassal_event(v->e, v, CTL_FAILED);
	emperor_status_notify(v->e);
}

static void signal_reload(struct vassal *v, const struct vctx *x, bool first)
{
	log_info("%s: %s (%s)", v->name, x->sig == SIGUSR2 ? "chain reload" : "reloading", x->why);
	v->reload_why = x->why;
	if (first) /* merged requests: timed from the first */
		v->spawned_at_mono = mono_now();
	if (kill(v->child.pid, x->sig) < 0)
		log_errno("%s: kill(%d, SIG%s)", v->name, (int)v->child.pid, parse_signal_name(x->sig));
}

/* The actions that start, ready or reload it. */
static void act_on_life(struct vassal *v, enum vstate_action a, const struct vctx *x)
{
	double took = (mono_now() - v->spawned_at_mono) * 1000;

	switch (a) {
	case VA_STARTED:
		v->spawned_at_mono = mono_now();
		if (x->status == 0)
			log_info("%s: started (pid %d)", v->name, (int)v->child.pid);
		break;
	case VA_RETRY:
		release_run(v);
		log_warn("%s: not started; next attempt in %.1fs", v->name,
			 child_next_backoff(&v->child));
		child_schedule_respawn(&v->child);
		break;
	case VA_HALT_INVALID:
		if (x->why)
			log_warn("%s: not started (tyrant mode): %s; waiting for the file to change",
				 v->name, x->why);
		else
			log_warn("%s: not started: invalid config; waiting for the file to change",
				 v->name);
		break;
	case VA_ANNOUNCE_READY:
		log_info("%s: ready after %.0f ms", v->name, took);
		now_ready(v);
		break;
	case VA_ANNOUNCE_RELOADED:
		log_info("%s: reloaded (%s) in %.0f ms", v->name, v->reload_why ? v->reload_why : "?",
			 took);
		control_reload_done(v, took / 1000);
		now_ready(v);
		break;
	case VA_ARMED: /* `emperorctl start` is answered: it serves from now on */
		log_info("%s: on-demand: waiting for a connection", v->name);
		emperor_status_notify(v->e);
		control_vassal_event(v->e, v, CTL_READY);
		break;
	case VA_NOTE_SELF_RELOAD:
		v->spawned_at_mono = mono_now();
		v->reload_why = "by itself";
		break;
	case VA_SIGNAL_RELOAD:
	case VA_SIGNAL_MORE:
		signal_reload(v, x, a == VA_SIGNAL_RELOAD);
		break;
	default:
		break;
	}
}

/* Stopped by itself for being idle: not a failure. IDLE waits for its file to change;
 * an on-demand vassal (it still holds sockets: set_state() closed them otherwise)
 * goes on to ON-DEMAND, waiting for the next connection on its sockets (re-bound if
 * its file changed meanwhile). */
static void idle_stopped(struct vassal *v)
{
	control_vassal_event(v->e, v, CTL_STOPPED);
	emperor_status_notify(v->e);
	if (!v->demand) {
		log_info("%s: stopped (idle); starts again when its file changes", v->name);
		return;
	}
	log_info("%s: stopped (idle); starts again at the next connection", v->name);
	/* a changed address that could not be bound: WAITING, unwatched, retried */
	fire(v, demand_arm(v->demand) == 0 ? VEV_ARMED : VEV_SPAWN_FAILED, NULL);
}

/* The actions of an idle stop, and of a start asked for while it had no process. */
static void act_on_idle(struct vassal *v, enum vstate_action a, const struct vctx *x)
{
	switch (a) {
	case VA_NOTE_IDLE: /* no reload is sent to it from now on, no heartbeat awaited */
		log_info("%s: stopping for being idle", v->name);
		if (v->hb)
			ev_timer_stop(v->e->loop, &v->hb->timer);
		emperor_reload_slot_free(v->e, v);
		emperor_status_notify(v->e);
		break;
	case VA_NOTE_RESTART:
		log_info("%s: %s while it stops for being idle: it starts again once stopped",
			 v->name, x->why);
		break;
	case VA_IDLE_STOPPED:
		idle_stopped(v);
		break;
	case VA_RESTART:
		log_info("%s: stopped (idle, %s); starting again: its file changed meanwhile",
			 v->name, x->how);
		vtable_start(v);
		break;
	case VA_START: /* no process: its file changed; an edit reset the throttle */
		child_cancel_respawn(&v->child);
		vtable_start(v);
		break;
	case VA_UNQUEUE:
		emperor_unqueue_start(v->e, v);
		vtable_wait_for(v, NULL);
		log_info("%s: not started (emperorctl stop): halted until started again", v->name);
		emperor_status_notify(v->e);
		break;
	default:
		act_on_life(v, a, x);
		break;
	}
}

/* The actions that stop it or follow its exit. v may be freed on return. */
static void act_on_end(struct vassal *v, enum vstate_action a, const struct vctx *x)
{
	switch (a) {
	case VA_CURSE:
		log_info("%s: stopping (%s), SIGKILL after %.0fs", v->name, x->why, v->stop_mercy);
		emperor_reload_slot_free(v->e, v);
		child_curse(&v->child, SIGTERM, v->stop_mercy);
		break;
	case VA_FORGET:
		log_info("%s: removed (%s)", v->name, x->why);
		forget(v);
		break;
	case VA_CANCEL_RESPAWN:
		child_cancel_respawn(&v->child);
		break;
	case VA_KILL:
		child_kill(&v->child);
		break;
	case VA_STOPPED:
		log_info("%s: stopped (%s)", v->name, x->how);
		control_vassal_event(v->e, v, CTL_STOPPED);
		forget(v);
		break;
	case VA_STOPPED_KEEP:
		log_info("%s: stopped (%s); halted until started again", v->name, x->how);
		control_vassal_event(v->e, v, CTL_STOPPED);
		emperor_status_notify(v->e);
		break;
	case VA_HALT_EXIT0:
		exit_told(v, "exited 0: stays stopped until its file changes or the emperor gets SIGHUP");
		break;
	case VA_HALT_BAD_CONFIG:
		exit_told(v, "bad config (exit 78): waiting for the file to change");
		break;
	case VA_RESPAWN:
		log_warn("%s: died (%s) after %.1fs; respawn in %.1fs", v->name, x->how,
			 v->child.last_uptime, child_next_backoff(&v->child));
		v->restarts++;
		child_schedule_respawn(&v->child);
		exit_told(v, NULL);
		break;
	default:
		act_on_idle(v, a, x);
		break;
	}
}

/* An event: the table's next state, then its action. */
static void fire(struct vassal *v, enum vstate_event ev, const struct vctx *x)
{
	static const struct vctx none = { .why = "", .how = "", .sig = SIGHUP };
	struct vstate_step s = vstate_next(v->state, ev);

	if (s.action == VA_IMPOSSIBLE) {
		log_warn("%s: event %s while %s cannot happen: ignored", v->name,
			 vstate_event_name(ev), vstate_name(v->state));
		return;
	}
	if (s.next != v->state || s.action != VA_IGNORE)
		set_state(v, s.next, vstate_event_name(ev));
	act_on_end(v, s.action, x ? x : &none);
}

static void vassal_exited(struct child *c, int status)
{
	struct vassal *v = c->data;
	enum vstate_event ev = VEV_EXIT_FAILED;
	char how[64];

	release_run(v);
	emperor_reload_slot_free(v->e, v);
	if (v->cg_path) /* whatever it left behind goes with its cgroup */
		cgroup_remove(v->cg_path);
	free(v->cg_path);
	v->cg_path = NULL;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) /* exit 0: it killed its own */
		child_set_sweep_soon(&v->e->children); /* or was adopted by us, a subreaper */
	child_status_text(status, how, sizeof how);
	snprintf(v->last_exit, sizeof v->last_exit, "%.*s", (int)sizeof v->last_exit - 1, how);
	if (v->halting && !v->e->stopping)
		ev = VEV_EXIT_HALTED;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == CONFIG_EX_CONFIG)
		ev = VEV_EXIT_CONFIG;
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ev = VEV_EXIT_OK; /* IDLING: an idle stop, by the table */
	fire(v, ev, &(struct vctx){ .how = how });
}

static void vassal_respawn_due(struct child *c)
{
	vtable_start(c->data);
}

static void heartbeat_missed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct vassal_heartbeat *hb = container_of(w, struct vassal_heartbeat, timer);
	struct vassal *v = hb->v;

	(void)loop, (void)revents;
	if (!child_running(&v->child) || vstate_leaving(v->state))
		return;
	if (++hb->misses == 1) {
		log_warn("%s: no heartbeat for %.1fs: reloading it", v->name, v->heartbeat);
		vtable_reload(v, "heartbeat missed");
		ev_timer_set(w, v->heartbeat, 0);
		ev_timer_start(loop, w);
		hb->misses = 1;
		return;
	}
	log_warn("%s: still no heartbeat after %.1fs more: killing it", v->name, v->heartbeat);
	vtable_kill(v);
}

/* A running vassal is reloaded; one without a process is started (the table's
 * `changed` row); one stopping for being idle starts again once stopped. */
void vtable_changed(struct vassal *v, bool content_changed)
{
	if (v->state == VASSAL_STOPPING)
		return;
	enum validity valid = content_changed ? validate(v) : VALID;

	if (valid == REFUSED)
		log_warn("%s: refused (tyrant mode): %s", v->name, v->config_error);
	if (valid != VALID) {
		if (child_running(&v->child))
			log_warn("%s: keeps running its previous config", v->name);
		return;
	}
	if (content_changed) /* an edit may be the fix: the throttle starts over */
		v->child.backoff_cur = 0;
	fire(v, VEV_CHANGED, &(struct vctx){ .why = content_changed ? "changed" : "touched",
					      .sig = SIGHUP });
}

/* SIGHUP: a reload in the vassal's configured mode; SIGUSR2: a chain reload. */
void vtable_reload(struct vassal *v, const char *why)
{
	if (child_running(&v->child))
		fire(v, VEV_RELOAD, &(struct vctx){ .why = why, .sig = SIGHUP });
}

void vtable_chain_reload(struct vassal *v, const char *why)
{
	if (child_running(&v->child))
		fire(v, VEV_RELOAD, &(struct vctx){ .why = why, .sig = SIGUSR2 });
}

void vtable_stop(struct vassal *v, const char *why)
{
	fire(v, VEV_STOP, &(struct vctx){ .why = why });
}

void vtable_halt(struct vassal *v)
{
	if (child_running(&v->child) && v->halting)
		return;
	v->halting = true;
	fire(v, VEV_HALT, &(struct vctx){ .why = "emperorctl" });
}

void vtable_kill(struct vassal *v)
{
	fire(v, VEV_KILL, NULL);
}

void vtable_brutal_stop(struct vassal *v)
{
	fire(v, VEV_BRUTAL_STOP, NULL);
}

/* ---- records ---------------------------------------------------------------------------- */

/* Its path, file name and name in one block: "DIR/FILE\0NAME\0", file and name
 * pointing into it (a record's strings cost one allocation; 10,000 records). */
static int names_alloc(struct vassal *v, const char *dir, const char *file)
{
	char *name = config_vassal_name(file); /* printable: a file name may hold a newline */
	size_t dir_len = strlen(dir), file_len = strlen(file);

	if (!name)
		return -1;
	v->path = malloc(dir_len + 1 + file_len + 1 + strlen(name) + 1);
	if (v->path) {
		sprintf(v->path, "%s/%s%c%s", dir, file, '\0', name);
		v->file = v->path + dir_len + 1;
		v->name = v->file + file_len + 1;
	}
	free(name);
	return v->path ? 0 : -1;
}

struct vassal *vtable_add(struct emperor *e, const char *file, const struct file_id *id,
			  bool from_etcd)
{
	struct vassal *v = calloc(1, sizeof *v);
	char label[300];

	if (!v)
		return NULL;
	v->e = e;
	v->from_etcd = from_etcd;
	if (names_alloc(v, from_etcd ? e->etcd_dir : e->dir, file) < 0) {
		free(v);
		return NULL;
	}
	v->id = *id;
	v->state = VASSAL_QUEUED; /* a new record: nothing runs yet */
	v->chan_fd = -1;
	v->stop_mercy = 90;
	snprintf(label, sizeof label, "vassal %s", v->name);
	child_init(&v->child, &e->children, 0, label);
	v->child.data = v;
	v->child.on_exit = vassal_exited;
	v->child.on_respawn = vassal_respawn_due;
	v->child.on_kill = vassal_cgroup_kill;
	v->child.backoff_min = e->opts.throttle;
	v->child.backoff_max = e->opts.max_throttle;
	v->child.backoff_jitter = true;
	v->child.stable_after = e->opts.throttle_reset;
	TAILQ_INSERT_TAIL(&e->vassals, v, link);
	return v;
}

struct vassal *vtable_adopt(struct emperor *e, const struct upgrade_record *r)
{
	struct vassal *v = vtable_add(e, r->file, &r->id, r->from_etcd);

	if (!v)
		return NULL;
	validate(v);
	set_state(v, (unsigned)r->state < VASSAL_N_STATES ? (enum vassal_state)r->state : VASSAL_READY,
		  "handed across");
	v->spawned_at_mono = mono_now();
	child_adopt(&v->child, r->pid, r->started);
	v->chan_fd = r->chan_fd;
	if (v->chan_fd >= 0) {
		fd_set_cloexec(v->chan_fd, 1);
		ev_io_init(&v->chan_io, chan_readable, v->chan_fd, EV_READ);
		ev_io_start(e->loop, &v->chan_io);
	}
	if (r->out_fd >= 0) {
		fd_set_cloexec(r->out_fd, 1);
		output_start(v, r->out_fd);
	}
	v->cg_path = r->cg_path[0] ? strdup(r->cg_path) : NULL;
	if (v->state == VASSAL_READY)
		heartbeat_arm(v);
	if (v->demand && demand_hold(v->demand) < 0) /* its sockets, from the old image */
		log_warn("%s: on-demand sockets: not every one was handed across", v->name);
	return v;
}

void vtable_wait_for(struct vassal *v, struct vassal *old)
{
	v->e->records_waiting += (old != NULL) - (v->waits_for != NULL);
	v->waits_for = old;
}

void vtable_free(struct vassal *v)
{
	struct emperor *e = v->e;
	struct vassal *x, *next;

	TAILQ_REMOVE(&e->vassals, v, link);
	if (v->state == VASSAL_STOPPING)
		e->records_stopping--;
	if (v->in_reload_queue)
		TAILQ_REMOVE(&e->reload_queue, v, reload_link);
	emperor_unqueue_start(e, v);
	release_run(v);
	demand_free(v->demand);
	child_fini(&v->child);
	vtable_wait_for(v, NULL);
	/* a walk only while some record waits: freeing 10,000 records stays O(N) */
	for (x = e->records_waiting ? TAILQ_FIRST(&e->vassals) : NULL; x; x = next) {
		next = TAILQ_NEXT(x, link);
		if (x->waits_for == v) {
			vtable_wait_for(x, NULL);
			vtable_start(x);
		}
	}
	drop_cgroup(v);
	control_vassal_free(v);
	output_ring_free(v);
	free(v->hb); /* stopped by release_run() */
	free(v->owner);
	free(v->cg_path);
	free(v->config_error);
	free(v->path); /* file and name with it */
	free(v);
}
