/* procs.h — the policy shared by the master's children other than workers (mules,
 * spooler processes, attached daemons, gateways' routers, the nested emperor): each is
 * a struct proc, a child started after the workers, respawned with backoff when it
 * dies unasked, restarted at once when it was stopped on purpose (a daemon's touch),
 * and left alone once the master tears down (its step stops it). A kind supplies only
 * its start function; procs.c names no kind. The exit log line and the respawn with
 * backoff are shared with the workers (workers.c). */
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
	char **extra_env;           /* "K=V" added to its environment (LEGION_TOKEN), owned */
	bool retire;                /* stopped for good (a legion's lord stepped down): its
				     * exit frees it instead of a restart */
	void (*retired)(void *arg); /* called once a retired (or torn down) proc is freed */
	void *retired_arg;
};

/* A new proc in the master's child set; not started. */
struct proc *procs_new(struct master *m, int kind, const char *name, size_t index,
		       int instance, proc_start_fn *start);
/* Starts p now; on failure (logged by the start) a respawn is scheduled and -1 returned. */
int procs_launch(struct proc *p);
/* Spawns an exec'd program with the vassal's child environment plus extra. */
int procs_spawn_program(struct proc *p, const struct cfg_program *prog, char *const *extra_env,
			const int *fds, int n_fds, const char *fdnames);
/* The environment every non-worker child starts from (internal variables removed). */
char **procs_env(const struct master *m, const struct cfg_program *prog, char *const *extra);
void procs_free(struct proc *p);
/* The exit policy's two halves every kind shares: "NAME (pid N) exited 0 after 1.20s"
 * (", unasked" when nobody asked it to stop), and the respawn with capped backoff
 * ("died young ... respawn in" when it ran shorter than stable_after). */
void procs_log_exit(const struct child *c, int status);
void procs_respawn_later(struct child *c);

#endif
