/* preload.h — workers.preload: one template process per generation loads the app
 * once and forks the workers the master asks for (docs/architecture.md, "Preloaded
 * workers", has the protocol). The template is a child of kind KIND_TEMPLATE, started
 * like a worker (the sockets at fds 3.., the workers' env, VASSAL_WORKER_ID=0) plus
 * a control socket at EMPEROR_PRELOAD_FD. It says "ready" once the app is loaded;
 * for each "fork ID" it forks a worker whose parent, once the template has reaped the
 * intermediate, is the master (a subreaper), and answers "forked ID PID" (or
 * "failed ID WHY"). The master then supervises that pid as any worker of its own. */
#ifndef EMPEROR_PRELOAD_H
#define EMPEROR_PRELOAD_H

#include <stdbool.h>
#include <sys/types.h>

#include "master.h"

struct worker;

/* Asks the current generation's template (started now if there is none) to fork w;
 * its pid arrives later through workers_forked(), or workers_fork_failed(). -1 when
 * the request could not even be queued (memory). */
int preload_fork(struct master *m, struct worker *w);
/* w is being freed: an answer for it kills the process it names. */
void preload_forget(struct master *m, const struct worker *w);
/* A notification from a pid no worker has yet: kept while a fork is outstanding
 * (the worker may speak before its pid is known). true when kept. */
bool preload_stash(struct master *m, pid_t sender, const char *msg);
/* After a failed chain or overlap (workers_adopt_all): the previous generation's
 * template is the current one again; the failed one is stopped. */
void preload_adopt(struct master *m);
/* Stops the templates of older generations once no worker of one runs or is being
 * forked. Called as workers exit and reloads end. */
void preload_gc(struct master *m);
/* The master is gone for good: frees what is left (no process runs). */
void preload_free(struct master *m);

#endif
