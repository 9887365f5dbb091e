/* start_prio.h — the CPU priority of a worker while it starts beside serving ones
 * (vassal/start_prio.c): a chain or overlap replacement runs at SCHED_IDLE
 * (`workers.start-priority: idle`) or nice 19 (`low`) until it sends READY=1, then the
 * master gives every thread of it the master's own policy and nice back, so a
 * starting worker never starves those that serve. docs/worker.md has the caveats. */
#ifndef EMPEROR_START_PRIO_H
#define EMPEROR_START_PRIO_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

/* What a replacement is started with: prio itself, or CFG_START_PRIO_NORMAL when
 * this master could not give the priority back (no CAP_SYS_NICE, RLIMIT_NICE too
 * low: logged once). */
enum cfg_start_prio start_prio_effective(enum cfg_start_prio prio);
/* In the worker's vfork'd child before exec (system calls only): its start priority;
 * a failure leaves the normal priority. */
void start_prio_in_child(enum cfg_start_prio prio);
/* Every thread of pid back to the master's own policy and nice. Returns how many
 * threads were changed, -1 on failure (logged). */
int start_prio_restore(pid_t pid);

#endif
