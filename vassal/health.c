/* health.c — the workers' limits (see health.h): one timer per master, armed only
 * while a limit is configured, at the coarsest period the limits allow; each tick
 * checks every ready worker. A recycle reuses the chain reload's steps (workers_spawn
 * of the same id, then retire and curse the old one once the new one is ready), one
 * recycle at a time, only while the master runs (a reload or stop has its own plan
 * for the workers). Counts per reason are kept for status.c. */
#include "health.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "notify.h"
#include "util.h"
#include "workers.h"

#define HEALTH_RSS_PERIOD 1.0  /* seconds between two reads of the workers' RSS */
#define HEALTH_MIN_PERIOD 0.05

struct health {
	struct master *m;
	ev_timer tick;
	double period;             /* of tick; 0 = stopped */
	struct worker *recycling;  /* the replacement of the recycle under way, or NULL */
	ev_tstamp hold_until;      /* a replacement failed: no recycle before then */
	unsigned long counts[HEALTH_N_REASONS];
	unsigned seed;
};

static const char *const reason_names[HEALTH_N_REASONS] = {
	[HEALTH_WATCHDOG] = "watchdog", [HEALTH_MAX_RSS] = "max-rss",
	[HEALTH_MAX_LIFETIME] = "max-lifetime", [HEALTH_STALL] = "stall",
};

const char *health_reason_name(enum health_reason r)
{
	return r < HEALTH_N_REASONS ? reason_names[r] : "?";
}

unsigned long health_count(const struct master *m, enum health_reason r)
{
	return m->health && r < HEALTH_N_REASONS ? m->health->counts[r] : 0;
}

/* ---- pure parts ---------------------------------------------------------------- */

int health_parse_stat(const char *line, pid_t *pgrp, long *rss_pages)
{
	const char *p = strrchr(line, ')');
	long long v[21];
	int n = 0;

	if (!p)
		return -1;
	p++;
	/* after "pid (comm)": state (field 3), then numbers: pgrp is field 5, rss 24 */
	while (*p == ' ')
		p++;
	if (!*p || *p == ' ')
		return -1;
	p++;
	while (n < 21) {
		char *end;
		errno = 0;
		v[n] = strtoll(p, &end, 10);
		if (end == p || errno)
			return -1;
		p = end;
		n++;
	}
	*pgrp = (pid_t)v[1];
	*rss_pages = (long)v[20];
	return 0;
}

double health_lifetime(double lifetime, int id, int count, double r)
{
	double slot;

	if (count < 1)
		count = 1;
	if (id < 1 || id > count)
		id = count;
	slot = ((double)(id - 1) + (r < 0 ? 0 : r > 1 ? 1 : r)) / count; /* 0..1 */
	return lifetime * (0.9 + 0.2 * slot);
}

static double min_set(double a, double b)
{
	return a <= 0 ? b : b <= 0 ? a : a < b ? a : b;
}

double health_period(const struct cfg_workers *cw)
{
	double p = 0;

	if (cw->watchdog > 0)
		p = min_set(p, cw->watchdog / 4);
	if (cw->stall > 0)
		p = min_set(p, cw->stall / 4);
	if (cw->max_lifetime > 0)
		p = min_set(p, cw->max_lifetime / 40);
	if (cw->max_rss > 0)
		p = min_set(p, HEALTH_RSS_PERIOD);
	return p > 0 && p < HEALTH_MIN_PERIOD ? HEALTH_MIN_PERIOD : p;
}

/* ---- the worker's side of the protocol ----------------------------------------- */

size_t health_env(const struct cfg_workers *cw, char **add, char buf[2][48])
{
	size_t n = 0;

	if (cw->watchdog > 0) {
		snprintf(buf[n], sizeof buf[n], "WATCHDOG_USEC=%llu",
			 (unsigned long long)(cw->watchdog * 1e6));
		add[n] = buf[n], n++;
	}
	if (cw->stall > 0) {
		snprintf(buf[n], sizeof buf[n], "VASSAL_STALL_USEC=%llu",
			 (unsigned long long)(cw->stall * 1e6));
		add[n] = buf[n], n++;
	}
	return n;
}

/* ---- the checks ---------------------------------------------------------------- */

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents);

