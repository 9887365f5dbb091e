/* emperor.h — the emperor: one per watched directory. It owns the vassal table (one
 * record per .yaml/.yml file), the directory monitor, the reload queue of a full
 * reload, and the shutdown. The modules of emperor/ share these structs; each owns
 * its part: monitor.c (inotify), scan.c (directory → table), vtable.c (a vassal's
 * life), output.c (vassal output lines), emperor.c (signals, reload-all, shutdown,
 * upgrade). */
#ifndef EMPEROR_EMPEROR_H
#define EMPEROR_EMPEROR_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "cgroup.h"
#include "child.h"
#include "output.h"
#include "privs.h"

/* A vassal's life as the emperor sees it. Transitions happen in vtable.c only. */
enum vassal_state {
	VASSAL_STARTING,  /* spawned, no READY=1 yet */
	VASSAL_READY,     /* READY=1 received */
	VASSAL_RELOADING, /* SIGHUP sent, or RELOADING=1 received; waiting for READY=1 */
	VASSAL_STOPPING,  /* SIGTERM sent; the record goes when the process is reaped */
	VASSAL_WAITING,   /* died unasked; respawn throttled */
	VASSAL_HALTED,    /* not running until its file changes: bad config or exit 0 */
};

struct file_id {
	dev_t dev;
	ino_t ino;
	struct timespec btime; /* birth time: tells a new file from a recycled inode
				* number; 0 when the file system keeps none */
	off_t size;
	struct timespec mtime;
	uint64_t hash;     /* FNV-1a of the content */
};

struct emperor;

#define CTL_BUCKETS 13 /* reload-duration histogram buckets (control.c) */

struct vassal {
	TAILQ_ENTRY(vassal) link;
	TAILQ_ENTRY(vassal) reload_link; /* in the full-reload queue */
	bool in_reload_queue;
	struct emperor *e;
	char *name;                 /* file name without extension */
	char *file;                 /* file name within the directory */
	char *path;                 /* dir/file */
	struct file_id id;
	bool seen;                  /* found by the current scan */
	enum vassal_state state;
	struct child child;
	int chan_fd;                /* our end of the EMPEROR_FD socketpair */
	ev_io chan_io;
	struct output *out;         /* its stdout/stderr pipe, while open (output.c) */
	double stop_mercy;          /* from its config */
	double heartbeat;           /* from its config; 0 = none */
	ev_timer heartbeat_timer;
	int heartbeat_misses;
	ev_timer slot_timer;        /* bounds a full-reload slot */
	bool holds_slot;            /* counts against reload-concurrency */
	struct vassal *waits_for;   /* a renamed file starts when its old name stopped */
	double spawned_at_mono;
	char reload_why[64];
	/* what emperorctl and the metrics show */
	unsigned restarts;          /* respawns after dying unasked */
	unsigned reloads;           /* reloads completed */
	unsigned reload_buckets[CTL_BUCKETS]; /* reload durations, cumulative histogram */
	double reload_seconds_sum;
	char last_exit[64];
	char *config_error;         /* the first error of the last failed validation */
	int workers_ready, workers_total; /* from the master's X_WORKERS= */
	bool halting;               /* `emperorctl stop`: keep the record, halted */
	/* isolation */
	struct privs owner;         /* tyrant mode: who it runs as */
	bool has_cgroup;            /* its config's cgroup: section */
	struct cfg_cgroup cgroup;   /* copied from its config (strings owned) */
	char *cg_path;              /* its cgroup while it runs in one, else NULL */
};

TAILQ_HEAD(vassal_list, vassal);

struct emperor_opts {
	const char *dir;
	const char *vassal_bin;     /* the vassal binary */
	double throttle;            /* first respawn delay */
	double max_throttle;        /* respawn delay cap */
	double throttle_reset;      /* uptime after which the throttle starts over */
	int reload_concurrency;     /* vassals reloading at once on SIGHUP */
	const char *control_path;   /* NULL: the default (control.c) */
	const char *metrics_addr;   /* NULL: no HTTP metrics listener */
	bool tyrant, tyrant_allow_root, tyrant_nofollow;
	char **argv;                /* the command line, re-exec'd by SIGUSR2 */
};

