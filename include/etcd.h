/* etcd.h — an asynchronous etcd v3 client for a libev loop: key-value range/put/delete,
 * transactions, leases (with a keeper that renews and says when a lease is lost),
 * watches that survive reconnects, and elections. It speaks etcd's JSON gateway over
 * libcurl's multi interface, so no call ever blocks the loop; every operation ends in
 * a callback. Endpoints are tried in turn; when none answers, the client retries
 * with capped, jittered exponential backoff. docs/etcd-client.md tells the whole story.
 *
 * Callbacks run from the loop, never from inside a call of this API (except
 * etcd_client_free, which calls none). A callback may start or cancel operations but
 * must not free the client. Keys are C strings; values are bytes with a length. */
#ifndef EMPEROR_ETCD_H
#define EMPEROR_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct etcd_client;
struct etcd_req;

struct etcd_opts {
	const char *const *endpoints; /* "http://127.0.0.1:2379", "https://..." */
	int n_endpoints;
	const char *cacert;           /* --etcd-cacert: CA bundle to verify the server */
	const char *cert, *key;       /* --etcd-cert/--etcd-key: our client certificate */
	const char *user, *password;  /* etcd auth: /v3/auth/authenticate, then a token */
	double request_timeout;       /* s, a unary request's whole budget; 0: 5 */
	double connect_timeout;       /* s, one connection attempt; 0: 2 */
	double backoff_min;           /* s, first pause once no endpoint answers; 0: 0.1 */
	double backoff_max;           /* s, the cap of the doubling pause; 0: 3 */
};

/* NULL (and a logged reason) on bad options: no endpoint, a scheme other than http(s). */
struct etcd_client *etcd_client_new(struct ev_loop *loop, const struct etcd_opts *o);
/* Cancels everything without calling a callback; watches, leases and campaigns given
 * out must have been freed first. */
void etcd_client_free(struct etcd_client *c);
/* The endpoint requests go to now, and whether the last one answered. */
const char *etcd_client_endpoint(const struct etcd_client *c);
int etcd_client_connected(const struct etcd_client *c);

/* ---- unary operations --------------------------------------------------------------- */

struct etcd_kv {
	const char *key;   /* NUL-terminated copies, valid during the callback */
	size_t key_len;
	const char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct etcd_result {
	const char *error;       /* NULL on success, else why (etcd's message, or ours) */
	int code;                /* etcd's gRPC code for an error it answered; -1 ours */
	int64_t revision;        /* the store's revision in the answer's header */
	struct etcd_kv *kvs;     /* range; txn: those of its range operations */
	size_t n_kvs;
	int64_t count;           /* range: keys in range; delete: keys deleted */
	int succeeded;           /* txn: the compare held (success branch ran) */
	int64_t lease_id, ttl;   /* lease grant, keepalive (ttl 0: the lease is gone) */
};

/* r is valid during the call only. */
typedef void (*etcd_cb)(void *arg, const struct etcd_result *r);

enum etcd_range_flags {
	ETCD_PREFIX = 1 << 0,    /* every key that starts with key */
	ETCD_KEYS_ONLY = 1 << 1,
};

/* Each returns the pending request (for etcd_cancel) or NULL if it could not even be
 * started (out of memory; logged). Its callback is called exactly once otherwise. */
struct etcd_req *etcd_range(struct etcd_client *c, const char *key, int flags, int64_t revision,
			    etcd_cb cb, void *arg);
struct etcd_req *etcd_put(struct etcd_client *c, const char *key, const void *value, size_t len,
			  int64_t lease, etcd_cb cb, void *arg);
struct etcd_req *etcd_delete(struct etcd_client *c, const char *key, int flags, etcd_cb cb,
			     void *arg);
struct etcd_req *etcd_lease_grant(struct etcd_client *c, int64_t ttl, etcd_cb cb, void *arg);
struct etcd_req *etcd_lease_keepalive(struct etcd_client *c, int64_t id, etcd_cb cb, void *arg);
struct etcd_req *etcd_lease_revoke(struct etcd_client *c, int64_t id, etcd_cb cb, void *arg);

/* Transactions: enough for "put if absent" (create_revision == 0) and for guarding a
 * write by a key's value or mod_revision. */
enum etcd_cmp_target { ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VALUE,
		       ETCD_CMP_LEASE };
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL };
struct etcd_cmp {
	const char *key;
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	int64_t number;          /* version, create/mod revision, lease */
	const char *value;       /* ETCD_CMP_VALUE (a C string) */
};
enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };
struct etcd_op {
	enum etcd_op_type type;
	const char *key;
	int flags;               /* ETCD_PREFIX for range and delete */
	const void *value;       /* put */
	size_t value_len;
	int64_t lease;           /* put */
};
struct etcd_txn {
	const struct etcd_cmp *cmp;
	int n_cmp;
	const struct etcd_op *success, *failure;
	int n_success, n_failure;
};
struct etcd_req *etcd_txn(struct etcd_client *c, const struct etcd_txn *t, etcd_cb cb, void *arg);

