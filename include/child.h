/* child.h — the one child-process mechanism every kind of child uses (vassals in the
 * emperor; workers, mules, daemons, spooler, gateways, nested emperor in a master):
 * spawn (vfork and exec, or fork and an in-code function; own process group, fds, env), reap (an
 * ev_child watcher per child), curse with a mercy deadline, SIGKILL of the whole
 * process group when mercy runs out (one timer per set, armed at the earliest
 * deadline), and respawn with capped exponential backoff. Kinds add policy only,
 * through the on_exit / on_respawn callbacks. */
#ifndef EMPEROR_CHILD_H
#define EMPEROR_CHILD_H

#include <ev.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>

enum child_state {
	CHILD_STOPPED,  /* no process, nothing scheduled */
	CHILD_WAITING,  /* no process, respawn timer armed */
	CHILD_REQUESTED,/* no process yet: asked of another process to make it (a
			 * workers.preload template), until child_adopt_forked() or
			 * child_request_failed() */
	CHILD_STARTING, /* running, not ready yet (its exec may not be known yet) */
	CHILD_READY,    /* running and ready */
	CHILD_CURSED,   /* running, asked to stop; killed at no_mercy_at */
};

struct child_set;

/* How a hook in the child reports (child_warn, child_fail); opaque to the hook. */
struct child_report {
	int fd;                     /* the exec-status pipe, -1 once closed */
};

/* A hook run in the child before its exec (or in-code run). A child that execs shares
 * its parent's memory until the exec (vfork), the parent being suspended meanwhile: a
 * hook makes system calls only. No allocation, lock, stdio, log or environment
 * change; no glibc set*id() (they signal the parent's other threads: use the raw
 * syscalls, as privs_drop_in_child() does); nothing written that the parent reads;
 * and it never waits on the parent. It reports through rep. */
typedef void child_hook(void *arg, const struct child_report *rep);
/* From a hook, errno set: the parent logs "NAME: WHAT: error" (a warning), and the
 * child goes on. what: a string literal. */
void child_warn(const struct child_report *rep, const char *what);
/* From a hook, errno set: the child exits 127; the parent logs "NAME: cannot start
 * ARGV0: WHAT: error" and the child's exec_errno is errno, as for a failed exec. */
_Noreturn void child_fail(const struct child_report *rep, const char *what);

struct child {
	TAILQ_ENTRY(child) link;
	struct child_set *set;
	char *name;                 /* for logs: "worker 3", "vassal hello" (allocated to
				     * size: 10,000 of them in an emperor) */
	int kind;                   /* the owner's own enumeration */
	pid_t pid;                  /* 0 when there is no process */
	enum child_state state;
	ev_tstamp started_at, ready_at, cursed_at, no_mercy_at;
	unsigned respawns;          /* spawns after the first */
	bool spawned;               /* spawned at least once */
	int last_status;            /* wait status of the last exit, -1 = none */
	double last_uptime;         /* how long the last run lasted */
	int exec_errno;             /* non-zero: the last exec failed with this */
	bool exec_pending;          /* forked; whether its exec succeeded is not known yet */
	bool ready_on_exec;         /* child_set_ready() came while exec_pending */
	struct child_exec_wait *exec_wait; /* while exec_pending: the exec-status pipe's
				     * watcher and the program's name (lib/child.c) */
	bool kill_group_on_exit;    /* SIGKILL what is left of the group after exit */
	bool asked_to_stop;         /* the last exit was asked for (curse / kill) */
	int stop_signal;            /* what a graceful stop sends (policy sets it) */
	bool keep_on_reload;        /* a graceful reload leaves it running */
	struct child_pidfd *pidfd;  /* its exit seen through a pidfd (an adopted process not
				     * our child; any child in a loop not the default), else
				     * NULL (lib/child.c) */
	double mercy;               /* seconds between that signal and SIGKILL */
	/* respawn backoff */
	double backoff_min, backoff_max, backoff_cur, stable_after;
	bool backoff_jitter;
	ev_child child_watcher;
	ev_timer respawn_timer;
	/* policy: called once the exec is known, succeeded (exec_errno 0) or failed (the
	 * failure already logged); before on_exit if it died meanwhile. NULL = none */
	void (*on_exec)(struct child *c);
	/* policy: called after the process is reaped (pid already 0) */
	void (*on_exit)(struct child *c, int status);
	/* policy: called when the respawn delay has passed */
	void (*on_respawn)(struct child *c);
	/* policy: called by child_kill() before SIGKILL (a vassal's cgroup.kill) */
	void (*on_kill)(struct child *c);
	void *data;
};

TAILQ_HEAD(child_list, child);

struct child_set {
	struct ev_loop *loop;
	struct child_list children;
	ev_timer mercy_timer;       /* armed at the earliest no_mercy_at */
	ev_child strays_watcher;    /* any exit: sweep strays again soon (sweep_timer) */
	ev_timer sweep_timer;       /* one sweep for a burst of exits (child_set_sweep_soon) */
	void *data;
	/* run in every child of the set before its exec/run (a vassal's limits) */
	child_hook *in_child;
	void *in_child_arg;
};

