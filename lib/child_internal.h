/* child_internal.h — what lib/child.c shares with child_start.c (the child's side of
 * a spawn) and strays.c (the subreaper's sweep); nothing outside lib/child*.c and
 * lib/strays.c includes it. */
#ifndef EMPEROR_CHILD_INTERNAL_H
#define EMPEROR_CHILD_INTERNAL_H

#include "child.h"

/* What the child writes on the exec-status pipe when a step before exec fails. */
enum start_step { STEP_EXEC, STEP_SETPGID, STEP_PDEATHSIG, STEP_NO_NEW_PRIVS, STEP_STDIO,
		  STEP_FDS, STEP_ENV, STEP_CHDIR, STEP_SIGNALS };

struct start_report {
	int err;
	int step;
};

/* The failed step's name, for the parent's "cannot start X: STEP: error" line. */
const char *child_step_name(int step);
/* In the forked child: every step, then exec or the in-code run. Never returns. */
_Noreturn void child_start(const struct child_set *set, const struct child_exec *x, int errfd,
			   int *fd_tmp, pid_t parent);
/* The set's strays_watcher: an exit reaped after a sweep that found strays. */
void child_strays_reaped(struct ev_loop *loop, ev_child *w, int revents);
/* The set's sweep_timer: the sweep child_set_sweep_soon() asked for. */
void child_strays_due(struct ev_loop *loop, ev_timer *w, int revents);

#endif
