/* cron.c — crons and hook runs (see cron.h). A cron is a struct cron_job with its child
 * embedded, kept for the master's life (its child stays in the set, stopped between
 * runs, so the status shows its last exit); a hook run is a job freed when it exits.
 * One ev_timer, armed at the earliest next tick of all crons; a vassal without crons
 * has none. A tick runs the cron unless its last run still goes (skipped, logged) or
 * it belongs to a legion this vassal is not lord of. Output goes where the master's
 * goes (the vassal's log); a run's exit is logged and kept for the status. */
#include "cron.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cronexpr.h"
#include "legion.h"
#include "log.h"
#include "procs.h"
#include "util.h"

struct cron_job {
	struct child child;         /* first: the child set's entry is the job */
	struct crons *crons;
	bool hook;                  /* a hook run, else a cron: */
	size_t index;               /* m->cfg->crons[index] (the config may be replaced by a
				     * workers or chain reload; the entry is equal) */
	struct cronexpr expr;
	double next_at;             /* ev_now() time of the next tick */
	unsigned runs, skipped;
	void (*done)(void *arg);    /* told when this run has been reaped */
	void *done_arg;
	ev_timer deadline;          /* a hook run: HOOK_TIMEOUT, then cursed */
};

#define HOOK_TIMEOUT 10.0   /* s a hook may run before it is stopped (mercy HOOK_MERCY) */
#define HOOK_MERCY 1.0

#define JCFG(j) (&(j)->crons->m->cfg->crons[(j)->index])

struct crons {
	struct master *m;
	struct cron_job **jobs;     /* one per cfg->crons entry */
	size_t n;
	ev_timer timer;             /* at the earliest next_at; started only with crons */
};

/* ---- one run ------------------------------------------------------------------------- */

static void job_exited(struct child *c, int status)
{
	struct cron_job *j = (struct cron_job *)c;
	struct master *m = j->crons->m;
	void (*done)(void *) = j->done;
	void *arg = j->done_arg;

	procs_log_exit(c, status);
	j->done = NULL;
	if (j->hook) {
		ev_timer_stop(m->loop, &j->deadline);
		child_fini(&j->child);
		free(j);
	}
	if (done)
		done(arg);
	if (m->child_hooks.tearing_down(m))
		m->child_hooks.gone(m);
}

static int job_spawn(struct cron_job *j, const struct cfg_program *prog, char *const *extra)
{
	char **env = procs_env(j->crons->m, prog, extra);
	struct child_exec x = { .argv = prog->argv, .env = env, .cwd = prog->cwd, .out_fd = -1,
				.die_with_parent = true };
	int rc;

	if (!env)
		return -1;
	j->child.stop_signal = prog->stop_signal;
	j->child.mercy = prog->reload_mercy;
	rc = child_spawn(&j->child, &x);
	strv_free(env);
	if (rc == 0) {
		child_set_ready(&j->child);
		log_info("%s started (pid %d)", j->child.name, (int)j->child.pid);
	}
	return rc;
}

static void job_init(struct crons *cs, struct cron_job *j, const char *name)
{
	j->crons = cs;
	child_init(&j->child, &cs->m->children, KIND_CRON, name);
	j->child.on_exit = job_exited;
}

/* A tick of j: run it, unless the last run still goes or we are not the lord. */
static void tick(struct cron_job *j)
{
	const struct cfg_cron *c = JCFG(j);
	int64_t token = 0;
	char tok[48], lname[96];
	char *env[] = { tok, lname, NULL };

	if (c->legion && !legion_is_lord(j->crons->m, c->legion, &token))
		return;
	if (child_running(&j->child)) {
		j->skipped++;
		log_warn("%s: still running (pid %d, for %.1fs) at its next tick; skipped",
			 j->child.name, (int)j->child.pid, child_uptime(&j->child));
		return;
	}
	snprintf(tok, sizeof tok, "LEGION_TOKEN=%lld", (long long)token);
	snprintf(lname, sizeof lname, "LEGION_NAME=%s", c->legion ? c->legion : "");
	j->runs++;
	job_spawn(j, &c->prog, c->legion ? env : NULL);
}

/* ---- the schedule ------------------------------------------------------------------------ */

static double next_tick(const struct cron_job *j, double now)
{
	time_t wall = time(NULL), at;

	if (JCFG(j)->every > 0)
		return j->next_at > 0 && j->next_at + JCFG(j)->every > now ? j->next_at + JCFG(j)->every
									 : now + JCFG(j)->every;
	at = cronexpr_next(&j->expr, wall);
	return at < 0 ? INFINITY : now + (double)(at - wall);
}

static void arm(struct crons *cs)
{
	double now = ev_now(cs->m->loop), first = INFINITY;

	for (size_t i = 0; i < cs->n; i++)
		if (cs->jobs[i]->next_at < first)
			first = cs->jobs[i]->next_at;
	ev_timer_stop(cs->m->loop, &cs->timer);
	if (first == INFINITY)
		return;
	ev_timer_set(&cs->timer, first > now ? first - now : 0, 0);
	ev_timer_start(cs->m->loop, &cs->timer);
}

