/* procs.h — the master's children other than workers: mules, the spooler processes,
 * attached daemons and the nested emperor. Each is a struct proc, a child with the
 * policy these kinds share: started after the workers, respawned with backoff when
 * it dies unasked, restarted at once when it was stopped on purpose (a daemon's
 * touch), stopped by the teardown in its step. A kind supplies only its start
 * function (mules.c, spooler.c, daemons.c, nested.c). */
#ifndef EMPEROR_PROCS_H
#define EMPEROR_PROCS_H

#include "master.h"

struct proc;
typedef int proc_start_fn(struct proc *p);

struct proc {
	struct child child;         /* first: a struct child * of these kinds is a proc */
	struct master *m;
	size_t index;               /* its entry in the config (mules[index], ...) */
	int instance;               /* 1..count within that entry */
	proc_start_fn *start;
	struct watch touch;         /* daemons: restart when one of these changes */
	ev_timer touch_settle;      /* daemons: the events of one change, coalesced */
};

/* A new proc in the master's child set; not started. */
struct proc *procs_new(struct master *m, int kind, const char *name, size_t index,
		       int instance, proc_start_fn *start);
/* Starts p now; on failure a respawn is scheduled. */
void procs_launch(struct proc *p);
/* Spawns an exec'd program with the vassal's child environment plus extra. */
int procs_spawn_program(struct proc *p, const struct cfg_program *prog, char *const *extra_env,
			const int *fds, int n_fds, const char *fdnames);
/* The environment every non-worker child starts from (internal variables removed). */
char **procs_env(const struct master *m, const struct cfg_program *prog, char *const *extra);
/* Starts mules, spooler, daemons, gateways and nested emperor, in that order. */
void procs_start_all(struct master *m);
void procs_free(struct proc *p);

/* mules.c */
#define MULE_MSG_MAX 65536
/* Opens the farm sockets (before the workers start: they get the addresses). */
int mules_open_farms(struct master *m);
int mules_start(struct master *m);
/* "MULE_<NAME>_SOCKET=@..." for every farm, to add to a child's environment. */
char **mules_env(const struct master *m);
/* daemons.c */
int daemons_start(struct master *m);
/* "name=pid,name=pid" of the daemons that survive a reload, for the next image. */
char *daemons_handover(const struct master *m);
/* spooler.c */
int spooler_start(struct master *m);
/* nested.c */
int nested_start(struct master *m);

#endif
