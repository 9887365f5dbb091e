/* reload.c — the reload state machine of a vassal master; docs/reload.md walks
 * through it. Every reload validates the file first and leaves everything running
 * when it is invalid. Then, by mode:
 *   graceful  teardown (spooler, daemons, gateways, nested emperor, unsubscribe,
 *             workers, mules: each step finished before the next), then re-exec with
 *             the listening sockets, the emperor channel and the validated config;
 *   workers   curse the workers; each is replaced by a new one as it exits;
 *   chain     one worker at a time: the replacement is ready before the old one is
 *             cursed; a replacement not ready in time stops the chain there.
 * A reload asked for while one runs is remembered and runs next; a stop takes over. */
#include "reload.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway.h"
#include "log.h"
#include "procs.h"
#include "util.h"

struct reload {
	enum cfg_reload mode;      /* of the reload in progress */
	bool tearing_down;
	bool brutal;
	size_t step;               /* index into teardown_steps */
	bool step_begun;
	char *next_text;           /* graceful: the validated file, for the new image */
	size_t next_len;
	struct config *old_cfg;    /* chain: restored if the chain fails */
	struct worker *chain_new, *chain_old;
	ev_idle exec_idle;         /* graceful: the re-exec, once caught signals are handled */
};

/* A stop always withdraws the subscriptions; a reload only if asked to. */
static void unsubscribe_all(struct master *m)
{
	subscriptions_stop(m, m->state == MASTER_STOPPING || m->cfg->unsubscribe_on_reload);
}

/* The stop half: DESIGN.md's order. kind < 0: a step without children to wait for. */
static const struct teardown_step {
	const char *name;
	int kind;
	void (*run)(struct master *m);
} teardown_steps[] = {
	{ "spooler", KIND_SPOOLER, NULL },
	{ "daemons", KIND_DAEMON, NULL },
	{ "gateways", KIND_GATEWAY, NULL },
	{ "nested emperor", KIND_EMPEROR, NULL },
	{ "unsubscribe", -1, unsubscribe_all },
	{ "workers", KIND_WORKER, NULL },
	{ "mules", KIND_MULE, NULL },
};

/* A graceful reload leaves survive-reload daemons running; a stop does not. */
static bool spared(const struct master *m, const struct child *c)
{
	return c->keep_on_reload && m->state == MASTER_RELOADING;
}

static int running_to_stop(const struct master *m, int kind)
{
	const struct child *c;
	int n = 0;

	TAILQ_FOREACH(c, &m->children.children, link)
		if (c->kind == kind && child_running(c) && !spared(m, c))
			n++;
	return n;
}

static void curse_kind(struct master *m, int kind)
{
	struct child *c;

	TAILQ_FOREACH(c, &m->children.children, link) {
		if (c->kind != kind || spared(m, c))
			continue;
		if (c->state == CHILD_WAITING)
			child_cancel_respawn(c);
		if (child_running(c))
			child_curse(c, c->stop_signal, c->mercy);
	}
}

static void teardown_advance(struct master *m)
{
	struct reload *r = m->reload;

	while (r->step < ARRAY_LEN(teardown_steps)) {
		const struct teardown_step *s = &teardown_steps[r->step];
		if (!r->step_begun) {
			r->step_begun = true;
			if (s->run)
				s->run(m);
			if (s->kind >= 0 && running_to_stop(m, s->kind) > 0) {
				log_info("teardown: stopping %s", s->name);
				curse_kind(m, s->kind);
			}
		}
		if (s->kind >= 0 && running_to_stop(m, s->kind) > 0)
			return; /* reload_child_gone() brings us back */
		r->step++;
		r->step_begun = false;
	}
	r->tearing_down = false;
	master_teardown_done(m);
}

static void teardown_begin(struct master *m)
{
	struct reload *r = m->reload;

	r->tearing_down = true;
	r->step = 0;
	r->step_begun = false;
	teardown_advance(m);
}