/* Drops a pending request (one whose callback has not been called); the callback
 * never is. */
void etcd_cancel(struct etcd_req *r);

/* ---- watch ---------------------------------------------------------------------------- */

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };
struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;       /* a delete has key and mod_revision only */
};

struct etcd_watch_cbs {
	/* The watch is established (again): events after revision follow. Optional. */
	void (*ready)(void *arg, int64_t revision);
	void (*events)(void *arg, const struct etcd_event *ev, size_t n);
	/* Events from the revision wanted were compacted away: read the range again
	 * (etcd_range at the current revision) and etcd_watch_restart from that
	 * revision + 1. The watch is stopped until then. */
	void (*resync)(void *arg, int64_t compact_revision);
};

struct etcd_watch;
/* Watches key (or the prefix) from start_revision (0: from now). A broken stream is
 * re-established, on whatever endpoint answers, from the last revision seen + 1. */
struct etcd_watch *etcd_watch_new(struct etcd_client *c, const char *key, int flags,
				  int64_t start_revision, const struct etcd_watch_cbs *cbs,
				  void *arg);
void etcd_watch_restart(struct etcd_watch *w, int64_t start_revision);
int64_t etcd_watch_revision(const struct etcd_watch *w); /* the last one seen */
void etcd_watch_free(struct etcd_watch *w);

/* ---- lease keeper ----------------------------------------------------------------------- */

struct etcd_lease_cbs {
	void (*granted)(void *arg, int64_t id);
	/* Not renewed in time, or etcd says it is gone. Called before the lease can have
	 * expired on the server (a safety margin of a quarter of the TTL, at least 1 s, or
	 * the one given to etcd_lease_new_fence); the keeper has stopped; free it. */
	void (*lost)(void *arg, const char *why);
};
struct etcd_lease;
/* Grants a lease of ttl seconds (>= 2) and renews it every ttl/3 s. */
struct etcd_lease *etcd_lease_new(struct etcd_client *c, int64_t ttl,
				  const struct etcd_lease_cbs *cbs, void *arg);
/* The same for a lease that fences (a legion's lord): lost() comes `margin` s before the
 * lease can expire (counted from the send of the last renewal answered), and it is
 * renewed three times in between, every (ttl - margin) / 3 s. */
struct etcd_lease *etcd_lease_new_fence(struct etcd_client *c, int64_t ttl, double margin,
					const struct etcd_lease_cbs *cbs, void *arg);
/* A loop stopped (SIGSTOP) or starved past the time the lease is given up has timers
 * due in no set order: call this first thing in an iteration (an ev_check of the
 * highest priority). Past that time it calls lost() now and returns 1; else 0. */
int etcd_lease_check(struct etcd_lease *l);
int64_t etcd_lease_id(const struct etcd_lease *l); /* 0 until granted */
/* Stops renewing; etcd_lease_release also revokes it (its keys go at once). */
void etcd_lease_free(struct etcd_lease *l);
void etcd_lease_release(struct etcd_lease *l);

/* ---- election (etcd's v3election service) ---------------------------------------------- */