static struct health *health_of(struct master *m)
{
	if (m->health)
		return m->health;
	m->health = calloc(1, sizeof *m->health);
	if (!m->health) {
		log_errno("health: calloc");
		return NULL;
	}
	m->health->m = m;
	m->health->seed = (unsigned)getpid() ^ (unsigned)(ev_now(m->loop) * 1000);
	ev_init(&m->health->tick, tick_cb);
	return m->health;
}

/* The timer follows the config (a chain or workers reload may change it). */
static void health_arm(struct master *m)
{
	double period = m->cfg->has_workers ? health_period(&m->cfg->workers) : 0;
	struct health *h = m->health;

	if (!h && period <= 0)
		return;
	if (!h && !(h = health_of(m)))
		return;
	if (period == h->period)
		return;
	h->period = period;
	ev_timer_stop(m->loop, &h->tick);
	if (period > 0) {
		ev_timer_set(&h->tick, period, period);
		ev_timer_start(m->loop, &h->tick);
	}
}

static void count(struct master *m, enum health_reason r)
{
	m->health->counts[r]++;
}

static bool worker_alive(const struct worker *w)
{
	return w->child.state == CHILD_READY && !w->retire;
}

/* The RSS of each worker's process group, in bytes, into rss[] (by worker order). */
static void group_rss(struct worker **ws, size_t n, long long *rss)
{
	long page = sysconf(_SC_PAGESIZE);
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d) {
		log_errno("health: opendir /proc");
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char path[sizeof e->d_name + 16], line[1024];
		pid_t pgrp;
		long pages;
		ssize_t len;
		int fd;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue; /* gone meanwhile, or not ours to read */
		len = read(fd, line, sizeof line - 1);
		close(fd);
		if (len <= 0)
			continue;
		line[len] = '\0';
		if (health_parse_stat(line, &pgrp, &pages) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (ws[i]->child.pid == pgrp)
				rss[i] += (long long)pages * page;
	}
	closedir(d);
}

/* Starts a replacement for w; cursed once the replacement is ready. */
static void recycle(struct master *m, struct worker *w, enum health_reason r, const char *figure)
{
	struct health *h = m->health;
	struct worker *next;

	if (h->recycling || m->state != MASTER_RUNNING || ev_now(m->loop) < h->hold_until)
		return; /* one at a time; a reload or stop has its own plan */
	log_info("worker %d (pid %d) %s: recycling", w->id, (int)w->child.pid, figure);
	count(m, r);
	next = workers_spawn(m, w->id);
	if (!next)
		return;
	/* It serves until next is ready, but holds its id no more: a crash of it is not
	 * respawned, and a chain or workers reload meanwhile replaces next only. */
	w->retire = true;
	next->health.replaces = w;
	h->recycling = next;
}

/* The replacement exited before it was ready. While the master runs, the recycle
 * failed: the old worker holds its id again. If a reload or stop took over, the
 * replacement holds the id (its exit follows the workers' policy) and the old
 * worker, which no reload will replace, is stopped. */
static void replacement_gone(struct health *h, struct worker *next)
{
	struct master *m = h->m;
	struct worker *old = next->health.replaces;

	next->health.replaces = NULL;
	h->recycling = NULL;
	if (m->state != MASTER_RUNNING) {
		if (old)
			child_curse(&old->child, old->child.stop_signal, old->child.mercy);
		return;
	}
	log_warn("worker %d: its replacement failed; the worker serves on, the next recycle "
		 "in %gs at the earliest", next->id, m->cfg->workers.respawn_max);
	h->hold_until = ev_now(m->loop) + m->cfg->workers.respawn_max;
	next->retire = true;
	if (old)
		old->retire = false;
}

static void check_rss(struct master *m)
{
	struct worker *ws[1024], *w;
	long long rss[1024] = { 0 }, max = m->cfg->workers.max_rss;
	struct child *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &m->children.children, link)
		if (c->kind == KIND_WORKER && worker_alive((w = (struct worker *)c)) && n < 1024)
			ws[n++] = w;
	if (n == 0 || m->health->recycling)
		return;
	group_rss(ws, n, rss);
	for (size_t i = 0; i < n; i++) {
		char figure[128];
		if (rss[i] <= max)
			continue;
		snprintf(figure, sizeof figure, "RSS %lld MiB > max-rss %lld MiB",
			 rss[i] >> 20, max >> 20);
		recycle(m, ws[i], HEALTH_MAX_RSS, figure);
		return;
	}
}

