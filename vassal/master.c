/* master.c — the vassal master's life outside a reload: start-up (what the previous
 * image handed over, config, log, cwd, sockets, the workers' notify socket, the
 * emperor channel, signals, touch-reload, each kind of child), the signal handlers,
 * the emperor channel, READY/RELOADING/STOPPING reports and the SIGUSR1 status dump.
 * reload.c owns everything that happens during a reload or stop; it reaches back only
 * through the hooks given to reload_init(). The top of the vassal's modules: it may
 * name every kind. Exit status: 0 stopped as asked, 78 bad config, 1 any other
 * failure. EMPEROR_DEBUG=1 in the environment turns on debug lines (the reload
 * machine's transitions). */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cron.h"
#include "daemons.h"
#include "gateway.h"
#include "idle.h"
#include "legion.h"
#include "log.h"
#include "logfile.h"
#include "mules.h"
#include "nested.h"
#include "privs.h"
#include "preload.h"
#include "reexec.h"
#include "reload.h"
#include "scale.h"
#include "signals.h"
#include "spooler.h"
#include "status.h"
#include "util.h"
#include "workers.h"

void master_notify(struct master *m, const char *msg)
{
	if (m->emperor_fd >= 0 && notify_fd(m->emperor_fd, msg) < 0 && errno != EPIPE)
		log_errno("emperor channel: send");
	notify_parent(msg);
}

/* The emperor shows "workers ready/total" and the generation (also in its etcd status
 * key); it hears of every change of either, nothing more, as one message. */
static void report_workers(struct master *m)
{
	int ready = workers_ready_count(m), total = scale_target(m);
	char msg[64];

	if (m->emperor_fd < 0 || (ready == m->reported_ready && total == m->reported_total &&
				  m->generation == m->reported_generation))
		return;
	m->reported_ready = ready;
	m->reported_total = total;
	m->reported_generation = m->generation;
	snprintf(msg, sizeof msg, "X_WORKERS=%d/%d\nX_GENERATION=%u", ready, total, m->generation);
	if (notify_fd(m->emperor_fd, msg) < 0 && errno != EPIPE)
		log_errno("emperor channel: send");
}

/* A legion member is ready (may lead) while the master runs with every worker ready;
 * a scaled vassal with its minimum ready is, while an added worker starts (a scale-up
 * is no reason for a lord to step down). */
static void legion_readiness(struct master *m)
{
	bool serving = workers_all_ready(m) ||
		       (m->scale && workers_ready_count(m) >= m->cfg->workers.count);

	legion_set_ready(m, m->state == MASTER_RUNNING && serving);
}

void master_worker_ready(struct master *m)
{
	report_workers(m);
	reload_workers_ready(m);
	legion_readiness(m);
}

/* reload.c's hooks. */
static void notify_hook(void *arg, const char *msg)
{
	master_notify(arg, msg);
	report_workers(arg); /* a reload's start or end: the generation may have moved */
}

/* The final stop: every child is gone; the sockets' files go too, unless the emperor
 * holds them (on-demand: it keeps them for the next start). */
static void stopped(void *arg)
{
	struct master *m = arg;

	idle_free(m);
	preload_free(m);
	vsock_close_all(&m->socks, !m->cfg->on_demand);
	notify_server_close(&m->notify);
	watch_close(&m->touch);
	log_info("stopped");
}

/* ---- start-up ---------------------------------------------------------------------- */

/* The config the previous image validated (reexec.h), else the file. */
static struct config *initial_config(const char *path, const struct reexec_state *from)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;

	if (from->config_text)
		cfg = config_load_buffer(path, from->config_text, from->config_len, &errs);
	if (!cfg) {
		config_errors_fini(&errs);
		cfg = config_load_file(path, &errs);
	}
	for (size_t i = 0; i < errs.n; i++)
		log_warn("%s", errs.msgs[i]);
	config_errors_fini(&errs);
	return cfg;
}

static int identity(struct master *m, const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n < 0) {
		log_errno("readlink /proc/self/exe");
		return -1;
	}
	buf[n] = '\0';
	m->exe = strdup(buf);
	if (!m->exe || stat(m->exe, &m->exe_st) < 0) {
		log_errno("stat %s", buf);
		return -1;
	}
	/* Absolute, but symlinks left alone: a ConfigMap's file is a link through
	 * ..data, which is swapped on update; resolving it would pin the old version. */
	if (access(path, R_OK) < 0) {
		log_errno("%s", path);
		return -1;
	}
	if (path[0] == '/')
		m->path = strdup(path);
	else if (getcwd(buf, sizeof buf) && asprintf(&m->path, "%s/%s", buf, path) < 0)
		m->path = NULL;
	if (!m->path)
		log_errno("%s: cannot make the path absolute", path);
	return m->path ? 0 : -1;
}

