/* daemons.c — attached daemons: external programs whose life is tied to the vassal.
 * Started after the workers, respawned with backoff. With `pidfile`, a live process
 * named there is adopted instead of starting a second one (it need not be our child:
 * its end is seen through a pidfd), and a program that daemonizes itself is adopted
 * from its pidfile once its launcher exits. `survive-reload: true` keeps a daemon
 * running across graceful reloads: its pid is handed to the next image in
 * VASSAL_DAEMONS. `touch: [paths]` restarts it when one of them changes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "procs.h"
#include "util.h"

static pid_t pid_from_file(const char *path)
{
	FILE *f = fopen(path, "re");
	long pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

/* The pid the previous image handed over for this daemon, if alive. */
static pid_t handed_over(const char *name)
{
	const char *list = getenv("VASSAL_DAEMONS");
	size_t n = strlen(name);

	for (const char *p = list; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			pid_t pid = (pid_t)atoi(p + n + 1);
			return pid > 1 && kill(pid, 0) == 0 ? pid : 0;
		}
	return 0;
}

static int daemon_start(struct proc *p)
{
	const struct cfg_daemon *dc = &p->m->cfg->daemons[p->index];
	pid_t pid = handed_over(dc->name);
	int rc;

	p->child.stop_signal = dc->prog.stop_signal;
	p->child.mercy = dc->prog.reload_mercy;
	if (pid) {
		child_adopt(&p->child, pid, ev_now(p->m->loop));
		log_info("%s (pid %d) kept across the reload", p->child.name, (int)pid);
		return 0;
	}
	if (dc->pidfile && (pid = pid_from_file(dc->pidfile)) != 0) {
		if (child_adopt_foreign(&p->child, pid) == 0) {
			log_info("%s: adopted pid %d from %s", p->child.name, (int)pid, dc->pidfile);
			return 0;
		}
		log_errno("%s: pidfd_open(%d) from %s", p->child.name, (int)pid, dc->pidfile);
	}
	rc = procs_spawn_program(p, &dc->prog, NULL, NULL, 0, NULL);
	if (rc == 0)
		child_set_ready(&p->child);
	return rc;
}

static void daemon_touched(struct watch *w, const char *path)
{
	struct proc *p = w->data;

	if (!child_running(&p->child) || p->child.state == CHILD_CURSED)
		return;
	log_info("%s: %s touched: restarting it", p->child.name, path);
	child_curse(&p->child, p->child.stop_signal, p->child.mercy);
}

int daemons_start(struct master *m)
{
	for (size_t i = 0; i < m->cfg->n_daemons; i++) {
		const struct cfg_daemon *dc = &m->cfg->daemons[i];
		char name[80];
		snprintf(name, sizeof name, "daemon %s", dc->name);
		struct proc *p = procs_new(m, KIND_DAEMON, name, i, 1, daemon_start);
		if (!p)
			return -1;
		p->child.keep_on_reload = dc->survive_reload;
		/* A daemonizing program's launcher exits at once: its daemon must live on. */
		p->child.kill_group_on_exit = !dc->pidfile;
		if (dc->touch && dc->touch[0] && watch_open(&p->touch, m->loop, dc->touch,
							    daemon_touched, p) < 0)
			log_warn("%s: touch paths not watched", name);
		procs_launch(p);
	}
	unsetenv("VASSAL_DAEMONS");
	return 0;
}

char *daemons_handover(const struct master *m)
{
	size_t cap = 1, used = 0;
	char *out = calloc(1, cap);
	struct child *c;

	TAILQ_FOREACH(c, &m->children.children, link) {
		const struct proc *p = (const struct proc *)c;
		char item[128];
		if (c->kind != KIND_DAEMON || !c->keep_on_reload || !child_running(c) || !out)
			continue;
		int n = snprintf(item, sizeof item, "%s%s=%d", used ? "," : "",
				 m->cfg->daemons[p->index].name, (int)c->pid);
		char *grown = realloc(out, cap + (size_t)n);
		if (!grown)
			break;
		out = grown;
		memcpy(out + used, item, (size_t)n + 1);
		used += (size_t)n;
		cap += (size_t)n;
	}
	return out;
}
