/* etcd_status.h — the node's vassals published in etcd (emperor/etcd_status.c): one
 * key PREFIX/status/NODE/NAME per vassal, JSON (state, pid, generation, workers, last
 * exit, last config error), put after every change (bursts coalesced), under a lease
 * the node keeps alive, so that a dead node's keys vanish on their own. Also answers
 * `emperorctl cluster` from a range read of PREFIX/status/. */
#ifndef EMPEROR_ETCD_STATUS_H
#define EMPEROR_ETCD_STATUS_H

#include <stdbool.h>

#include "util.h"

struct emperor;
struct etcd_status;

struct etcd_status *etcd_status_open(struct emperor *e);
/* Something a vassal's key shows changed: a publish follows shortly. NULL: nothing. */
void etcd_status_dirty(struct etcd_status *s);

/* The cluster as text or JSON in out, then done(arg, error or NULL). NULL if it could
 * not be started (out of memory; done is not called). */
typedef void (*etcd_status_done)(void *arg, const char *error);
struct etcd_cluster_query;
struct etcd_cluster_query *etcd_status_cluster(struct etcd_status *s, bool json,
					       struct strbuf *out, etcd_status_done done,
					       void *arg);
/* Drops a query whose done has not been called; done never is. */
void etcd_status_cluster_cancel(struct etcd_cluster_query *q);

#endif
