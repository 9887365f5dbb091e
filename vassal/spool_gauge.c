/* spool_gauge.c — the task counts of a spool directory (see spool_gauge.h). The names
 * of the task files are kept in two sets (tsearch), one per directory; each inotify
 * event adds or removes one name, so a task rewritten for a retry (renamed over
 * itself) is still counted once. The sets are rebuilt by a scan at the start, when
 * failed/ or the directory itself appears or goes, and after an IN_Q_OVERFLOW: the
 * scan is done at the next read, never per event. */
#include "spool_gauge.h"

#include <dirent.h>
#include <errno.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum { QUEUED, FAILED };

#define DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
		    IN_MOVE_SELF | IN_ONLYDIR)

struct spool_gauge {
	struct ev_loop *loop;
	char *path[2];              /* DIR, DIR/failed */
	int ino_fd, wd[2];          /* wd -1: not watched (absent) */
	ev_io io;
	void *names[2];             /* tsearch roots of malloc'd names */
	int count[2];
	bool stale;                 /* rescan before the next read */
};

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool is_task(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".task") == 0;
}

static void name_add(struct spool_gauge *g, int which, const char *name)
{
	char *copy;
	void *node;

	if (!is_task(name) || tfind(name, &g->names[which], by_name))
		return;
	if (!(copy = strdup(name)) || !(node = tsearch(copy, &g->names[which], by_name))) {
		free(copy);
		g->stale = true;
		return;
	}
	g->count[which]++;
}

static void name_remove(struct spool_gauge *g, int which, const char *name)
{
	void *node = tfind(name, &g->names[which], by_name);
	char *stored;

	if (!node)
		return;
	stored = *(char **)node;
	tdelete(name, &g->names[which], by_name);
	free(stored);
	g->count[which]--;
}

static void forget(struct spool_gauge *g, int which)
{
	tdestroy(g->names[which], free);
	g->names[which] = NULL;
	g->count[which] = 0;
}

/* Watches and lists one directory again. */
static void rescan_one(struct spool_gauge *g, int which)
{
	struct dirent *de;
	DIR *d;

	forget(g, which);
	/* The same wd if it is still the same directory; a replaced one's old watch
	 * ends with an IN_IGNORED that on_event() no longer recognises. */
	g->wd[which] = inotify_add_watch(g->ino_fd, g->path[which], DIR_EVENTS);
	if (g->wd[which] < 0 || !(d = opendir(g->path[which])))
		return; /* absent: empty, until its parent's event says it appeared */
	while ((de = readdir(d)) != NULL)
		name_add(g, which, de->d_name);
	closedir(d);
}

static void rescan(struct spool_gauge *g)
{
	g->stale = false;
	rescan_one(g, QUEUED);
	rescan_one(g, FAILED);
}

static void on_event(struct spool_gauge *g, const struct inotify_event *ev)
{
	int which = ev->wd == g->wd[QUEUED] ? QUEUED : ev->wd == g->wd[FAILED] ? FAILED : -1;

	if (ev->mask & IN_Q_OVERFLOW) {
		g->stale = true;
		return;
	}
	if (which < 0)
		return;
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		g->stale = true;
		return;
	}
	if (!ev->len)
		return;
	if (which == QUEUED && (ev->mask & IN_ISDIR) && strcmp(ev->name, "failed") == 0) {
		g->stale = true; /* failed/ appeared or went */
		return;
	}
	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		name_add(g, which, ev->name);
	else
		name_remove(g, which, ev->name);
}

static void events_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spool_gauge *g = container_of(w, struct spool_gauge, io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)loop, (void)revents;
	for (int round = 0; round < 16 && (n = read(g->ino_fd, buf, sizeof buf)) > 0; round++)
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			on_event(g, ev);
			p += sizeof *ev + ev->len;
		}
}

struct spool_gauge *spool_gauge_new(struct ev_loop *loop, const char *dir)
{
	struct spool_gauge *g = calloc(1, sizeof *g);

	if (!g)
		return NULL;
	g->loop = loop;
	g->wd[QUEUED] = g->wd[FAILED] = -1;
	g->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (g->ino_fd < 0 || !(g->path[QUEUED] = strdup(dir)) ||
	    asprintf(&g->path[FAILED], "%s/failed", dir) < 0) {
		log_errno("spool counts: %s", dir);
		g->path[FAILED] = NULL;
		spool_gauge_free(g);
		return NULL;
	}
	ev_io_init(&g->io, events_ready, g->ino_fd, EV_READ);
	ev_io_start(loop, &g->io);
	g->stale = true;
	return g;
}

void spool_gauge_free(struct spool_gauge *g)
{
	if (!g)
		return;
	if (g->ino_fd >= 0) {
		ev_io_stop(g->loop, &g->io);
		close(g->ino_fd);
	}
	forget(g, QUEUED);
	forget(g, FAILED);
	free(g->path[QUEUED]);
	free(g->path[FAILED]);
	free(g);
}

void spool_gauge_counts(struct spool_gauge *g, int *queued, int *failed)
{
	/* Events already queued first, so that the answer is as fresh as a scan. */
	events_ready(g->loop, &g->io, EV_READ);
	/* An absent failed/ is watched for through DIR's events; an absent DIR (no
	 * spooler has created it yet) costs one failed open per read. */
	if (g->stale || g->wd[QUEUED] < 0)
		rescan(g);
	*queued = g->count[QUEUED];
	*failed = g->count[FAILED];
}
