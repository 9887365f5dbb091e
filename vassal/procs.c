/* procs.c — the policy shared by mules, spooler processes, attached daemons, routers
 * and the nested emperor (see procs.h): environment, spawn of an exec'd program, and
 * what an exit means. It names no kind and no upper module: the master's teardown is
 * asked through m->child_hooks. Workers have their own policy (workers.c): readiness
 * and sockets; they share the exit line and the respawn with backoff from here. */
#include "procs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mules.h"
#include "util.h"

char **procs_env(const struct master *m, const struct cfg_program *prog, char *const *extra)
{
	char *const empty[] = { NULL };
	char **env = env_for_child(m->cfg->clear_env ? empty : NULL, prog ? prog->env : NULL);
	char **farms = mules_env(m);

	if (!farms) {
		strv_free(env);
		env = NULL;
	}
	for (size_t i = 0; env && farms && farms[i]; i++) {
		char *eq = strchr(farms[i], '=');
		*eq = '\0';
		env = env_set(env, farms[i], eq + 1);
		*eq = '=';
	}
	strv_free(farms);
	env = env ? env_set(env, "VASSAL_NAME", m->cfg->name) : NULL;
	for (size_t i = 0; env && extra && extra[i]; i++) {
		char *kv = strdup(extra[i]), *eq = kv ? strchr(kv, '=') : NULL;
		if (!kv) {
			strv_free(env);
			env = NULL;
		} else if (eq) {
			*eq = '\0';
			env = env_set(env, kv, eq + 1);
		}
		free(kv);
	}
	if (!env)
		log_errno("%s: cannot build the environment", m->cfg->name);
	return env;
}

int procs_spawn_program(struct proc *p, const struct cfg_program *prog, char *const *extra_env,
			const int *fds, int n_fds, const char *fdnames)
{
	char **env = procs_env(p->m, prog, extra_env);
	struct child_exec x = {
		.argv = prog->argv, .env = env, .cwd = prog->cwd, .fds = fds, .n_fds = n_fds,
		.fdnames = fdnames, .out_fd = -1, .die_with_parent = true,
	};
	int rc;

	if (!env)
		return -1;
	p->child.stop_signal = prog->stop_signal;
	p->child.mercy = prog->reload_mercy;
	rc = child_spawn(&p->child, &x);
	strv_free(env);
	if (rc == 0)
		log_info("%s started (pid %d)", p->child.name, (int)p->child.pid);
	return rc;
}

void procs_free(struct proc *p)
{
	strv_free(p->extra_env);
	watch_close(&p->touch);
	ev_timer_stop(p->m->loop, &p->touch_settle);
	child_fini(&p->child);
	free(p);
}

int procs_launch(struct proc *p)
{
	if (p->start(p) == 0)
		return 0;
	if (!child_running(&p->child))
		child_schedule_respawn(&p->child);
	return -1;
}

void procs_log_exit(const struct child *c, int status)
{
	char how[64];

	if (!c->exec_errno) /* a failed exec was logged by child_spawn() */
		log_info("%s (pid %d) %s after %.2fs%s", c->name, (int)c->child_watcher.rpid,
			 child_status_text(status, how, sizeof how), c->last_uptime,
			 c->asked_to_stop ? "" : ", unasked");
}

void procs_respawn_later(struct child *c)
{
	double delay = child_next_backoff(c);

	if (delay > 0)
		log_warn("%s died young (ran %.2fs): respawn in %.2fs", c->name, c->last_uptime, delay);
	child_schedule_respawn(c);
}

static void proc_exited(struct child *c, int status)
{
	struct proc *p = (struct proc *)c;
	struct master *m = p->m;

	procs_log_exit(c, status);
	if (m->child_hooks.tearing_down(m) || p->retire) {
		bool tearing_down = m->child_hooks.tearing_down(m);
		void (*retired)(void *) = p->retired;
		void *arg = p->retired_arg;
		procs_free(p);
		if (retired)
			retired(arg);
		if (tearing_down)
			m->child_hooks.gone(m);
		return;
	}
	if (c->asked_to_stop) {
		procs_launch(p); /* stopped on purpose (a touch): start again at once */
		return;
	}
	procs_respawn_later(c);
}

static void proc_respawn_due(struct child *c)
{
	struct proc *p = (struct proc *)c;

	if (p->m->child_hooks.tearing_down(p->m)) {
		p->m->child_hooks.gone(p->m);
		return;
	}
	if (p->retire) {
		void (*retired)(void *) = p->retired;
		void *arg = p->retired_arg;
		procs_free(p);
		if (retired)
			retired(arg);
		return;
	}
	procs_launch(p);
}

struct proc *procs_new(struct master *m, int kind, const char *name, size_t index,
		       int instance, proc_start_fn *start)
{
	struct proc *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	child_init(&p->child, &m->children, kind, name);
	p->m = m;
	p->index = index;
	p->instance = instance;
	p->start = start;
	p->touch.fd = -1;
	p->child.on_exit = proc_exited;
	p->child.on_respawn = proc_respawn_due;
	return p;
}
