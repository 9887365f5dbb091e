/* vtable.h — the vassal table (emperor/vtable.c): one record per vassal file, and its
 * life. A record holds what the emperor knows of a vassal (its file's identity, its
 * process, its channel) and a pointer to each module's own state for it (output.c's
 * pipe, tyrant.c's owner, its cgroup), each allocated only while used. Its state
 * changes only through the machine of vstate.h. */
#ifndef EMPEROR_VTABLE_H
#define EMPEROR_VTABLE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "child.h"
#include "vstate.h"

struct emperor;
struct output;
struct output_ring;
struct privs;
struct cfg_cgroup;
struct upgrade_record;
struct demand;

struct file_id {
	dev_t dev;
	ino_t ino;
	struct timespec btime; /* birth time: tells a new file from a recycled inode
				* number; 0 when the file system keeps none */
	off_t size;
	struct timespec mtime;
	uint64_t hash;     /* FNV-1a of the content */
};

struct vassal {                 /* fields ordered to leave no padding: 10,000 of them */
	TAILQ_ENTRY(vassal) link;
	TAILQ_ENTRY(vassal) reload_link; /* in the full-reload queue */
	TAILQ_ENTRY(vassal) start_link;  /* in the start queue: new, not started yet */
	struct emperor *e;
	char *name;                 /* file name without extension (points into path) */
	char *file;                 /* file name within the directory (points into path) */
	char *path;                 /* dir/file, then file and name: one allocation */
	struct file_id id;
	enum vassal_state state;
	bool in_reload_queue, in_start_queue; /* list membership; QUEUED is the state */
	bool from_etcd;             /* its file is in the etcd mirror (etcd_feed.c), not dir */
	bool seen;                  /* found by the current scan */
	struct child child;
	int chan_fd;                /* our end of the EMPEROR_FD socketpair */
	ev_io chan_io;
	struct output *out;         /* its stdout/stderr pipe, while open (output.c) */
	struct output_ring *ring;   /* its last lines, from its first one on (output.c) */
	double stop_mercy;          /* from its config */
	double heartbeat;           /* from its config; 0 = none */
	struct vassal_heartbeat *hb; /* its heartbeat watch, from the first run that has one */
	double slot_since;          /* when it took its full-reload slot (mono_now) */
	struct vassal *waits_for;   /* a renamed file starts when its old name stopped */
	double spawned_at_mono;
	const char *reload_why;     /* a string literal: what asked for the last reload */
	/* what emperorctl and the metrics show */
	unsigned restarts;          /* respawns after dying unasked */
	bool holds_slot;            /* counts against reload-concurrency */
	bool halting;               /* `emperorctl stop`: keep the record, halted */
	struct ctl_figures *figures; /* control_render.c's: reloads and their durations */
	char last_exit[64];
	char *config_error;         /* the first error of the last failed validation */
	int workers_ready, workers_total; /* from the master's X_WORKERS= */
	unsigned generation;        /* from the master's X_GENERATION=; 0 until it tells */
	/* on-demand and idle */
	bool on_demand;             /* from its config: the emperor holds its sockets */
	struct demand *demand;      /* those sockets (demand.c), while on-demand and not halted */
	/* isolation */
	struct privs *owner;        /* tyrant mode: who it runs as (tyrant.c), else NULL */
	struct cfg_cgroup *cgroup;  /* its config's cgroup: section, copied; NULL if none */
	char *cg_path;              /* its cgroup while it runs in one, else NULL */
};

TAILQ_HEAD(vassal_list, vassal);

/* A record of the directory's file, or (from_etcd) of the etcd mirror's. */
struct vassal *vtable_find(struct emperor *e, const char *file, bool from_etcd);
struct vassal *vtable_add(struct emperor *e, const char *file, const struct file_id *id,
			  bool from_etcd);
/* File appeared or changed (content_changed: not just touched). */
void vtable_start(struct vassal *v);
void vtable_changed(struct vassal *v, bool content_changed);
void vtable_stop(struct vassal *v, const char *why);
void vtable_reload(struct vassal *v, const char *why);
void vtable_chain_reload(struct vassal *v, const char *why);
void vtable_kill(struct vassal *v);
/* The emperor's second SIGINT: SIGKILL to its group, the record stopping. */
void vtable_brutal_stop(struct vassal *v);
/* Sets (old) or clears (NULL) what a renamed file waits for, keeping the emperor's count. */
void vtable_wait_for(struct vassal *v, struct vassal *old);
void vtable_free(struct vassal *v);
const char *vtable_state_name(enum vassal_state st);
/* Re-attaches a running vassal handed over by the previous emperor image. */
struct upgrade_record;
struct vassal *vtable_adopt(struct emperor *e, const struct upgrade_record *r);
/* Stops a vassal (or cancels its pending respawn) but keeps its record, halted
 * until started again or its file changes (emperorctl stop). */
void vtable_halt(struct vassal *v);

#endif
