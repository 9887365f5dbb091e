/* child_internal.h — what lib/child.c shares with child_start.c (the child's side of
 * a spawn) and strays.c (the subreaper's sweep); nothing outside lib/child*.c and
 * lib/strays.c includes it. */
#ifndef EMPEROR_CHILD_INTERNAL_H
#define EMPEROR_CHILD_INTERNAL_H

#include "child.h"

#include <stdbool.h>

/* What the child writes on the exec-status pipe when a step before exec fails (or a
 * hook warns: STEP_HOOK with warn set, the child going on). */
enum start_step { STEP_EXEC, STEP_SETPGID, STEP_PDEATHSIG, STEP_NO_NEW_PRIVS, STEP_STDIO,
		  STEP_FDS, STEP_CHDIR, STEP_SIGNALS, STEP_HOOK };

struct start_report {
	int err;
	int step;
	int warn;                   /* a hook's child_warn: logged, not a failure */
	char what[52];              /* STEP_HOOK: the hook's words */
};

/* The failed step's name, for the parent's "cannot start X: STEP: error" line. */
const char *child_step_name(const struct start_report *r);

/* What the parent prepares for the child's steps, before the vfork or fork: nothing
 * in the child allocates. */
struct child_launch {
	int errfd;                  /* the exec-status pipe's write end */
	int *fd_tmp;                /* room for n_fds descriptors (place_fds) */
	pid_t parent;
	char **envp;                /* exec: the whole environment (child_env_build) */
	char *pid_slot[2];          /* in envp: where the child writes its pid's digits */
};

/* The room child_env_build() leaves for a pid's digits (and the NUL). */
#define CHILD_PID_DIGITS 12
/* The exec'd child's environment (x->env, or ours) with LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES (when x->fdnames) and x->pid_env set: one allocation, freed with
 * free(l->envp). l->pid_slot[] point at the values to fill with the child's pid.
 * -1 when out of memory. */
int child_env_build(const struct child_exec *x, struct child_launch *l);
/* In the child: its pid's digits into l->pid_slot[] (no formatting, no allocation). */
void child_env_fill_pid(const struct child_launch *l);
/* In the child: every step, then exec or the in-code run. Never returns. */
_Noreturn void child_start(const struct child_set *set, const struct child_exec *x,
			   struct child_launch *l);
/* The set's strays_watcher: an exit reaped after a sweep that found strays. */
void child_strays_reaped(struct ev_loop *loop, ev_child *w, int revents);
/* The set's sweep_timer: the sweep child_set_sweep_soon() asked for. */
void child_strays_due(struct ev_loop *loop, ev_timer *w, int revents);

#endif
