/* signals.h — the signal plumbing the emperor and the vassal master share: a table
 * of signal → watcher started on a loop (SIGPIPE ignored; the mask cleared, so that a
 * signal blocked across an exec is delivered now), the block before an exec, and the
 * one line per child that SIGUSR1's status dump writes. Commands are signals
 * (DESIGN.md): each binary keeps only its own table and handler. */
#ifndef EMPEROR_SIGNALS_H
#define EMPEROR_SIGNALS_H

#include <ev.h>
#include <stddef.h>

#include "child.h"

struct signals_entry {
	int signum;
	ev_signal *w;               /* embedded in its owner; w->data becomes data */
};

typedef void signals_cb(struct ev_loop *loop, ev_signal *w, int revents);

/* Starts a watcher per entry, all calling cb; then unblocks every signal. */
void signals_start(struct ev_loop *loop, const struct signals_entry *table, size_t n,
		   signals_cb *cb, void *data);
/* Blocks every catchable signal but SIGCHLD: one that arrives from now on waits,
 * pending, across an exec for the new image's handlers. 0, or -1 (errno). */
int signals_block_for_exec(void);
/* Undoes signals_block_for_exec() (an exec that will not happen). */
int signals_unblock_all(void);
/* "status: NAME pid N STATE up 1.5s respawns 0", logged. */
void signals_status_line(const char *name, const char *state, const struct child *c);

#endif