/* chdir: relative to the file's directory, which is also the default. */
static int open_log_and_cwd(struct master *m)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof dir, "%s", m->path);
	if (chdir(dirname(dir)) < 0) {
		log_errno("chdir %s", dir);
		return -1;
	}
	if (m->cfg->cwd && chdir(m->cfg->cwd) < 0) {
		log_errno("chdir %s (from %s)", m->cfg->cwd, dir);
		return -1;
	}
	logfile_open(m); /* a file that cannot be opened is retried, never fatal */
	return 0;
}

static void emperor_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct master *m = container_of(w, struct master, emperor_io);
	char buf[512];
	ssize_t n = recv(m->emperor_fd, buf, sizeof buf, MSG_DONTWAIT);

	(void)loop, (void)revents;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) { /* the emperor commands with signals; this channel only asks to reopen logs */
		buf[n < (ssize_t)sizeof buf ? n : (ssize_t)sizeof buf - 1] = '\0';
		if (notify_has(buf, "REOPEN_LOGS=1")) {
			logfile_reopen(m);
			if (notify_fd(m->emperor_fd, "X_LOGS_REOPENED=1") < 0 && errno != EPIPE)
				log_errno("emperor channel: send");
		}
		return;
	}
	ev_io_stop(m->loop, w);
	close(m->emperor_fd);
	m->emperor_fd = -1;
	log_warn("lost the emperor (%s on EMPEROR_FD)", n == 0 ? "EOF" : strerror(errno));
	reload_stop(m, "the emperor is gone");
}

static int emperor_channel(struct master *m)
{
	const char *s = getenv("EMPEROR_FD");

	m->emperor_fd = -1;
	if (!s)
		return 0;
	m->emperor_fd = atoi(s);
	if (m->emperor_fd < 3 || fd_set_cloexec(m->emperor_fd, 1) < 0 ||
	    fd_set_nonblock(m->emperor_fd, 1) < 0) {
		log_errno("EMPEROR_FD=%s", s);
		return -1;
	}
	ev_io_init(&m->emperor_io, emperor_readable, m->emperor_fd, EV_READ);
	ev_io_start(m->loop, &m->emperor_io);
	return 0;
}

/* ---- signals, status, touch, heartbeat --------------------------------------------- */

static void status_dump(struct master *m)
{
	static const char *const states[] = { "starting", "running", "reloading", "stopping" };
	struct child *c;

	log_info("status: %s, generation %u, %zu sockets, %d workers ready of %d",
		 states[m->state], m->generation, m->socks.n, workers_ready_count(m),
		 scale_target(m));
	TAILQ_FOREACH(c, &m->children.children, link)
		signals_status_line(c->name, child_state_name(c->state), c);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct master *m = w->data;

	(void)loop, (void)revents;
	switch (w->signum) {
	case SIGHUP: reload_request(m, "SIGHUP", RELOAD_AS_CONFIGURED); break;
	case SIGUSR2: reload_request(m, "SIGUSR2", RELOAD_CHAIN); break;
	case SIGTERM: reload_stop(m, "SIGTERM"); break;
	case SIGINT: reload_brutal_stop(m, "SIGINT"); break;
	case SIGQUIT: reload_brutal_stop(m, "SIGQUIT"); break;
	case SIGUSR1: status_dump(m); break;
	}
}

static void master_signals_start(struct master *m)
{
	const struct signals_entry table[] = {
		{ SIGHUP, &m->sig_hup }, { SIGTERM, &m->sig_term }, { SIGINT, &m->sig_int },
		{ SIGQUIT, &m->sig_quit }, { SIGUSR1, &m->sig_usr1 }, { SIGUSR2, &m->sig_usr2 },
	};

	signals_start(m->loop, table, ARRAY_LEN(table), on_signal, m);
}

static void touched(struct watch *w, const char *path)
{
	char why[PATH_MAX + 16];

	snprintf(why, sizeof why, "touched %s", path);
	reload_request(w->data, why, RELOAD_AS_CONFIGURED);
}

static void heartbeat_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct master *m = container_of(w, struct master, heartbeat);

	(void)loop, (void)revents;
	if (m->emperor_fd >= 0)
		if (notify_fd(m->emperor_fd, "WATCHDOG=1") < 0 && errno != EPIPE)
			log_errno("emperor channel: send");
}

/* Sockets are bound (a privileged port is fine); now the vassal's own identity. */
static int become_owner(struct master *m)
{
	struct privs p;
	char why[160];

	if (m->cfg->umask >= 0)
		umask((mode_t)m->cfg->umask);
	if (privs_resolve(m->cfg->user, m->cfg->group, &p, why, sizeof why) < 0 ||
	    privs_drop(&p, why, sizeof why) < 0) {
		log_warn("%s: %s", m->path, why);
		return -1;
	}
	if (p.set)
		log_info("running as uid %d gid %d%s%s", (int)getuid(), (int)getgid(),
			 p.user[0] ? " user " : "", p.user);
	return 0;
}

