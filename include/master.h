/* master.h — the vassal master: one per vassal file. It owns the listening sockets,
 * the children (workers, mules, spooler, daemons, gateways, nested emperor), the
 * channel to the emperor and the signals. The modules of vassal/ share this struct;
 * a module with state of its own keeps it in its own struct, reached by one pointer
 * (reload.c's machine, mules.c's farms). */
#ifndef EMPEROR_MASTER_H
#define EMPEROR_MASTER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "child.h"
#include "config.h"
#include "notify.h"
#include "vsock.h"
#include "watch.h"

/* A master's life as others see it: a projection of the reload machine
 * (reload_fsm.h), written only by reload.c's fire(). */
enum master_state {
	MASTER_STARTING,  /* spawning; not every worker ready yet */
	MASTER_RUNNING,   /* every worker ready */
	MASTER_RELOADING, /* a reload runs (teardown, chain or workers mode) */
	MASTER_STOPPING,  /* graceful stop: teardown, then exit 0 */
};

/* Kinds of children, in the master's child set. */
enum master_kind { KIND_WORKER, KIND_MULE, KIND_SPOOLER, KIND_DAEMON, KIND_GATEWAY, KIND_EMPEROR,
		   KIND_CRON, /* crons and legion hooks: one-shot runs (cron.c) */
		   KIND_TEMPLATE /* workers.preload: a generation's template (preload.c) */ };

enum reload_how { RELOAD_AS_CONFIGURED, RELOAD_CHAIN };

struct master;

/* What a child kind's exit policy asks of its master (procs.c); master.c points them
 * at the reload machine, so a kind never calls up into it. */
struct master_child_hooks {
	/* true: an exiting child is not replaced (a teardown or stop is under way) */
	bool (*tearing_down)(const struct master *m);
	/* a child exited for good and its record is freed: the teardown may move on */
	void (*gone)(struct master *m);
};
struct relay_sink;

struct master {
	struct ev_loop *loop;
	char *exe;                  /* absolute path of this binary, for the re-exec */
	struct stat exe_st;         /* to notice a new binary */
	char *path;                 /* absolute path of the vassal file */
	struct config *cfg;         /* the config the current workers are spawned with */
	enum master_state state;    /* read-only outside reload.c */
	unsigned generation;        /* bumped by every reload, carried across the exec */
	struct vsock_table socks;
	struct child_set children;
	struct notify_server notify; /* NOTIFY_SOCKET given to workers */
	struct watch touch;          /* touch-reload files */
	int emperor_fd;              /* EMPEROR_FD, -1 without an emperor */
	ev_io emperor_io;
	ev_timer heartbeat;
	ev_signal sig_hup, sig_term, sig_int, sig_quit, sig_usr1, sig_usr2;
	struct reload *reload;       /* reload.c's machine */
	struct mules *mules;         /* mules.c's farm sockets */
	struct master_child_hooks child_hooks;
	struct relay_sink *out;      /* workers.c: where the workers' output lines go */
	ev_timer subscribe_timer;    /* gateway.c: announces subscribe: entries */
	uint64_t subscribe_failing;  /* gateway.c: entries whose last announce failed */
	struct status *status;       /* status.c: the status socket */
	struct legions *legions;     /* legion.c: the legions this vassal is a member of */
	struct crons *crons;         /* cron.c: scheduled programs and hook runs */
	struct spool_gauge *spool_gauge; /* spooler.c: the spool's task counts, for status.c */
	struct logfile *logfile;     /* logfile.c: the vassal's own log file, NULL without one */
	struct health *health;       /* health.c: the workers' limits, NULL until one is set */
	struct scale *scale;         /* scale.c: the workers' scaling, NULL without a range */
	struct idle *idle;           /* idle.c: the idle stop, NULL without `idle:` */
	struct preload *preload;     /* preload.c: the workers' templates, NULL until one */
	int reported_ready, reported_total; /* X_WORKERS= last sent to the emperor */
	unsigned reported_generation;       /* X_GENERATION= last sent to the emperor */
};

/* Sends an sd_notify message to the emperor (EMPEROR_FD) and to NOTIFY_SOCKET. */
void master_notify(struct master *m, const char *msg);
/* Called by the workers module whenever a worker becomes ready, fails or is gone. */
void master_worker_ready(struct master *m);
/* Exit status of the master for a bad config (EX_CONFIG). */
#define MASTER_EX_CONFIG 78

int master_main(const char *path);

#endif
