/* router.h — the router process of a gateway, shared by its three files (nothing
 * outside vassal/router*.c includes it):
 *   router.c         the process: loop, signals, accepting (with the per-client limit),
 *                    the subscription socket, the node table's state file, counters
 *   router_conn.c    a client connection's life: head, connect, events, timers, close
 *   router_stream.c  an exchange's bytes: request body and response streamed through
 *                    http-parser, keep-alive, the upgrade tunnel
 * docs/gateway.md is the user's reference. */
#ifndef EMPEROR_ROUTER_H
#define EMPEROR_ROUTER_H

#include <arpa/inet.h>
#include <ev.h>
#include <http_parser.h>
#include <stdbool.h>
#include <sys/queue.h>

#include "config.h"
#include "gateway.h"
#include "subscription.h"

#define RBUF 16384          /* bytes buffered from the backend; from the client, at least */
#define MAX_ATTEMPTS 8      /* connections tried for one request */
#define LINGER_S 2.0        /* after our last byte, how long the client has to close */
#define PEER_BUCKETS 1024   /* the per-client connection counts' hash table */

/* A client connection's state; the transitions are in router_conn.c and router_stream.c
 * (router_conn.c's header comment walks through them). */
enum rstate { R_HEAD, R_CONNECT, R_EXCHANGE, R_TUNNEL, R_LINGER };

struct router;

/* Connections open from one client address (max-connections-per-client). */
struct peer_count {
	LIST_ENTRY(peer_count) link;
	int n;
	char addr[INET6_ADDRSTRLEN];
};
LIST_HEAD(peer_bucket, peer_count);

struct rconn {
	TAILQ_ENTRY(rconn) link;
	struct router *r;
	enum rstate state;
	int cfd, bfd;
	ev_io cio, bio;
	ev_timer timer;
	http_parser reqp, resp;
	struct peer_count *peer_count;
	char peer[INET6_ADDRSTRLEN];
	char host[256];
	char key[64];                /* the node table's key that routed it, for the counters */
	bool head_only, client_keepalive, req_done, resp_done, resp_started;
	bool idempotent;             /* the request may be sent again (http_method_idempotent) */
	bool answered;               /* its status is counted (once per exchange) */
	bool counted;                /* this exchange is counted in node->active */
	bool reused;                 /* bfd was kept alive from an earlier exchange */
	bool body_sent;              /* a byte of the request body went to the backend */
	bool b_any, c_sent;          /* a byte came from the backend / went to the client */
	bool c_eof, b_eof;           /* the client / the backend has sent its FIN */
	bool c_shut, b_shut;         /* we shut down our writing side to it (tunnel) */
	struct sub_node *node;       /* the node bfd is connected to (held) */
	struct sub_node *tried[MAX_ATTEMPTS]; /* skipped for this request */
	int n_tried, attempts;
	unsigned served;             /* exchanges completed */
	char *head;                  /* the rewritten request head */
	size_t head_len, head_off;
	size_t blen, boff, b_fwd;    /* bbuf: [boff, blen) not yet handled; b_fwd: bytes at */
	size_t clen, coff, c_fwd;    /*   boff being written to the client. cbuf: the same, */
	size_t ccap;                 /*   from the client, ccap bytes */
	char bbuf[RBUF];
	char cbuf[];
};
TAILQ_HEAD(rconn_list, rconn);

/* Logs at most one line per second about one kind of event, counting the others. */
struct log_limit {
	ev_tstamp last;
	unsigned suppressed;
};

struct router {
	struct ev_loop *loop;
	const struct cfg_gateway *gw;
	struct sub_table table;
	struct rconn_list conns;
	int n_conns, listen_fd, sub_fd, sig_fd;
	int max_per_client;          /* max-connections-per-client, resolved */
	ev_io listen_io, sub_io, sig_io;
	ev_timer expire_timer;
	ev_timer save_timer;         /* the state file, debounced (SUB_SAVE_INTERVAL) */
	ev_tstamp saved_at;
	struct peer_bucket peers[PEER_BUCKETS];
	struct gw_stats *stats;      /* shared with the master (gateway.h) */
	struct log_limit refused_senders, refused_clients;
	bool stopping, done;
	uid_t uid;
	char who[32];
};

/* router_conn.c */
/* Accepted fd from peer (its address as text): a connection waiting for its head. */
struct rconn *rconn_new(struct router *r, int fd, const char *peer);
void rconn_close(struct rconn *c);
/* Between two requests, nothing of the next one received: closed by a stop. */
bool rconn_idle(const struct rconn *c);
void rconn_watch(struct rconn *c, ev_io *w, int fd, int events);
void rconn_arm_timer(struct rconn *c, double seconds);
void rconn_backend_close(struct rconn *c);
/* The exchange no longer counts as in flight on its node (least-conn). */
void rconn_uncount(struct rconn *c);
void rconn_linger(struct rconn *c);
void rconn_reply_error(struct rconn *c, int status, const char *reason);
void rconn_read_head(struct rconn *c);
/* The backend connection ended (or failed) before a byte of the answer came. */
void rconn_backend_failed(struct rconn *c, int err);
/* router_stream.c */
void rconn_exchange_begins(struct rconn *c);
void rconn_pump(struct rconn *c);
/* The backend's FIN (or error) in an exchange or a tunnel. */
void rconn_backend_ended(struct rconn *c, int err);
extern const http_parser_settings rconn_resp_settings;
/* router.c */
/* c is gone (closed and freed by rconn_close): the router's counts follow. */
void router_conn_gone(struct router *r, struct peer_count *pc);
/* An answer to a request went to the client (status: its code), routed by key. */
void router_count(struct router *r, const char *key, int status);

#endif