static void due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct crons *cs = container_of(w, struct crons, timer);
	double now = ev_now(loop);

	(void)revents;
	if (cs->m->child_hooks.tearing_down(cs->m))
		return; /* no new run once the teardown began */
	for (size_t i = 0; i < cs->n; i++) {
		struct cron_job *j = cs->jobs[i];
		if (j->next_at > now + 0.001)
			continue;
		tick(j);
		j->next_at = next_tick(j, now);
	}
	arm(cs);
}

int cron_start(struct master *m)
{
	struct crons *cs = calloc(1, sizeof *cs);
	char why[160];

	if (!cs || (m->cfg->n_crons && !(cs->jobs = calloc(m->cfg->n_crons, sizeof *cs->jobs)))) {
		log_errno("crons: calloc");
		free(cs);
		return -1;
	}
	cs->m = m;
	m->crons = cs;
	ev_timer_init(&cs->timer, due, 0, 0);
	for (size_t i = 0; i < m->cfg->n_crons; i++) {
		const struct cfg_cron *c = &m->cfg->crons[i];
		struct cron_job *j = calloc(1, sizeof *j);
		char name[80];
		if (!j || (c->schedule && cronexpr_parse(c->schedule, &j->expr, why, sizeof why) < 0)) {
			log_warn("cron %s: not scheduled (%s)", c->name, j ? why : "out of memory");
			free(j);
			continue;
		}
		snprintf(name, sizeof name, "cron %s", c->name);
		job_init(cs, j, name);
		j->index = i;
		j->next_at = next_tick(j, ev_now(m->loop));
		cs->jobs[cs->n++] = j;
	}
	if (cs->n)
		log_info("crons: %zu scheduled", cs->n);
	arm(cs);
	return 0;
}

int cron_legion_stop(struct master *m, const char *legion, double max_mercy,
		     void (*done)(void *arg), void *arg)
{
	struct crons *cs = m->crons;
	int running = 0;

	for (size_t i = 0; cs && i < cs->n; i++) {
		struct cron_job *j = cs->jobs[i];
		if (!JCFG(j)->legion || strcmp(JCFG(j)->legion, legion) != 0 || !child_running(&j->child))
			continue;
		if (!j->done) { /* counted once; asked again, only the mercy shortens */
			j->done = done;
			j->done_arg = arg;
			running++;
		}
		child_curse(&j->child, j->child.stop_signal,
			    j->child.mercy < max_mercy ? j->child.mercy : max_mercy);
	}
	return running;
}

static void hook_overdue(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cron_job *j = container_of(w, struct cron_job, deadline);

	(void)loop, (void)revents;
	if (!child_running(&j->child) || j->child.state == CHILD_CURSED)
		return;
	log_warn("%s: still running after %.0fs; stopping it", j->child.name, HOOK_TIMEOUT);
	child_curse(&j->child, SIGTERM, HOOK_MERCY);
}

int cron_run_hook(struct master *m, const char *name, char *const *argv, char *const *env,
		  void (*done)(void *arg), void *arg)
{
	struct cron_job *j = m->crons ? calloc(1, sizeof *j) : NULL;
	const struct cfg_program prog = { .argv = (char **)argv, .stop_signal = SIGTERM,
					  .reload_mercy = 10 };
	char label[96];

	snprintf(label, sizeof label, "hook %s", name);
	if (!j) {
		log_errno("%s: calloc", label);
	} else {
		job_init(m->crons, j, label);
		j->hook = true;
		ev_timer_init(&j->deadline, hook_overdue, HOOK_TIMEOUT, 0);
		if (job_spawn(j, &prog, env) == 0) {
			j->done = done;
			j->done_arg = arg;
			ev_timer_start(m->loop, &j->deadline);
			return 0;
		}
		if (!child_running(&j->child)) {
			child_fini(&j->child);
			free(j);
		} /* else a failed exec: reaped and freed as usual */
	}
	if (done)
		done(arg);
	return -1;
}

void cron_status_text(const struct master *m, struct strbuf *b)
{
	const struct crons *cs = m->crons;
	double now = ev_now(m->loop);
	char how[64];

	for (size_t i = 0; cs && i < cs->n; i++) {
		const struct cron_job *j = cs->jobs[i];
		strbuf_printf(b, "cron %s: %s, next in %.0fs, %u runs, %u skipped", JCFG(j)->name,
			      child_running(&j->child) ? "running" : "idle", j->next_at - now,
			      j->runs, j->skipped);
		if (j->child.last_status >= 0 && j->runs)
			strbuf_printf(b, ", last %s", child_status_text(j->child.last_status, how, sizeof how));
		strbuf_printf(b, "\n");
	}
}
