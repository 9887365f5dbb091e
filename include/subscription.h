/* subscription.h — the router's node table and the subscription protocol.
 *
 * The table maps keys (a Host: "app.example.com", "*.example.com", "" the default) to
 * the nodes subscribed under them, picks one per new backend connection (weighted
 * round robin or least-conn), expires nodes not heard from, and saves itself to a
 * state file so that a restarted router keeps routing.
 *
 * Subscription protocol: one unix datagram per message, text lines:
 *     subscribe|unsubscribe\n key=HOST\n address=ADDR\n weight=N\n
 * ADDR is a listen address as in the config ("127.0.0.1:8001", "[::1]:8001",
 * "unix:/path"). The router checks the sender's uid (SO_PASSCRED). A node not heard
 * from for SUB_EXPIRE_PERIODS subscription periods is dropped. docs/gateway.md is the
 * user's reference.
 *
 * A connection of the router points at the node it talks to (sub_node_hold); a node
 * dropped from the table meanwhile stays allocated, off every key, until the last
 * such connection lets go of it (sub_node_release). */
#ifndef EMPEROR_SUBSCRIPTION_H
#define EMPEROR_SUBSCRIPTION_H

#include <ev.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "config.h"

#define SUB_PERIOD 5.0            /* seconds between a subscriber's announcements */
#define SUB_EXPIRE_PERIODS 3
#define SUB_NODE_DOWN 5.0         /* a node that refused a connection is skipped this long */
#define SUB_SAVE_INTERVAL 0.2     /* the router writes its state file at most this often */

struct sub_node {
	TAILQ_ENTRY(sub_node) link;
	struct cfg_addr addr;
	int weight;
	ev_tstamp last_seen;          /* 0: static (a `to:` socket), never expires */
	ev_tstamp down_until;
	int active;                   /* exchanges in flight (least-conn) */
	int rr_credit;                /* smooth weighted round robin */
	int refs;                     /* connections pointing at it (sub_node_hold) */
	bool retired;                 /* dropped while referenced: on sub_table.retired */
};
TAILQ_HEAD(sub_node_list, sub_node);

struct sub_key {
	TAILQ_ENTRY(sub_key) link;
	char *key;                    /* "app.example.com", "*.example.com", "" (default) */
	struct sub_node_list nodes;
};
TAILQ_HEAD(sub_key_list, sub_key);

struct sub_table {
	struct sub_key_list keys;
	enum cfg_balance balance;
	const char *who;              /* for the log: "gateway 1" */
	char *state_path;             /* NULL, or where the nodes are saved on a change */
	struct sub_node_list retired; /* dropped nodes some connection still points at */
	/* NULL: every change is saved at once; else called instead, and the owner saves
	 * when it likes (the router: at most every SUB_SAVE_INTERVAL, and at its exit) */
	void (*on_change)(struct sub_table *t);
};

void sub_table_init(struct sub_table *t, enum cfg_balance balance, const char *who);
void sub_table_fini(struct sub_table *t);
/* Adds or refreshes a node (last_seen = now, or 0 for a static one). */
void sub_table_add(struct sub_table *t, const char *key, const struct cfg_addr *addr,
		   int weight, ev_tstamp now);
void sub_table_remove(struct sub_table *t, const char *key, const struct cfg_addr *addr);
/* Drops nodes not heard from in time; returns how many. */
int sub_table_expire(struct sub_table *t, ev_tstamp now);
/* When the next node will have to go if not heard from again; 0 if none can expire. */
ev_tstamp sub_table_next_expiry(const struct sub_table *t);
/* The nodes for a Host ("name[:port]"): exact key, then *.parent domains, then the
 * default key ""; NULL if none. */
struct sub_key *sub_table_lookup(struct sub_table *t, const char *host);
/* Picks a node of k that is not down and not in skip[]; NULL if none. */
struct sub_node *sub_pick(struct sub_table *t, struct sub_key *k, ev_tstamp now,
			  struct sub_node *const *skip, int n_skip);
int sub_table_count(const struct sub_table *t);
/* A connection starts / stops pointing at n; a retired node is freed at the last. */
void sub_node_hold(struct sub_node *n);
void sub_node_release(struct sub_table *t, struct sub_node *n);
/* Saves the subscribed nodes to t->state_path (atomically), or restores them from
 * it as if just heard from: a restarted router keeps routing. */
int sub_table_save(const struct sub_table *t);
int sub_table_restore(struct sub_table *t, ev_tstamp now);

/* Parses one datagram. Returns 1 subscribe, 0 unsubscribe, -1 malformed (why set).
 * The key is lowercased; it must be 1..keylen-1 printable characters without spaces.
 * A missing, malformed or out-of-range (1..1000) weight is 1. */
int sub_parse(const char *msg, char *key, size_t keylen, struct cfg_addr *addr, int *weight,
	      const char **why);
/* Formats one datagram into buf; returns its length. */
int sub_format(char *buf, size_t len, bool subscribe, const char *key, const char *addr,
	       int weight);
/* Sends one datagram to a subscription server (non-blocking, fire and forget). */
int sub_send(const struct cfg_addr *server, const char *msg, int len);

#endif
