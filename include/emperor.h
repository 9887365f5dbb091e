/* emperor.h — the emperor: one per watched directory, and emperor/emperor.c, which
 * owns its start-up, signals, the full reload (--reload-concurrency) and the
 * shutdown. Each module of emperor/ has its own header: vtable.h (the vassal table
 * and a vassal's record), vstate.h (a vassal's machine), scan.h (directory → table),
 * monitor.h (inotify), output.h (vassal output, our stderr), upgrade.h (SIGUSR2),
 * tyrant.h (tyrant mode), control.h (emperorctl, metrics), etcd_feed.h (vassals
 * from etcd), etcd_status.h (the node's status in etcd). */
#ifndef EMPEROR_EMPEROR_H
#define EMPEROR_EMPEROR_H

#include <ev.h>
#include <stdbool.h>
#include <sys/queue.h>

#include "cgroup.h"
#include "child.h"
#include "control.h"
#include "etcd_feed.h"
#include "vtable.h"

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
	bool debug;                 /* log_debug lines: every vassal state transition */
	struct etcd_feed_opts etcd; /* --etcd...: endpoints NULL without */
	char **argv;                /* the command line, re-exec'd by SIGUSR2 */
};

struct emperor {
	struct ev_loop *loop;
	struct emperor_opts opts;
	char *dir;                  /* absolute */
	char *exe;                  /* absolute path of this binary, for SIGUSR2 */
	struct vassal_list vassals;
	struct vassal_list reload_queue;
	struct vassal_list start_queue; /* new records, started START_BATCH per iteration */
	ev_timer start_timer;       /* due at once while the start queue holds records */
	int reloads_running;
	int records_stopping;       /* records in VASSAL_STOPPING (vtable.c keeps it) */
	int records_waiting;        /* records whose waits_for is set (vtable_wait_for) */
	ev_timer slot_timer;        /* at the end of the earliest slot held (60 s) */
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
	char *etcd_dir;             /* the etcd mirror (absolute), scanned beside dir; NULL
				     * without --etcd */
	char **shadowed;            /* etcd-fed names a file of dir shadows, logged once */
	struct etcd_feed *etcd_feed;     /* etcd_feed.c */
	struct etcd_status *etcd_status; /* etcd_status.c */
	ev_signal sig_hup, sig_term, sig_int, sig_quit, sig_usr1, sig_usr2;
};

/* emperor.c */
int emperor_main(const struct emperor_opts *opts);
void emperor_schedule_scan(struct emperor *e);
/* The same without the settle time, for changes known to be whole already (the etcd
 * mirror's atomic writes): the scan runs at the next loop iteration, after every
 * event already received. */
void emperor_scan_soon(struct emperor *e);
/* A new record joins the start queue; started a few per loop iteration. */
void emperor_queue_start(struct emperor *e, struct vassal *v);
/* It leaves the queue (started another way, or freed). */
void emperor_unqueue_start(struct emperor *e, struct vassal *v);
/* A vassal's record went away (stopped and reaped). */
void emperor_vassal_gone(struct emperor *e);
/* A vassal finished a reload (READY=1) or can no longer finish it. */
void emperor_reload_slot_free(struct emperor *e, struct vassal *v);
void emperor_status_notify(struct emperor *e);

#endif
