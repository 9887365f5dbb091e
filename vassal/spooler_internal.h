/* spooler_internal.h — private to the spooler's two files: spooler.c (the process, its
 * loop, running the claimed task and writing its outcome down) and spooler_pick.c
 * (listing the task files and claiming the next one). One struct spooler per spooler
 * process, in that process only. */
#ifndef EMPEROR_SPOOLER_INTERNAL_H
#define EMPEROR_SPOOLER_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "procs.h"
#include "spool.h"
#include "spooler.h"

#define DEFERRED_LOCKS_MAX 256    /* deferred tasks whose lock is held (one fd each) */

/* A task whose outcome could not be written down (its retry's rewrite, its move to
 * failed/ or its removal failed: a full or read-only spool file system). Its backoff
 * and attempts are kept here instead, in memory, and its lock stays held (fd) so that
 * no other spooler process runs it meanwhile; the file itself is left as it was, so
 * nothing is lost. When it is due, what is owed is done from here: run it again, or
 * try the move or the removal again. */
enum deferred_outcome { DEFER_RUN, DEFER_FAIL, DEFER_REMOVE };
struct deferred {
	TAILQ_ENTRY(deferred) link;
	char file[256];
	int fd;                     /* the task file, flock'ed; -1 past DEFERRED_LOCKS_MAX */
	double not_before;          /* wall clock */
	enum deferred_outcome owed;
	int attempts;               /* attempts so far, counted here since the file is stale */
	char failed_why[200];       /* DEFER_FAIL: why it goes to failed/ */
};
TAILQ_HEAD(deferred_list, deferred);

struct spooler {
	struct ev_loop *loop;
	const struct cfg_spooler *cfg;
	char *dir;                  /* cfg->dir made absolute: the task program may chdir */
	char **env;                 /* the vassal's child environment */
	int dirfd, inofd, sigfd;
	ev_io ino_io, sig_io;
	ev_timer wake;
	bool stopping;
	struct deferred_list deferred;
	int n_deferred_locks;
	struct candidate *known;     /* the last scan's tasks, by name: their priorities */
	size_t n_known;
	/* the task being run: its program is a child of lib/child.c's, in our own set */
	struct child_set procs;
	struct child proc;
	int lock_fd;
	char file[256];
	char *text;
	struct spool_task task;
};

struct candidate {
	char name[256];
	ino_t ino;                  /* as readdir() says: a rewrite (rename over) changes it */
	int priority;
};

/* spooler.c */
double spooler_wall_now(void);
struct deferred *spooler_deferred_find(struct spooler *s, const char *file);
void spooler_deferred_free(struct spooler *s, struct deferred *d);
/* The outcomes of the claimed task (s->file): moved to failed/ with why in its note;
 * removed (it succeeded); its lock and text let go. */
void spooler_fail_task(struct spooler *s, const char *why);
void spooler_remove_task(struct spooler *s);
void spooler_release_task(struct spooler *s);

/* spooler_pick.c */
/* The task files of the directory, by priority then name; *n of them (NULL if none). */
struct candidate *spooler_list_tasks(struct spooler *s, size_t *n);
/* Locks and parses file. 1: claimed and due; 0: not ours or not due (*next_at);
 * -1: malformed or failed (moved to failed/). */
int spooler_claim(struct spooler *s, const char *file, double *next_at);
/* Forgets deferred tasks whose file was removed (by hand) meanwhile. */
void spooler_deferred_prune(struct spooler *s);

#endif