static void limit_failed(const char *what, void *rep)
{
	child_warn(rep, what);
}

/* In every child, before its exec: the vassal's limits (a failure is a warning the
 * master logs; the child goes on). */
static void child_limits(void *arg, const struct child_report *rep)
{
	struct master *m = arg;

	privs_limits(&m->cfg->limits, limit_failed, (void *)rep);
}

static bool hook_tearing_down(const struct master *m)
{
	return reload_tearing_down(m);
}

static int master_setup(struct master *m, const struct reexec_state *from)
{
	const struct reload_hooks hooks = { .notify = notify_hook, .stopped = stopped, .arg = m };

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_errno("prctl(PR_SET_CHILD_SUBREAPER)");
	m->generation = from->generation;
	if (reload_init(m, from, &hooks) < 0 || vsock_setup(&m->socks, m->cfg) < 0 ||
	    become_owner(m) < 0)
		return -1;
	m->child_hooks = (struct master_child_hooks){ .tearing_down = hook_tearing_down,
						      .gone = reload_child_gone };
	child_set_init(&m->children, m->loop);
	m->children.in_child = child_limits;
	m->children.in_child_arg = m;
	/* Orphans of the previous image's workers (we are their subreaper) may have died
	 * just before or during the exec, their SIGCHLD lost with the old image: reap
	 * them on the first loop iteration (libev's SIGCHLD handler waits for any pid). */
	ev_feed_signal_event(m->loop, SIGCHLD);
	if (notify_server_open(&m->notify, m->loop, m->cfg->name, workers_notify, m) < 0 ||
	    emperor_channel(m) < 0 || mules_open(m) < 0)
		return -1;
	master_signals_start(m);
	status_open(m); /* without it the vassal still runs; the error is logged */
	if (idle_start(m) < 0)
		return -1;
	if (watch_open(&m->touch, m->loop, m->cfg->touch_reload, touched, m) < 0)
		return -1;
	if (m->cfg->heartbeat > 0) {
		ev_timer_init(&m->heartbeat, heartbeat_due, 0, m->cfg->heartbeat / 3);
		ev_timer_start(m->loop, &m->heartbeat);
	}
	return 0;
}

/* Before any child: the identity and the config are ours to release (sockets and
 * watchers go with the exit). */
static int not_started(struct master *m, struct reexec_state *from, int status)
{
	reexec_state_fini(from);
	mules_free(m);
	config_free(m->cfg);
	free(m->exe);
	free(m->path);
	return status;
}

/* One kind that could not start (all or some of its children) does not keep the
 * others from starting. */
static void start_kind(const char *kind, int rc)
{
	if (rc < 0)
		log_warn("%s: not every one could be started (see above); the other children "
			 "start anyway", kind);
}

static void start_children(struct master *m, const struct reexec_state *from)
{
	workers_fill(m);
	start_kind("mules", mules_start(m));
	start_kind("spooler", spooler_start(m));
	start_kind("daemons", daemons_start(m, from->daemons));
	start_kind("gateways", gateways_start(m));
	start_kind("nested emperor", nested_start(m));
	start_kind("crons", cron_start(m));
	start_kind("legions", legion_start(m));
	subscriptions_start(m);
}

static bool debug_wanted(void)
{
	const char *s = getenv("EMPEROR_DEBUG");

	return s && *s && strcmp(s, "0") != 0;
}

int master_main(const char *path)
{
	struct master m = { .emperor_fd = -1, .reported_ready = -1 };
	struct reexec_state from;
	char ident[64];

	log_set_debug(debug_wanted());
	reexec_restore(&from); /* first: no child may inherit the handover */
	m.loop = ev_default_loop(EVFLAG_AUTO);
	if (!m.loop || identity(&m, path) < 0)
		return not_started(&m, &from, 1);
	m.cfg = initial_config(m.path, &from);
	if (!m.cfg) {
		log_warn("%s: invalid config, not starting (exit %d)", m.path, MASTER_EX_CONFIG);
		return not_started(&m, &from, MASTER_EX_CONFIG);
	}
	snprintf(ident, sizeof ident, "vassal %s", m.cfg->name);
	log_init(ident);
	if (m.cfg->log.format == CFG_LOG_JSON) /* log.format: its own lines too */
		log_set_format(LOG_FORMAT_JSON);
	if (open_log_and_cwd(&m) < 0 || master_setup(&m, &from) < 0)
		return not_started(&m, &from, 1);
	log_info("master started (generation %u, %zu sockets)", m.generation, m.socks.n);
	scale_start(&m, from.workers_target);
	start_children(&m, &from);
	reexec_state_fini(&from);
	reload_workers_ready(&m);
	legion_readiness(&m);
	ev_run(m.loop, 0);
	return 1;
}