/* Watchdog, stall and lifetime of one ready worker: at most one act. */
static void check_worker(struct master *m, struct worker *w, ev_tstamp now)
{
	const struct cfg_workers *cw = &m->cfg->workers;
	struct worker_health *wh = &w->health;
	char figure[128];

	if (cw->watchdog > 0 && now - wh->last_ping > cw->watchdog) {
		log_warn("worker %d (pid %d) sent no WATCHDOG=1 for %.1fs > watchdog %gs: stopping it",
			 w->id, (int)w->child.pid, now - wh->last_ping, cw->watchdog);
		count(m, HEALTH_WATCHDOG);
		child_curse(&w->child, w->child.stop_signal, w->child.mercy);
		return;
	}
	if (cw->stall > 0 && wh->busy_since > 0 && now - wh->busy_since > cw->stall) {
		log_warn("worker %d (pid %d) busy on one request for %.1fs > stall %gs: killing it",
			 w->id, (int)w->child.pid, now - wh->busy_since, cw->stall);
		count(m, HEALTH_STALL);
		child_kill(&w->child);
		return;
	}
	if (cw->max_lifetime > 0 && wh->lifetime_end > 0 && now >= wh->lifetime_end) {
		snprintf(figure, sizeof figure, "up %.1fs > max-lifetime %gs", now - w->child.ready_at,
			 cw->max_lifetime);
		recycle(m, w, HEALTH_MAX_LIFETIME, figure);
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct health *h = container_of(t, struct health, tick);
	struct master *m = h->m;
	struct child *c;

	(void)revents;
	health_arm(m);
	if (h->period <= 0 || !m->cfg->has_workers)
		return;
	TAILQ_FOREACH(c, &m->children.children, link) {
		struct worker *w = (struct worker *)c;
		if (c->kind == KIND_WORKER && worker_alive(w) && !w->health.replaces)
			check_worker(m, w, ev_now(loop));
	}
	if (m->cfg->workers.max_rss > 0)
		check_rss(m);
}

/* ---- hooks ---------------------------------------------------------------------- */

void health_worker_ready(struct worker *w)
{
	struct master *m = w->m;
	const struct cfg_workers *cw = &m->cfg->workers;
	struct worker_health *wh = &w->health;
	struct worker *old = wh->replaces;

	wh->last_ping = ev_now(m->loop);
	wh->busy_since = 0;
	wh->lifetime_end = 0;
	health_arm(m);
	if (cw->max_lifetime > 0 && m->health) {
		double r = (double)rand_r(&m->health->seed) / RAND_MAX;
		wh->lifetime_end = w->child.ready_at + health_lifetime(cw->max_lifetime, w->id, cw->count_max, r);
	}
	if (m->health && m->health->recycling == w)
		m->health->recycling = NULL;
	if (!old)
		return;
	wh->replaces = NULL;
	log_info("worker %d (pid %d) replaced by pid %d: stopping it", old->id, (int)old->child.pid,
		 (int)w->child.pid);
	old->retire = true;
	child_curse(&old->child, old->child.stop_signal, old->child.mercy);
}

void health_worker_notify(struct worker *w, const char *msg)
{
	struct worker_health *wh = &w->health;
	ev_tstamp now = ev_now(w->m->loop);

	if (notify_has(msg, "WATCHDOG=1"))
		wh->last_ping = now;
	if (notify_has(msg, "X_BUSY=1") || notify_has(msg, "STATUS=busy"))
		wh->busy_since = now;
	if (notify_has(msg, "X_BUSY=0") || notify_has(msg, "STATUS=idle"))
		wh->busy_since = 0;
}

void health_worker_exited(struct worker *w)
{
	struct health *h = w->m->health;
	struct child *c;

	w->health.busy_since = 0;
	if (!h || !h->recycling)
		return;
	if (h->recycling == w) {
		replacement_gone(h, w);
		return;
	}
	TAILQ_FOREACH(c, &w->m->children.children, link) {
		struct worker *o = (struct worker *)c;
		if (c->kind == KIND_WORKER && o->health.replaces == w) {
			o->health.replaces = NULL; /* its replacement takes its place */
		}
	}
}
