/* etcd_feed.h — vassals fed by etcd (emperor/etcd_feed.c). The keys
 * PREFIX/vassals/all/FILE and PREFIX/vassals/NODE/FILE (the node's own wins) are
 * mirrored into a private directory, one FILE per effective key, written atomically;
 * the emperor scans that directory beside its own (scan.c), so a key is a vassal
 * file in every respect: a new value starts or reloads it after validation, the same
 * value written again touches it, a delete stops it. The mirror keeps what the node
 * last knew while etcd is unreachable, across an emperor restart too. */
#ifndef EMPEROR_ETCD_FEED_H
#define EMPEROR_ETCD_FEED_H

#include <stdbool.h>
#include <stddef.h>

struct emperor;
struct etcd_feed;
struct etcd_client;

/* The --etcd options; endpoints NULL: no etcd. */
struct etcd_feed_opts {
	const char *endpoints;      /* comma-separated URLs */
	const char *prefix;         /* "/emperor" */
	const char *node;           /* this node's name; default: the host name */
	const char *cache_dir;      /* the mirror; NULL: beside the control socket */
	const char *cacert, *cert, *key;
	const char *user, *password, *password_file;
};

/* The feed's connection to the keys (one table, etcd_feed_step). */
enum etcd_feed_state {
	FEED_READING,       /* the first range read is in flight */
	FEED_SYNCED,        /* the mirror matches the range read; the watch carries changes */
	FEED_RESYNCING,     /* the watch lost events to a compaction: reading the range again */
	FEED_UNREACHABLE,   /* a read failed: the mirror stays as it was; a retry is timed */
	FEED_RETRYING,      /* ... the retry is in flight (failing again says nothing) */
	FEED_NSTATES
};
enum etcd_feed_event {
	FEED_EV_READ_OK,    /* a range read answered: the mirror reconciled with it */
	FEED_EV_READ_FAILED,
	FEED_EV_COMPACTED,  /* the watch's next revision was compacted away */
	FEED_EV_RETRY_DUE,
	FEED_EV_NEVENTS
};
enum etcd_feed_action {
	FEED_ACT_NONE = 0,
	FEED_ACT_WATCH = 1 << 0,     /* (re)start the watch after the revision read */
	FEED_ACT_READ = 1 << 1,      /* read the range */
	FEED_ACT_RETRY = 1 << 2,     /* arm the retry timer (backoff) */
	FEED_ACT_LOG = 1 << 3,       /* one line: the new state */
	FEED_ACT_IMPOSSIBLE = 1 << 4,
};
/* The next state; its actions in *actions. Pure. */
enum etcd_feed_state etcd_feed_step(enum etcd_feed_state s, enum etcd_feed_event ev,
				    int *actions);
const char *etcd_feed_state_name(enum etcd_feed_state s);

/* The file name a key under PREFIX/vassals/LAYER/ stands for, checked:
 * [A-Za-z0-9._-]+ ending in .yaml or .yml, not hidden, at most 250 bytes. NULL (and
 * *why) otherwise. Pure. */
bool etcd_feed_file_ok(const char *file, size_t len, const char **why);

/* Sets e->etcd_dir and starts reading; -1 (logged) if the options or the mirror
 * directory are unusable. The client is shared with etcd_status.c. */
int etcd_feed_open(struct emperor *e);
struct etcd_client *etcd_feed_client(const struct etcd_feed *f);
enum etcd_feed_state etcd_feed_state(const struct etcd_feed *f);

#endif
