/* monitor.c — the directory monitor: inotify through an ev_io, no polling. Any event
 * about the directory's entries schedules one scan (scan.c decides what changed).
 * IN_Q_OVERFLOW schedules a scan too. The parent directory is watched as well, for
 * the directory's own name: its removal or rename is seen there even while a vassal
 * master's cwd keeps the removed inode alive (and so holds back IN_DELETE_SELF).
 * While the directory is gone the vassals keep running; when a directory of that name
 * is back, it is watched again and scanned. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "emperor.h"
#include "monitor.h"
#include "log.h"
#include "util.h"

#define DIR_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | \
		  IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)

struct monitor {
	struct emperor *e;
	int fd;
	int dir_wd;                 /* -1 while the directory is gone */
	int parent_wd;              /* -1 if the parent cannot be watched */
	char dir[PATH_MAX];
	char parent[PATH_MAX];
	char base[NAME_MAX + 1];
	ev_io io;
};

static int watch_dir(struct monitor *mon)
{
	mon->dir_wd = inotify_add_watch(mon->fd, mon->dir, DIR_MASK);
	return mon->dir_wd < 0 ? -1 : 0;
}

/* A directory renamed away would still be watched under its new name: the watch goes,
 * so that nothing it reports is taken for news of ours. */
static void unwatch_dir(struct monitor *mon)
{
	if (mon->dir_wd >= 0)
		inotify_rm_watch(mon->fd, mon->dir_wd); /* EINVAL once deleted: already gone */
	mon->dir_wd = -1;
}

/* Watches whatever directory has the name now; 0 if there is one. */
static int rewatch(struct monitor *mon)
{
	unwatch_dir(mon);
	return watch_dir(mon);
}

static void log_lost(const struct monitor *mon)
{
	log_warn("%s was removed or renamed: vassals keep running; waiting for it to come back",
		 mon->dir);
}

static void dir_lost(struct monitor *mon)
{
	if (mon->dir_wd < 0)
		return;
	unwatch_dir(mon);
	log_lost(mon);
}

/* A directory of that name appeared; it may replace the one watched (a rename over it). */
static void dir_back(struct monitor *mon)
{
	bool replaced = mon->dir_wd >= 0;

	if (rewatch(mon) < 0)
		return; /* gone again, or not a directory: the parent's next event tells */
	log_info("%s is %s: rescanning", mon->dir, replaced ? "replaced" : "back");
	emperor_schedule_scan(mon->e);
}

static void parent_event(struct monitor *mon, const struct inotify_event *ev)
{
	if (!ev->len || strcmp(ev->name, mon->base) != 0)
		return;
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		dir_lost(mon);
	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		dir_back(mon);
}

static void handle_event(struct monitor *mon, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("inotify queue overflow: full rescan of %s", mon->dir);
		if (rewatch(mon) < 0) /* events about the directory itself may be lost too */
			log_lost(mon);
		emperor_schedule_scan(mon->e);
		return;
	}
	if (ev->wd == mon->parent_wd)
		parent_event(mon, ev);
	else if (ev->wd != mon->dir_wd)
		return; /* a watch already given up */
	else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
		dir_lost(mon);
	else
		emperor_schedule_scan(mon->e);
}

static void monitor_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct monitor *mon = container_of(w, struct monitor, io);
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)loop, (void)revents;
	for (int round = 0; round < 16; round++) {
		ssize_t len = read(mon->fd, buf, sizeof buf);
		if (len < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_errno("inotify read");
			return;
		}
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const void *)p;
			p += sizeof *ev + ev->len;
			handle_event(mon, ev);
		}
	}
}

struct monitor *monitor_open(struct emperor *e, const char *dir)
{
	struct monitor *mon = calloc(1, sizeof *mon);
	char tmp[PATH_MAX];

	if (!mon)
		return NULL;
	mon->e = e;
	mon->dir_wd = mon->parent_wd = -1;
	snprintf(mon->dir, sizeof mon->dir, "%s", dir);
	snprintf(tmp, sizeof tmp, "%s", dir);
	snprintf(mon->parent, sizeof mon->parent, "%s", dirname(tmp));
	snprintf(tmp, sizeof tmp, "%s", dir);
	snprintf(mon->base, sizeof mon->base, "%s", basename(tmp));
	mon->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (mon->fd < 0) {
		log_errno("inotify_init1");
		free(mon);
		return NULL;
	}
	if (watch_dir(mon) < 0) {
		log_errno("watch %s", dir);
		close(mon->fd);
		free(mon);
		return NULL;
	}
	mon->parent_wd = inotify_add_watch(mon->fd, mon->parent, PARENT_MASK);
	if (mon->parent_wd < 0)
		log_errno("watch %s (to see %s go and come back)", mon->parent, mon->base);
	ev_io_init(&mon->io, monitor_readable, mon->fd, EV_READ);
	ev_io_start(e->loop, &mon->io);
	return mon;
}

void monitor_close(struct monitor *mon)
{
	if (!mon)
		return;
	ev_io_stop(mon->e->loop, &mon->io);
	close(mon->fd);
	free(mon);
}