struct emperor {
	struct ev_loop *loop;
	struct emperor_opts opts;
	char *dir;                  /* absolute */
	char *exe;                  /* absolute path of this binary, for SIGUSR2 */
	struct vassal_list vassals;
	struct vassal_list reload_queue;
	int reloads_running;
	struct child_set children;
	struct monitor *monitor;
	ev_timer scan_timer;        /* coalesces a burst of inotify events into one scan */
	bool stopping, brutal, ready_sent;
	int sigint_count;
	char **ignored;             /* non-regular candidates already logged */
	struct control *control;    /* control.c */
	struct output_sink *out_sink; /* our stderr, never blocking (output.c) */
	double started_at;          /* mono_now() at start */
	struct cgroup_base cg;      /* usable or not, and why */
	ev_signal sig_hup, sig_term, sig_int, sig_quit, sig_usr1, sig_usr2;
};

/* emperor.c */
int emperor_main(const struct emperor_opts *opts);
void emperor_schedule_scan(struct emperor *e);
/* A vassal's record went away (stopped and reaped). */
void emperor_vassal_gone(struct emperor *e);
/* A vassal finished a reload (READY=1) or can no longer finish it. */
void emperor_reload_slot_free(struct emperor *e, struct vassal *v);
void emperor_status_notify(struct emperor *e);
/* A full-reload slot held too long (the callback of struct vassal's slot_timer). */
void emperor_slot_expired(struct ev_loop *loop, ev_timer *w, int revents);

/* scan.c: read the directory and reconcile the table with it. */
void scan_run(struct emperor *e);
bool scan_is_candidate(const char *file);
int scan_file_id(int dirfd, const char *file, struct file_id *id, bool with_hash);

/* vtable.c */
struct vassal *vtable_find(struct emperor *e, const char *file);
struct vassal *vtable_add(struct emperor *e, const char *file, const struct file_id *id);
/* File appeared or changed (content_changed: not just touched). */
void vtable_start(struct vassal *v);
void vtable_changed(struct vassal *v, bool content_changed);
void vtable_stop(struct vassal *v, const char *why);
void vtable_reload(struct vassal *v, const char *why);
void vtable_chain_reload(struct vassal *v, const char *why);
void vtable_kill(struct vassal *v);
void vtable_free(struct vassal *v);
const char *vtable_state_name(enum vassal_state st);
/* Re-attaches a running vassal handed over by the previous emperor image. */
struct upgrade_record;
struct vassal *vtable_adopt(struct emperor *e, const struct upgrade_record *r);


/* monitor.c: inotify on the directory; calls emperor_schedule_scan(). */
struct monitor *monitor_open(struct emperor *e, const char *dir);
void monitor_close(struct monitor *mon);

/* control.c: the control socket (emperorctl) and the metrics. */
enum ctl_event { CTL_READY, CTL_STOPPED, CTL_FAILED };
int control_open(struct emperor *e);
void control_close(struct emperor *e);
/* A vassal became ready (started or reloaded), stopped, or failed: answers waiting
 * emperorctl requests and records the figures. */
void control_vassal_event(struct emperor *e, struct vassal *v, enum ctl_event ev);
/* Records a completed reload's duration (for the metrics). */
void control_reload_done(struct vassal *v, double seconds);
/* vtable.c: stop a vassal (or cancel its pending respawn) but keep its record,
 * halted until started again or its file changes. */
void vtable_halt(struct vassal *v);

/* tyrant.c: opens a vassal's file for the emperor to read once its owner checks pass
 * (the fd, and in p whom it runs as); -1 with the reason, which quotes no content. */
int tyrant_open(const struct emperor *e, const struct vassal *v, struct privs *p, char *why,
		size_t len);
/* What tyrant mode refuses in a config the owner may write: a cgroup.parent outside
 * the emperor's cgroup. 0, or -1 with the reason naming the file and the value. */
struct config;
int tyrant_config_ok(const struct emperor *e, const struct vassal *v, const struct config *cfg,
		     char *why, size_t len);


#endif
