/* start_prio.c — a starting replacement worker at a low CPU priority (see
 * start_prio.h). Lowering is done in the child before its exec, so not one
 * instruction of the new program runs at the normal priority; raising it back is done
 * by the master from outside, thread by thread (/proc/PID/task), because a policy
 * or nice set on one thread is inherited only by threads created after it. Raising
 * needs CAP_SYS_NICE (or RLIMIT_NICE >= 20): without it the replacement starts at
 * the normal priority instead of staying low for good. */
#include "start_prio.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"

#define CAP_SYS_NICE_BIT 23
#define RESTORE_PASSES   4   /* threads created during a pass are caught by the next */

/* CapEff of this process has CAP_SYS_NICE. */
static bool have_cap_sys_nice(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long caps = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f))
		found = sscanf(line, "CapEff: %llx", &caps) == 1;
	fclose(f);
	return found && (caps >> CAP_SYS_NICE_BIT) & 1;
}

/* The kernel lets an unprivileged thread lower its nice value to 20 - RLIMIT_NICE. */
static bool can_raise_back(void)
{
	struct rlimit rl;
	int nice_now;

	if (have_cap_sys_nice())
		return true;
	errno = 0;
	nice_now = getpriority(PRIO_PROCESS, 0);
	if (errno || getrlimit(RLIMIT_NICE, &rl) < 0)
		return false;
	return rl.rlim_cur == RLIM_INFINITY || (long)rl.rlim_cur >= 20 - nice_now;
}

enum cfg_start_prio start_prio_effective(enum cfg_start_prio prio)
{
	static int usable = -1;

	if (prio == CFG_START_PRIO_NORMAL)
		return prio;
	if (usable < 0) {
		usable = can_raise_back();
		if (!usable)
			log_warn("workers.start-priority: this master lacks CAP_SYS_NICE (and "
				 "RLIMIT_NICE is below 20) to raise a replacement's priority back "
				 "once ready: replacements start at the normal priority");
	}
	return usable ? prio : CFG_START_PRIO_NORMAL;
}

void start_prio_in_child(enum cfg_start_prio prio)
{
	struct sched_param sp = { .sched_priority = 0 };

	if (prio == CFG_START_PRIO_IDLE)
		(void)sched_setscheduler(0, SCHED_IDLE, &sp);
	else if (prio == CFG_START_PRIO_LOW)
		(void)setpriority(PRIO_PROCESS, 0, 19);
}

/* Thread tid to policy/sp and nice; 1 if it had to change, 0 if not, -1 on error. */
static int restore_thread(pid_t tid, int policy, const struct sched_param *sp, int nice)
{
	int cur = sched_getscheduler(tid), changed = 0, cur_nice;

	if (cur < 0)
		return errno == ESRCH ? 0 : -1; /* a thread that just ended */
	if (cur != policy) {
		if (sched_setscheduler(tid, policy, sp) < 0)
			return errno == ESRCH ? 0 : -1;
		changed = 1;
	}
	errno = 0;
	cur_nice = getpriority(PRIO_PROCESS, (id_t)tid);
	if (errno)
		return errno == ESRCH ? changed : -1;
	if (cur_nice != nice) {
		if (setpriority(PRIO_PROCESS, (id_t)tid, nice) < 0)
			return errno == ESRCH ? changed : -1;
		changed = 1;
	}
	return changed;
}

/* One pass over /proc/PID/task: how many threads changed, -1 on error. */
static int restore_pass(pid_t pid, int policy, const struct sched_param *sp, int nice)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0, rc = 0;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : -1;
	while (rc >= 0 && (de = readdir(d))) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (de->d_name[0] == '.' || *end || tid <= 0)
			continue;
		rc = restore_thread((pid_t)tid, policy, sp, nice);
		n += rc > 0;
	}
	closedir(d);
	return rc < 0 ? -1 : n;
}

int start_prio_restore(pid_t pid)
{
	struct sched_param sp;
	int policy = sched_getscheduler(0), nice, total = 0, n = 1;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (policy < 0 || errno || sched_getparam(0, &sp) < 0) {
		log_errno("start-priority: our own scheduling");
		return -1;
	}
	policy &= ~SCHED_RESET_ON_FORK;
	for (int pass = 0; pass < RESTORE_PASSES && n > 0; pass++) {
		n = restore_pass(pid, policy, &sp, nice);
		if (n < 0) {
			log_errno("start-priority: cannot give pid %d its priority back", (int)pid);
			return -1;
		}
		total += n;
	}
	return total;
}