struct etcd_leader {
	const char *name;        /* the election */
	const char *key;         /* our key under it: name/<lease hex> */
	int64_t rev, lease;
	const char *value;       /* observe: the leader's value */
	size_t value_len;
};
/* leader is NULL when err is set. */
typedef void (*etcd_leader_cb)(void *arg, const struct etcd_leader *leader, const char *err);

struct etcd_campaign;
/* Campaigns on name with value, holding lease (from an etcd_lease). Pending until we
 * lead; then cb(arg, leader, NULL) once. A broken connection re-campaigns with the
 * same lease (etcd keeps our place). An error (lease gone) ends it: cb(arg, NULL, err). */
struct etcd_campaign *etcd_campaign_new(struct etcd_client *c, const char *name,
					const void *value, size_t len, int64_t lease,
					etcd_leader_cb cb, void *arg);
int etcd_campaign_leading(const struct etcd_campaign *cp);
/* Resigns if leading (a waiting candidate leads at once; done, which may be NULL, is
 * called when etcd has answered), or withdraws a pending campaign (done is not
 * called); frees cp either way. */
void etcd_campaign_resign(struct etcd_campaign *cp, etcd_cb done, void *arg);

struct etcd_observe;
/* Reports every change of leader of name (cb with the new leader), re-established
 * after a broken connection. */
struct etcd_observe *etcd_observe_new(struct etcd_client *c, const char *name, etcd_leader_cb cb,
				      void *arg);
void etcd_observe_free(struct etcd_observe *o);

/* ---- pure helpers (unit-tested) ------------------------------------------------------- */

/* malloc'd, NUL-terminated. Decode: NULL on bad input, the length in *out_len. */
char *etcd_b64_encode(const void *data, size_t len);
char *etcd_b64_decode(const char *text, size_t len, size_t *out_len);
/* The end of the range of keys with prefix key (last byte + 1, carrying); "\0" (all
 * keys) if key is empty or all 0xff. malloc'd, length in *out_len. */
char *etcd_prefix_end(const char *key, size_t len, size_t *out_len);
/* The pause before retry number attempt (0, 1, ...): min * 2^attempt capped at max,
 * then scaled by a jitter in [0.5, 1.0) given as unit in [0, 1). */
double etcd_backoff(int attempt, double min, double max, double unit);

/* The connection's state machine: one table, walked by etcd_conn_step. */
enum etcd_conn_state {
	ETCD_CONN_INIT,      /* never connected: trying the endpoints in turn */
	ETCD_CONN_UP,        /* the current endpoint answered last */
	ETCD_CONN_FAILOVER,  /* lost the current one: trying the others */
	ETCD_CONN_DOWN,      /* a whole round failed: waiting out the backoff */
	ETCD_CONN_RETRY,     /* the backoff ended: trying a round again */
	ETCD_CONN_NSTATES
};
enum etcd_conn_event {
	ETCD_EV_OK,          /* the current endpoint answered */
	ETCD_EV_FAIL,        /* it did not; another endpoint is left in this round */
	ETCD_EV_FAIL_LAST,   /* it did not, and it was the last of the round */
	ETCD_EV_TIMER,       /* the backoff ran out */
	ETCD_EV_NEVENTS
};
enum etcd_conn_action {
	ETCD_ACT_LOG_CONNECTED = 1 << 0,   /* "connected to X" */
	ETCD_ACT_LOG_RECONNECTED = 1 << 1, /* "reconnected to X after N ms" */
	ETCD_ACT_LOG_LOST = 1 << 2,        /* "lost X" */
	ETCD_ACT_LOG_DOWN = 1 << 3,        /* "no endpoint answers; retrying" */
	ETCD_ACT_NEXT = 1 << 4,            /* move to the next endpoint */
	ETCD_ACT_BACKOFF = 1 << 5,         /* arm the backoff timer (attempt + 1) */
	ETCD_ACT_FLUSH = 1 << 6,           /* send what waited for the backoff */
	ETCD_ACT_RESET = 1 << 7,           /* backoff attempt back to 0 */
};
/* The next state; the actions to take in *actions. */
enum etcd_conn_state etcd_conn_step(enum etcd_conn_state s, enum etcd_conn_event ev,
				    int *actions);
const char *etcd_conn_state_name(enum etcd_conn_state s);

#endif
