/* procs.c — the policy shared by mules, spooler processes, attached daemons and the
 * nested emperor (see procs.h): environment, spawn of an exec'd program, and what an
 * exit means. Workers have their own policy (workers.c): readiness and sockets. */
#include "procs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log.h"
#include "reload.h"
#include "util.h"

char **procs_env(const struct master *m, const struct cfg_program *prog, char *const *extra)
{
	char *const empty[] = { NULL };
	char **env = env_for_child(m->cfg->clear_env ? empty : NULL, prog ? prog->env : NULL);
	char **farms = mules_env(m);

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
		if (eq) {
			*eq = '\0';
			env = env_set(env, kv, eq + 1);
		}
		free(kv);
	}
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
	watch_close(&p->touch);
	ev_timer_stop(p->m->loop, &p->touch_settle);
	child_fini(&p->child);
	free(p);
}

void procs_launch(struct proc *p)
{
	if (p->start(p) < 0 && !child_running(&p->child))
		child_schedule_respawn(&p->child);
}

static void proc_exited(struct child *c, int status)
{
	struct proc *p = (struct proc *)c;
	struct master *m = p->m;
	char how[64];

	if (!c->exec_errno)
		log_info("%s (pid %d) %s after %.2fs%s", c->name, (int)c->child_watcher.rpid,
			 child_status_text(status, how, sizeof how), c->last_uptime,
			 c->asked_to_stop ? "" : ", unasked");
	if (m->state == MASTER_STOPPING || reload_tearing_down(m)) {
		procs_free(p);
		reload_child_gone(m);
		return;
	}
	if (c->asked_to_stop) {
		procs_launch(p); /* stopped on purpose (a touch): start again at once */
		return;
	}
	double delay = child_next_backoff(c);
	if (delay > 0)
		log_warn("%s died young (ran %.2fs): respawn in %.2fs", c->name, c->last_uptime, delay);
	child_schedule_respawn(c);
}

static void proc_respawn_due(struct child *c)
{
	struct proc *p = (struct proc *)c;

	if (p->m->state == MASTER_STOPPING || reload_tearing_down(p->m)) {
		reload_child_gone(p->m);
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

void procs_start_all(struct master *m)
{
	if (mules_start(m) < 0 || spooler_start(m) < 0 || daemons_start(m) < 0 ||
	    gateways_start(m) < 0 || nested_start(m) < 0)
		log_warn("some children could not be started; see above");
}
