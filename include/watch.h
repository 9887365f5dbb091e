/* watch.h — "tell me when one of these files is touched or changed", with inotify
 * through an ev_io. Each path's parent directory is watched, so a file that does not
 * exist yet, or is replaced by a rename (editors, ConfigMaps), is still seen. */
#ifndef EMPEROR_WATCH_H
#define EMPEROR_WATCH_H

#include <ev.h>

struct watch;
typedef void watch_cb(struct watch *w, const char *path);

struct watch {
	int fd;
	ev_io io;
	struct ev_loop *loop;
	struct watch_entry *entries;
	size_t n;
	watch_cb *cb;
	void *data;
};

/* paths: NULL-terminated. Relative paths are taken from the current directory. */
int watch_open(struct watch *w, struct ev_loop *loop, char *const *paths, watch_cb *cb,
	       void *data);
void watch_close(struct watch *w);

#endif
