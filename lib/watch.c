/* watch.c — inotify watch of a set of files (see watch.h). A file is matched by the
 * (directory watch, name) pair of the event. Events that mean "touched or changed":
 * attributes (touch), close after write, moved in or created (atomic replace). One
 * user action makes several of them (GNU touch: IN_ATTRIB then IN_CLOSE_WRITE), so a
 * file is reported only when its stat (inode, size, mtime, ctime) differs from the
 * last one reported: one touch, one callback. */
#include "watch.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* No IN_MODIFY: a write is reported once, when the writer closes the file. */
#define WATCH_MASK (IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)

struct watch_entry {
	int wd;
	char *path; /* as given */
	char *base; /* file name within its directory */
	struct stat seen; /* as last reported; all zero while the file does not exist */
};

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Records the file's stat; true if it differs from the one recorded before. */
static bool entry_changed(struct watch_entry *e)
{
	struct stat now;

	if (stat(e->path, &now) < 0)
		memset(&now, 0, sizeof now);
	if (now.st_dev == e->seen.st_dev && now.st_ino == e->seen.st_ino &&
	    now.st_size == e->seen.st_size && same_time(now.st_mtim, e->seen.st_mtim) &&
	    same_time(now.st_ctim, e->seen.st_ctim))
		return false;
	e->seen = now;
	return true;
}

static void watch_readable(struct ev_loop *loop, ev_io *io, int revents)
{
	struct watch *w = container_of(io, struct watch, io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	(void)loop, (void)revents;
	len = read(w->fd, buf, sizeof buf);
	if (len < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_errno("inotify read");
		return;
	}
	for (char *p = buf; p < buf + len;) {
		const struct inotify_event *ev = (const struct inotify_event *)p;
		p += sizeof *ev + ev->len;
		for (size_t i = 0; ev->len && i < w->n; i++)
			if (w->entries[i].wd == ev->wd && strcmp(w->entries[i].base, ev->name) == 0 &&
			    entry_changed(&w->entries[i]))
				w->cb(w, w->entries[i].path);
	}
}

static int watch_add(struct watch *w, struct watch_entry *e, const char *path)
{
	char dirbuf[PATH_MAX], basebuf[PATH_MAX];

	snprintf(dirbuf, sizeof dirbuf, "%s", path);
	snprintf(basebuf, sizeof basebuf, "%s", path);
	e->path = strdup(path);
	e->base = strdup(basename(basebuf));
	if (!e->path || !e->base)
		return -1;
	entry_changed(e);
	e->wd = inotify_add_watch(w->fd, dirname(dirbuf), WATCH_MASK);
	if (e->wd < 0) {
		log_errno("cannot watch %s: inotify_add_watch(%s)", path, dirbuf);
		return -1;
	}
	return 0;
}

int watch_open(struct watch *w, struct ev_loop *loop, char *const *paths, watch_cb *cb,
	       void *data)
{
	size_t n = strv_len(paths);

	memset(w, 0, sizeof *w);
	w->fd = -1;
	w->loop = loop;
	w->cb = cb;
	w->data = data;
	if (n == 0)
		return 0;
	w->entries = calloc(n, sizeof *w->entries);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!w->entries || w->fd < 0) {
		log_errno("inotify_init1");
		watch_close(w);
		return -1;
	}
	/* A path whose directory cannot be watched is logged and left out. */
	for (; w->n < n; w->n++)
		if (watch_add(w, &w->entries[w->n], paths[w->n]) < 0)
			w->entries[w->n].wd = -1;
	ev_io_init(&w->io, watch_readable, w->fd, EV_READ);
	ev_io_start(loop, &w->io);
	return 0;
}

void watch_close(struct watch *w)
{
	if (w->fd >= 0) {
		ev_io_stop(w->loop, &w->io);
		close(w->fd);
	}
	for (size_t i = 0; i < w->n; i++) {
		free(w->entries[i].path);
		free(w->entries[i].base);
	}
	free(w->entries);
	w->entries = NULL;
	w->n = 0;
	w->fd = -1;
}