/* How to start a child. */
struct child_exec {
	char *const *argv;          /* exec'd as execvp does, searching the PATH of env;
				     * unused if run is set */
	char *const *env;           /* the child's whole environment; NULL = ours */
	const char *pid_env;        /* also set this variable to the child's own pid
				     * (WATCHDOG_PID); NULL = none */
	const char *cwd;            /* NULL = ours */
	const int *fds;             /* dup'ed to 3, 4, ... in order (in-code: kept as they are,
				     * every other fd above 2 is closed) */
	int n_fds;
	const char *fdnames;        /* set LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES if non-NULL */
	int n_listen_fds;           /* with fdnames: LISTEN_FDS counts the first this many of
				     * fds (others follow them, e.g. a channel); 0 = all */
	int out_fd;                 /* stdout and stderr; -1 = inherit */
	int (*run)(void *arg);      /* in-code child: exit(run(arg)) instead of exec */
	void *run_arg;
	bool die_with_parent;       /* PR_SET_PDEATHSIG SIGKILL: no orphan if we crash */
	bool keep_group;            /* stay in our process group instead of leading its own
				     * (a spooler's task: the SIGKILL of the spooler's group
				     * takes it and what it started); set the child's
				     * kill_group_on_exit to false with it */
	/* Every child also gets PR_SET_NO_NEW_PRIVS and its set's in_child hook. */
	child_hook *in_child;       /* run in the child before exec/run (start priority) */
	void *in_child_arg;
};

void child_set_init(struct child_set *set, struct ev_loop *loop);
/* Stops every watcher; processes are left alone. */
void child_set_fini(struct child_set *set);

/* Prepares c (not yet running) and adds it to set. */
void child_init(struct child *c, struct child_set *set, int kind, const char *name);
/* Removes c from its set and stops its watchers. c must not be running. */
void child_fini(struct child *c);

/* Starts the process: vfork and exec (the parent is suspended until the exec, a few
 * system calls: nothing of its memory is copied), or fork and run for an in-code
 * child. The child's environment is built whole here, before the vfork. Returns 0
 * when there is a process, -1 when none could be made (pipe, fork, memory; logged).
 * Does not report the exec's outcome itself: the state becomes CHILD_STARTING with
 * exec_pending set, and the outcome arrives on the loop. A failure (exec, or a step
 * before it: setpgid, PR_SET_NO_NEW_PRIVS, fds, chdir, a hook's child_fail...) is
 * logged once as "NAME: cannot start ARGV0: [step: ]error", sets c->exec_errno and
 * calls on_exec; the failed process exits 127 and is reaped as usual. Any number of
 * fds. The caller's signal mask is the same after as before.
 * In the default loop the exit comes through an ev_child watcher; libev has those
 * nowhere else, so in another loop (a forked spooler's own) through a pidfd. */
int child_spawn(struct child *c, const struct child_exec *x);
/* STARTING -> READY; asked while the exec is pending, it happens once the exec is
 * known to have succeeded (never if it failed). */
void child_set_ready(struct child *c);
/* Takes over a running process (our child) handed over by a previous image. */
void child_adopt(struct child *c, pid_t pid, ev_tstamp started_at);
/* Takes over a process another one forked for us, now our child (we are its
 * subreaper), as a new start: STARTING, counted as a respawn after the first, no exec
 * to wait for (workers.preload). The default loop only (ev_child). */
void child_adopt_forked(struct child *c, pid_t pid);
/* STOPPED or WAITING -> REQUESTED: another process was asked to fork it. */
void child_requested(struct child *c);
/* REQUESTED -> STOPPED: the fork will not come (refused, failed, not sent). */
void child_request_failed(struct child *c);
/* Takes over a running process that is not our child (a daemon's pidfile): its end
 * is seen through a pidfd; its exit status is unknown (-1). */
int child_adopt_foreign(struct child *c, pid_t pid);
/* Sends sig to the process; after mercy seconds its whole group gets SIGKILL. */
void child_curse(struct child *c, int sig, double mercy);
/* SIGKILL to the whole group now. */
void child_kill(struct child *c);
/* Arms the respawn timer with the next backoff delay (0 after a stable run). */
void child_schedule_respawn(struct child *c);
/* Delay the next child_schedule_respawn() will use (for the log). */
double child_next_backoff(const struct child *c);
void child_cancel_respawn(struct child *c);
bool child_running(const struct child *c);
double child_uptime(const struct child *c);
/* SIGKILLs every process whose parent is us but that is not one of the set's children:
 * orphans we adopted as a subreaper (a worker's setsid'd grandchild), and their
 * descendants. Returns how many. While it finds some, the exits we reap make it sweep
 * again soon, once per burst (a dying stray hands its children to us only as it
 * dies). Called at a final stop and before a re-exec. */
int child_set_kill_strays(struct child_set *set);
/* The same sweep a moment later (20 ms), once for all the calls until then: after
 * each exit of many (a sweep reads all our children, 10,000 in an emperor). */
void child_set_sweep_soon(struct child_set *set);
/* Counts running children of a kind (kind < 0: all). */
int child_set_running(const struct child_set *set, int kind);
/* "exited 0", "exited 3", "killed by SIGKILL" */
const char *child_status_text(int status, char *buf, size_t len);
const char *child_state_name(enum child_state st);

#endif
