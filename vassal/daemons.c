/* daemons.c — attached daemons: external programs whose life is tied to the vassal.
 * Started after the workers, respawned with backoff. With `pidfile`, a live process
 * named there is adopted instead of starting a second one (it need not be our child:
 * its end is seen through a pidfd), and a program that daemonizes itself is adopted
 * from its pidfile once its launcher exits. `survive-reload: true` keeps a daemon
 * running across graceful reloads: its pid is handed to the next image in
 * VASSAL_DAEMONS (reexec.c carries it; the new image takes it before any child starts). `touch: [paths]` restarts it when one of them changes: the
 * inotify events of one change (a `touch` makes three) are coalesced for
 * TOUCH_SETTLE seconds into one restart. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemons.h"

#include "log.h"
#include "procs.h"
#include "util.h"

#define TOUCH_SETTLE 0.05

/* A process that exists (perhaps another user's: EPERM) and is not a zombie. */
static bool pid_alive(pid_t pid)
{
	char buf[512];
	const char *st;

	if (pid <= 1 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	st = proc_stat_fields((int)pid, buf, sizeof buf);
	return !st || st[0] != 'Z'; /* no /proc: trust kill() */
}

static pid_t pid_from_file(const char *path)
{
	FILE *f = fopen(path, "re");
	long pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	return pid > 1 && pid_alive((pid_t)pid) ? (pid_t)pid : 0;
}

static bool is_our_child(pid_t pid)
{
	siginfo_t si;

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* The pid the previous image handed over for this daemon ("name=pid,..."), if alive. */
static pid_t handed_over(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			pid_t pid = (pid_t)atoi(p + n + 1);
			return pid_alive(pid) ? pid : 0;
		}
	return 0;
}

/* Our child (we started it) is reaped as usual; a process adopted from a pidfile is
 * not, and is watched through a pidfd again. */
static int keep_handed_over(struct proc *p, pid_t pid)
{
	const struct cfg_daemon *dc = &p->m->cfg->daemons[p->index];

	p->child.stop_signal = dc->prog.stop_signal;
	p->child.mercy = dc->prog.reload_mercy;
	if (is_our_child(pid))
		child_adopt(&p->child, pid, ev_now(p->m->loop));
	else if (child_adopt_foreign(&p->child, pid) < 0)
		return -1;
	log_info("%s (pid %d) kept across the reload", p->child.name, (int)pid);
	return 0;
}

static int daemon_start(struct proc *p)
{
	const struct cfg_daemon *dc = &p->m->cfg->daemons[p->index];
	pid_t pid;
	int rc;

	p->child.stop_signal = dc->prog.stop_signal;
	p->child.mercy = dc->prog.reload_mercy;
	if (dc->pidfile && (pid = pid_from_file(dc->pidfile)) != 0) {
		if (child_adopt_foreign(&p->child, pid) == 0) {
			log_info("%s: adopted pid %d from %s", p->child.name, (int)pid, dc->pidfile);
			return 0;
		}
		log_errno("%s: pidfd_open(%d) from %s", p->child.name, (int)pid, dc->pidfile);
	}
	rc = procs_spawn_program(p, &dc->prog, p->extra_env, NULL, 0, NULL);
	if (rc == 0)
		child_set_ready(&p->child);
	return rc;
}

static void touch_settled(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct proc *p = container_of(w, struct proc, touch_settle);

	(void)loop, (void)revents;
	if (!child_running(&p->child) || p->child.state == CHILD_CURSED)
		return;
	log_info("%s: restarting it", p->child.name);
	child_curse(&p->child, p->child.stop_signal, p->child.mercy);
}

static void daemon_touched(struct watch *w, const char *path)
{
	struct proc *p = w->data;

	if (ev_is_active(&p->touch_settle))
		return; /* another event of the same change */
	log_info("%s: %s touched", p->child.name, path);
	ev_timer_set(&p->touch_settle, TOUCH_SETTLE, 0);
	ev_timer_start(p->m->loop, &p->touch_settle);
}

static struct proc *daemon_new(struct master *m, size_t i)
{
	const struct cfg_daemon *dc = &m->cfg->daemons[i];
	char name[80];
	struct proc *p;

	snprintf(name, sizeof name, "daemon %s", dc->name);
	if (!(p = procs_new(m, KIND_DAEMON, name, i, 1, daemon_start))) {
		log_errno("%s: calloc", name);
		return NULL;
	}
	/* A lord-only daemon stops with its lordship, whatever survive-reload says. */
	p->child.keep_on_reload = dc->survive_reload && !dc->legion;
	/* A daemonizing program's launcher exits at once: its daemon must live on. */
	p->child.kill_group_on_exit = !dc->pidfile;
	ev_timer_init(&p->touch_settle, touch_settled, TOUCH_SETTLE, 0);
	if (dc->touch && dc->touch[0] && watch_open(&p->touch, m->loop, dc->touch,
						    daemon_touched, p) < 0)
		log_warn("%s: touch paths not watched", name);
	return p;
}

int daemons_legion_start(struct master *m, const char *legion, char *const *env)
{
	int rc = 0;

	for (size_t i = 0; i < m->cfg->n_daemons; i++) {
		const struct cfg_daemon *dc = &m->cfg->daemons[i];
		struct proc *p;
		if (!dc->legion || strcmp(dc->legion, legion) != 0)
			continue;
		if (!(p = daemon_new(m, i))) {
			rc = -1;
			continue;
		}
		if (env && !(p->extra_env = strv_dup(env)))
			log_errno("%s: LEGION_TOKEN not set", p->child.name);
		if (procs_launch(p) < 0)
			rc = -1;
	}
	return rc;
}

int daemons_legion_stop(struct master *m, const char *legion, double max_mercy,
			void (*retired)(void *arg), void *arg)
{
	struct child *c, *next;
	int running = 0;

	for (c = TAILQ_FIRST(&m->children.children); c; c = next) {
		next = TAILQ_NEXT(c, link);
		struct proc *p = (struct proc *)c;
		const char *l = c->kind == KIND_DAEMON ? m->cfg->daemons[p->index].legion : NULL;
		if (!l || strcmp(l, legion) != 0)
			continue;
		if (!child_running(c)) {
			child_cancel_respawn(c);
			procs_free(p);
			continue;
		}
		if (!p->retire) { /* counted once; asked again, only the mercy shortens */
			p->retire = true;
			p->retired = retired;
			p->retired_arg = arg;
			running++;
		}
		child_curse(c, c->stop_signal, c->mercy < max_mercy ? c->mercy : max_mercy);
	}
	return running;
}

int daemons_start(struct master *m, const char *handover)
{
	int rc = 0;

	for (size_t i = 0; i < m->cfg->n_daemons; i++) {
		const struct cfg_daemon *dc = &m->cfg->daemons[i];
		if (dc->legion)
			continue; /* legion.c starts it while this vassal is lord */
		struct proc *p = daemon_new(m, i);
		if (!p) {
			rc = -1;
			continue;
		}
		pid_t pid = handed_over(handover, dc->name);
		if (pid && keep_handed_over(p, pid) == 0)
			continue;
		if (procs_launch(p) < 0)
			rc = -1;
	}
	return rc;
}

char *daemons_handover(const struct master *m)
{
	char *out = strdup(""), *grown;
	const struct child *c;

	TAILQ_FOREACH(c, &m->children.children, link) {
		const struct proc *p = (const struct proc *)c;
		if (!out || c->kind != KIND_DAEMON || !c->keep_on_reload || !child_running(c))
			continue;
		if (asprintf(&grown, "%s%s%s=%d", out, *out ? "," : "",
			     m->cfg->daemons[p->index].name, (int)c->pid) < 0)
			grown = NULL;
		free(out);
		out = grown;
	}
	if (!out)
		log_errno("survive-reload daemons: cannot list them for the next image");
	return out;
}
