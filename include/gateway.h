/* gateway.h — gateways, the master's side: the router processes it forks (in-code
 * children, router.c) on the gateway sockets it binds (vsock.c), their request
 * counters for the metrics, and the `subscribe:` announcements to subscription
 * servers. The router's own modules: router.h (its process and connections),
 * http_head.h (the request head), subscription.h (the node table, the datagrams). */
#ifndef EMPEROR_GATEWAY_H
#define EMPEROR_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

struct strbuf;

/* A gateway's request counters, by status class, in total and per node-table key.
 * They live in a MAP_SHARED page the master maps before it first forks the router,
 * so they outlive the router's restarts (not the master's re-exec): the router adds
 * (its only writer, atomically), the master's status reads. */
#define GW_STATS_KEYS 32               /* keys counted one by one; later ones only in total */
#define GW_STATS_CLASSES 6             /* [1]..[5]: 1xx..5xx; [0]: anything else */
struct gw_key_stats {
	char key[64];
	uint64_t requests[GW_STATS_CLASSES];
};
struct gw_stats {
	uint64_t requests[GW_STATS_CLASSES];
	unsigned n_keys;                   /* written after the key's name (release) */
	struct gw_key_stats keys[GW_STATS_KEYS];
};

struct master;
/* Master side. */
int gateways_start(struct master *m);
/* Subscribes every `subscribe:` entry now and every SUB_PERIOD. */
void subscriptions_start(struct master *m);
/* With unsubscribe: stops announcing and withdraws every entry (a stop, or a reload
 * with unsubscribe-on-reload). Without: the announcements go on (a reload that keeps
 * its subscriptions: they stop with the re-exec, and the new image starts again). */
void subscriptions_stop(struct master *m, bool unsubscribe);
/* The entries with `legion: legion`: announced now (lord) or withdrawn (no longer lord);
 * the periodic announcement includes them only while this vassal is lord. */
void subscriptions_legion(struct master *m, const char *legion, bool lord);
/* Appends the Prometheus samples of m's gateways (emperor_gateway_requests_total,
 * emperor_gateway_key_requests_total) to b; vassal is the escaped label value. */
void gateways_metrics(const struct master *m, struct strbuf *b, const char *vassal);
/* The router process's entry point (an in-code child). */
struct proc;
int router_main(void *proc);
/* The gateway's listening and subscription sockets (bound by the master); *sub_fd is
 * -1 without a subscription server. */
int router_fds(struct proc *p, int *listen_fd, int *sub_fd);

#endif
