/* workers.h — the workers' policy on top of child.c: spawn worker N with the sockets
 * (socket activation) and the vassal's env, readiness (exec, or READY=1 on the
 * master's NOTIFY_SOCKET within ready-timeout), respawn with backoff when one dies
 * unasked. Each worker writes into a pipe of its own, relayed to the master's stdout
 * one whole line at a time (relay.h), so two workers' lines never run together. Workers live in the master's child set with kind KIND_WORKER. */
#ifndef EMPEROR_WORKERS_H
#define EMPEROR_WORKERS_H

#include <stdbool.h>

#include "health.h"
#include "master.h"
#include "relay.h"

struct worker {
	struct child child;         /* first: a struct child * is a struct worker * */
	struct master *m;
	int id;                     /* VASSAL_WORKER_ID, 1..count */
	unsigned generation;        /* the master generation whose config it runs */
	ev_timer ready_timer;       /* notify mode: ready-timeout (exec mode: ready at exec) */
	bool not_ready_in_time;     /* killed for missing its ready-timeout */
	bool failing;               /* its last run crashed or missed its ready-timeout */
	bool retire;                /* do not respawn when it exits */
	enum cfg_start_prio start_prio; /* until ready (start_prio.h); normal once ready */
	bool prio_guarded;          /* raised at half its ready-timeout: no more waiting idle */
	struct relay_pipe out;      /* its stdout and stderr, relayed a line at a time */
	struct worker_health health; /* health.c: watchdog, busy, lifetime, recycle */
};

/* Spawns the missing workers 1..target (scale.h) of the current generation. */
void workers_fill(struct master *m);
/* Stops the workers above the target (scale.h) with their stop signal and mercy; one
 * waiting for its respawn is dropped. */
void workers_trim(struct master *m);
/* Spawns a new worker with this id from m->cfg (NULL if the spawn failed). */
struct worker *workers_spawn(struct master *m, int id);
/* The same for a chain or overlap replacement: at workers.start-priority until ready. */
struct worker *workers_spawn_replacement(struct master *m, int id);
/* A message arrived on the workers' NOTIFY_SOCKET. */
void workers_notify(struct notify_server *ns, pid_t sender, const char *msg);
/* Every worker 1..count of the current generation is ready, none older runs. */
bool workers_all_ready(const struct master *m);
/* Every worker 1..count is ready or failing (respawned with backoff), none older
 * runs: a start or reload has nothing left to wait for. */
bool workers_settled(const struct master *m);
/* The running worker of an older generation with the lowest id, or NULL. */
struct worker *workers_oldest(const struct master *m);
/* reload: workers — curse every older worker; each is replaced as it exits. */
void workers_replace_all(struct master *m);
/* reload: overlap — the older workers keep serving but are not respawned
 * (keep=false), or are again (keep=true, after a failed overlap). */
void workers_keep_older(struct master *m, bool keep);
/* Curses (and retires) every running worker of an older generation (older=true) or
 * of the current one (false); one waiting for its respawn is dropped when it is due. */
void workers_stop_generation(struct master *m, bool older);
/* Every worker 1..count of the current generation is ready (older ones may run). */
bool workers_generation_ready(const struct master *m);
/* A worker of the current generation is failing. */
bool workers_generation_failing(const struct master *m);
/* Makes every running worker current (after a failed chain reload). */
void workers_adopt_all(struct master *m);
int workers_ready_count(const struct master *m);
/* workers.preload (preload.c): the environment of worker id (0: the template), and a
 * relayed pipe for a template's output (the write end, or -1: the master's stdout). */
char **workers_env(const struct master *m, int id);
int workers_output_pipe(struct master *m, struct relay_pipe *p);
/* The template forked w as pid, now the master's child; or it could not. */
void workers_forked(struct worker *w, pid_t pid);
void workers_fork_failed(struct worker *w, const char *why);

#endif