bool reload_tearing_down(const struct master *m)
{
	return m->reload->tearing_down || m->reload->brutal;
}

void reload_child_gone(struct master *m)
{
	struct reload *r = m->reload;

	if (r->brutal) {
		if (child_set_running(&m->children, -1) == 0)
			master_teardown_done(m);
		return;
	}
	if (r->tearing_down)
		teardown_advance(m);
}

/* ---- validation ----------------------------------------------------------------- */

static char *read_text(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	struct stat st;
	char *buf;

	if (fd < 0) {
		log_errno("%s: cannot open", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	buf = fd_read_all(fd, CONFIG_MAX_FILE_SIZE, len);
	if (!buf)
		log_errno("%s: read", path);
	close(fd);
	return buf;
}

static struct config *load_checked(struct master *m, char **text, size_t *len)
{
	struct config_errors errs = { 0 };
	struct config *cfg;

	*text = read_text(m->path, len);
	if (!*text)
		return NULL;
	cfg = config_load_buffer(m->path, *text, *len, &errs);
	for (size_t i = 0; i < errs.n; i++)
		log_warn("%s", errs.msgs[i]);
	config_errors_fini(&errs);
	if (!cfg) {
		free(*text);
		*text = NULL;
	}
	return cfg;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(char *const *a, char *const *b)
{
	size_t n = strv_len(a);

	if (n != strv_len(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool prog_eq(const struct cfg_program *a, const struct cfg_program *b)
{
	return strv_eq(a->argv, b->argv) && strv_eq(a->env, b->env) && str_eq(a->cwd, b->cwd) &&
	       a->stop_signal == b->stop_signal && a->reload_mercy == b->reload_mercy;
}

/* Mules, spooler, daemons, nested emperor: changed ones need a graceful reload. */
static const char *children_change(const struct config *a, const struct config *b)
{
	if (a->n_mules != b->n_mules)
		return "mules";
	for (size_t i = 0; i < a->n_mules; i++)
		if (strcmp(a->mules[i].name, b->mules[i].name) || a->mules[i].count != b->mules[i].count ||
		    !prog_eq(&a->mules[i].prog, &b->mules[i].prog))
			return "mules";
	if (a->has_spooler != b->has_spooler ||
	    (a->has_spooler && (!str_eq(a->spooler.dir, b->spooler.dir) ||
				!prog_eq(&a->spooler.prog, &b->spooler.prog) ||
				a->spooler.processes != b->spooler.processes)))
		return "spooler";
	if (a->n_daemons != b->n_daemons)
		return "daemons";
	for (size_t i = 0; i < a->n_daemons; i++)
		if (strcmp(a->daemons[i].name, b->daemons[i].name) ||
		    !prog_eq(&a->daemons[i].prog, &b->daemons[i].prog) ||
		    !str_eq(a->daemons[i].pidfile, b->daemons[i].pidfile))
			return "daemons";
	if (a->has_emperor != b->has_emperor ||
	    (a->has_emperor && (!str_eq(a->emperor.dir, b->emperor.dir) ||
				!strv_eq(a->emperor.args, b->emperor.args))))
		return "nested emperor";
	if (a->n_gateways != b->n_gateways || a->n_subscribe != b->n_subscribe)
		return "gateways/subscriptions";
	return NULL;
}

/* What in next only a new master image can apply, or NULL. */
static const char *master_change(const struct master *m, const struct config *next)
{
	const struct config *cur = m->cfg;
	struct stat st;

	if (cur->n_sockets != next->n_sockets)
		return "sockets";
	for (size_t i = 0; i < cur->n_sockets; i++) {
		const struct cfg_socket *a = &cur->sockets[i], *b = &next->sockets[i];
		if (!str_eq(a->name, b->name) || strcmp(a->addr.text, b->addr.text) ||
		    a->backlog != b->backlog || a->mode != b->mode ||
		    !str_eq(a->owner, b->owner) || !str_eq(a->group, b->group))
			return "sockets";
	}
	if (!str_eq(cur->user, next->user) || !str_eq(cur->group, next->group))
		return "user/group";
	if (memcmp(&cur->limits, &next->limits, sizeof cur->limits) != 0)
		return "limits";
	if (!str_eq(cur->log, next->log) || !str_eq(cur->cwd, next->cwd))
		return "log/chdir";
	const char *kids = children_change(cur, next);
	if (kids)
		return kids;
	if (stat(m->exe, &st) == 0 &&
	    (st.st_ino != m->exe_st.st_ino || st.st_mtim.tv_sec != m->exe_st.st_mtim.tv_sec ||
	     st.st_mtim.tv_nsec != m->exe_st.st_mtim.tv_nsec))
		return "the vassal binary";
	return NULL;
}

/* ---- the three modes -------------------------------------------------------------- */

static void chain_next(struct master *m)
{
	struct reload *r = m->reload;
	struct worker *old;

	while ((old = workers_oldest(m)) && old->id > m->cfg->workers.count) {
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
	r->chain_new = workers_spawn(m, old->id);
	log_info("chain: replacing worker %d (pid %d)", old->id, (int)old->child.pid);
}

static void swap_config(struct master *m, struct config *next, bool keep_old)
{
	struct reload *r = m->reload;

	if (keep_old)
		r->old_cfg = m->cfg;
	else
		config_free(m->cfg);
	m->cfg = next;
	m->generation++;
}

static void reload_begin(struct master *m, const char *why, enum cfg_reload mode,
			 struct config *next, char *text, size_t len)
{
	static const char *const mode_names[] = { "graceful", "workers", "chain" };
	struct reload *r = m->reload;

	r->mode = mode;
	m->state = MASTER_RELOADING;
	m->reload_started = mono_now();
	master_notify(m, "RELOADING=1\nSTATUS=reloading");
	log_info("reloading (%s): %s reload of generation %u", why, mode_names[mode], m->generation);
	if (mode == CFG_RELOAD_GRACEFUL) {
		config_free(next);
		r->next_text = text;
		r->next_len = len;
		teardown_begin(m);
		return;
	}
	free(text);
	swap_config(m, next, mode == CFG_RELOAD_CHAIN);
	if (mode == CFG_RELOAD_CHAIN)
		chain_next(m);
	else
		workers_replace_all(m);
	reload_workers_ready(m);
}

void reload_request(struct master *m, const char *why, enum reload_how how)
{
	struct config *next;
	enum cfg_reload mode;
	const char *change;
	char *text;
	size_t len;

	if (m->state == MASTER_STOPPING) {
		log_warn("reload (%s) refused: stopping", why);
		return;
	}
	if (m->state != MASTER_RUNNING) {
		if (!m->reload_pending)
			log_info("reload (%s) queued: it runs when the current %s ends", why,
				 m->state == MASTER_STARTING ? "start" : "reload");
		m->reload_pending = true;
		return;
	}
	next = load_checked(m, &text, &len);
	if (!next) {
		log_warn("reload (%s) aborted: %s is invalid; generation %u keeps running", why,
			 m->path, m->generation);
		/* Still ready: whoever asked (the emperor's reload queue) may move on. */
		master_notify(m, "READY=1\nSTATUS=reload aborted: invalid config");
		return;
	}
	mode = how == RELOAD_CHAIN ? CFG_RELOAD_CHAIN : next->reload;
	if (mode != CFG_RELOAD_GRACEFUL && (change = master_change(m, next))) {
		log_info("reload (%s): %s changed, which needs a graceful reload", why, change);
		mode = CFG_RELOAD_GRACEFUL;
	}
	reload_begin(m, why, mode, next, text, len);
}

void reload_worker_ready(struct master *m, struct worker *w)
{
	struct reload *r = m->reload;

	if (m->state != MASTER_RELOADING || r->mode != CFG_RELOAD_CHAIN || w != r->chain_new)
		return;
	r->chain_old->retire = true;
	child_curse(&r->chain_old->child, r->chain_old->child.stop_signal, r->chain_old->child.mercy);
	chain_next(m);
}

/* A reload was asked for while one ran: it runs now, on the file as it is now. */
static void run_pending(struct master *m)
{
	if (!m->reload_pending)
		return;
	m->reload_pending = false;
	reload_request(m, "queued request", RELOAD_AS_CONFIGURED);
}

void reload_worker_failed(struct master *m, struct worker *w, const char *why)
{
	struct reload *r = m->reload;

	if (m->state != MASTER_RELOADING || r->mode != CFG_RELOAD_CHAIN || w != r->chain_new)
		return;
	log_warn("chain reload failed: the new worker %d %s; "
		 "the old workers keep serving with the previous config", w->id, why);
	w->retire = true;
	r->chain_new = r->chain_old = NULL;
	config_free(m->cfg);
	m->cfg = r->old_cfg;
	r->old_cfg = NULL;
	workers_adopt_all(m);
	m->state = MASTER_RUNNING;
	master_notify(m, "READY=1\nSTATUS=chain reload failed");
	run_pending(m);
}

/* How the start or reload ended: every worker ready, or some of them failing. */
static void log_settled(const struct master *m)
{
	bool was_reload = getenv("VASSAL_RELOAD_STARTED") || m->state == MASTER_RELOADING;
	double ms = (mono_now() - m->reload_started) * 1000;

	if (workers_all_ready(m) && !was_reload)
		log_info("ready: %d workers, generation %u", workers_ready_count(m), m->generation);
	else if (workers_all_ready(m))
		log_info("reload complete: generation %u ready in %.0f ms", m->generation, ms);
	else
		log_warn("%s: generation %u runs with %d of %d workers ready; the others keep "
			 "failing and are respawned with backoff", was_reload ? "reload ended" :
			 "start ended", m->generation, workers_ready_count(m), m->cfg->workers.count);
}

void reload_workers_ready(struct master *m)
{
	struct reload *r = m->reload;

	if (r->chain_new || r->tearing_down || r->brutal || !workers_settled(m))
		return;
	if (m->state != MASTER_STARTING && m->state != MASTER_RELOADING)
		return;
	log_settled(m);
	unsetenv("VASSAL_RELOAD_STARTED");
	config_free(r->old_cfg);
	r->old_cfg = NULL;
	m->state = MASTER_RUNNING;
	master_notify(m, workers_all_ready(m) ? "READY=1\nSTATUS=ready"
					      : "READY=1\nSTATUS=degraded: some workers keep failing");
	run_pending(m);
}

/* ---- stops -------------------------------------------------------------------------- */

void reload_stop(struct master *m, const char *why)
{
	struct reload *r = m->reload;

	if (m->state == MASTER_STOPPING) {
		log_info("stop (%s): already stopping", why);
		return;
	}
	log_info("stopping gracefully (%s)%s", why,
		 m->state == MASTER_RELOADING ? ": the stop takes over the reload" : "");
	m->state = MASTER_STOPPING;
	m->reload_pending = false;
	r->chain_new = r->chain_old = NULL;
	master_notify(m, "STOPPING=1\nSTATUS=stopping");
	if (!r->tearing_down)
		teardown_begin(m);
}

void reload_brutal_stop(struct master *m, const char *why)
{
	struct reload *r = m->reload;
	struct child *c;

	log_warn("stopping now (%s): SIGKILL to every child's process group", why);
	m->state = MASTER_STOPPING;
	r->brutal = true;
	r->tearing_down = false;
	master_notify(m, "STOPPING=1\nSTATUS=stopping");
	TAILQ_FOREACH(c, &m->children.children, link) {
		child_cancel_respawn(c);
		child_kill(c);
	}
	reload_child_gone(m);
}

/* ---- the start half: re-exec --------------------------------------------------------- */

static int config_memfd(const char *text, size_t len)
{
	int fd = memfd_create("vassal-config", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fd_write_all(fd, text, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Puts fds[i] at 3 + i, without close-on-exec. */
static int place_for_exec(int *fds, int n)
{
	int tmp[300];

	if (n > (int)ARRAY_LEN(tmp))
		return -1;
	for (int i = 0; i < n; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + n)) < 0)
			return -1;
	for (int i = 0; i < n; i++) {
		if (dup2(tmp[i], 3 + i) < 0)
			return -1;
		close(tmp[i]);
	}
	return 0;
}

static void setenv_int(const char *key, long long v)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%lld", v);
	setenv(key, buf, 1);
}

static _Noreturn void exec_image(struct master *m)
{
	struct reload *r = m->reload;
	int fds[300], n = (int)m->socks.n, cfg_fd = -1;
	char names[1024], started[32];
	char *argv[] = { m->exe, m->path, NULL };

	vsock_all_fds(&m->socks, fds, names, sizeof names);
	if (m->emperor_fd >= 0)
		fds[n++] = m->emperor_fd;
	if (r->next_text && (cfg_fd = config_memfd(r->next_text, r->next_len)) >= 0)
		fds[n++] = cfg_fd;
	if (place_for_exec(fds, n) < 0)
		log_fatal("reload: cannot hand the sockets to the new image: %s", strerror(errno));
	setenv_int("LISTEN_FDS", (long long)m->socks.n);
	setenv_int("LISTEN_PID", getpid());
	setenv("LISTEN_FDNAMES", names, 1);
	if (m->emperor_fd >= 0)
		setenv_int("EMPEROR_FD", 3 + (long long)m->socks.n);
	if (cfg_fd >= 0)
		setenv_int("VASSAL_CONFIG_FD", 3 + n - 1);
	setenv_int("VASSAL_GENERATION", (long long)m->generation + 1);
	snprintf(started, sizeof started, "%.6f", m->reload_started);
	setenv("VASSAL_RELOAD_STARTED", started, 1);
	setenv("VASSAL_RELOAD_PENDING", m->reload_pending ? "1" : "0", 1);
	char *daemons = daemons_handover(m);
	if (daemons && *daemons)
		setenv("VASSAL_DAEMONS", daemons, 1);
	free(daemons);
	log_info("reload: re-exec %s (generation %u -> %u, %zu sockets kept open)", m->exe,
		 m->generation, m->generation + 1, m->socks.n);
	execv(m->exe, argv);
	log_fatal("reload: execv %s: %s", m->exe, strerror(errno));
}

/* An idle watcher runs only when nothing else is pending: every signal caught before
 * the block has been dispatched by then. */
static void exec_when_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct master *m = w->data;

	(void)revents;
	ev_idle_stop(loop, w);
	if (m->state != MASTER_STOPPING)
		exec_image(m);
}

void reload_reexec(struct master *m)
{
	struct reload *r = m->reload;
	sigset_t block;

	/* From now on a signal waits, pending, for the new image's handlers. One that
	 * libev caught already (a SIGTERM right after the SIGHUP) is dispatched by the
	 * next loop iteration, which exec'ing now would lose. */
	sigemptyset(&block);
	for (int sig = 1; sig < SIGRTMIN; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD)
			sigaddset(&block, sig);
	sigprocmask(SIG_BLOCK, &block, NULL);
	ev_idle_init(&r->exec_idle, exec_when_idle);
	r->exec_idle.data = m;
	ev_set_priority(&r->exec_idle, EV_MINPRI);
	ev_idle_start(m->loop, &r->exec_idle);
}

int reload_init(struct master *m)
{
	m->reload = calloc(1, sizeof *m->reload);
	return m->reload ? 0 : -1;
}
