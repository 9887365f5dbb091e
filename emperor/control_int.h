/* control_int.h — what the files of the control module share, and nobody else:
 *   control.c         clients: accept (with caps), read, answer, deadlines; the socket
 *   control_cmd.c     the commands of a request line, and waiting for their outcome
 *   control_fetch.c   queries to the masters' status sockets, a few at a time
 *   control_render.c  the status table, the JSON, the Prometheus text, the figures
 *   control_http.c    the --metrics HTTP listener (http-parser): its routes
 *   control_page.c    the status page and /status.json, held until a change
 *   control_logs.c    `logs NAME [N] [follow]`: a vassal's last lines, and what follows
 * A client is one connection: it sends one request, gets one answer, and goes. */
#ifndef EMPEROR_CONTROL_INT_H
#define EMPEROR_CONTROL_INT_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "control.h"
#include "util.h"

#define CTL_READ_TIMEOUT 5.0    /* a client has this long to send its request */
#define CTL_WAIT_TIMEOUT 120.0  /* reload/stop/start answer at the latest after this */
#define CTL_FETCH_TIMEOUT 2.0   /* the masters have this long to answer, all together */
#define CTL_CLUSTER_TIMEOUT 8.0 /* `cluster`: etcd's answer (its request budget is 5 s) */
#define CTL_MAX_CLIENTS 64      /* control-socket clients at once; more get "ERR busy" */
#define CTL_MAX_HTTP_CLIENTS 16 /* --metrics clients at once; more get 503 */
#define CTL_FETCH_FANOUT 8      /* masters a client queries at once; the rest queue */
#define CTL_MAX_REFUSALS 64     /* refused connections kept until their client closes */
#define CTL_LINGER_TIMEOUT 1.0  /* ... for at most this long */
#define CTL_BUCKETS 13          /* reload-duration histogram buckets, 5 ms to 60 s */
#define CTL_RECENT 16           /* reload durations kept for the status page's chart */
#define CTL_PAGE_HOLD 25.0      /* /status.json?after=V is answered at the latest after this */
#define CTL_PAGE_TICK 0.2       /* ... and is checked for a change this often */
#define CTL_MAX_WATCHERS 32     /* pages held at once (not counted as HTTP clients while
				 * held, so that open pages never crowd out a scrape);
				 * more are answered at once */

struct emperor;
struct vassal;
struct client;
struct json_object;

/* What a client waits for: its vassals to be ready or stopped (control_cmd.c), its vassals
 * to have reopened their logs (reopen-logs), or the status page's next change (control_page.c). */
enum wait_kind { WAIT_NONE, WAIT_READY, WAIT_STOPPED, WAIT_CHANGE, WAIT_LOGS };

/* A master to query: its pid, and its vassal's name, which its answer must carry. */
struct fetch_target {
	pid_t pid;
	char *vassal;
};

/* A query to a master's status socket, on behalf of a client. */
struct fetch {
	TAILQ_ENTRY(fetch) link;
	struct client *cl;
	int fd;
	ev_io io;
	char request[16];
	size_t req_off;
	char *vassal;               /* the target's, owned */
	struct strbuf reply;
};
TAILQ_HEAD(fetch_list, fetch);

struct client {
	TAILQ_ENTRY(client) link;
	struct control *ctl;
	int fd;
	ev_io io;
	ev_timer timer;             /* the deadline of what the client waits for */
	char in[1024];              /* the request line (control socket) */
	size_t in_len;
	struct strbuf out;
	size_t out_off;
	bool answering;
	/* commands (control_cmd.c) */
	bool json;
	char name[256];             /* status NAME */
	enum wait_kind wait;
	char **waiting_for;         /* names still to become ready / stopped */
	int n_failed;
	struct strbuf notes;        /* per-vassal outcome lines */
	/* queries to masters (control_fetch.c) */
	struct fetch_list fetches;
	struct fetch_target *to_fetch; /* masters to query, FANOUT at a time */
	size_t n_to_fetch, next_fetch;
	char fetch_request[12];     /* json, text or metrics */
	struct strbuf gathered;     /* what they answered */
	struct etcd_cluster_query *cluster; /* `cluster`: the range read in flight */
	/* the metrics listener (control_http.c); NULL on the control socket */
	struct ctl_http *http;
	/* logs ... follow (control_logs.c): the client stays, name is the vassal's */
	bool following;
	unsigned long long dropped; /* lines it was too slow for, not said yet */
	/* /status.json (control_page.c) */
	bool page;                  /* the answer is the page's status JSON */
	char after[24];             /* the version the page has: held until another */
	struct json_object *masters; /* vassal name -> its master's JSON answer */
};
TAILQ_HEAD(client_list, client);

struct control {
	struct emperor *e;
	char path[PATH_MAX];
	int fd;
	ev_io io;
	struct client_list clients;
	int n_clients, n_http;      /* in clients, by listener */
	bool full_logged;           /* "busy" logged once per spell of refusals */
	TAILQ_HEAD(, refusal) refusals; /* control.c: answered, waiting for the client to close */
	int n_refusals;
	int http_fd;                /* the --metrics listener, -1 without */
	ev_io http_io;
	int n_watchers;             /* status pages waiting for a change (control_page.c) */
	int n_followers;            /* clients following a vassal's lines (control_logs.c) */
	ev_timer page_tick;         /* runs while there are some */
};

/* control.c */
void ctl_accept(struct control *ctl, int lfd, bool http);
/* The answer: "OK" or "ERR err", the notes, then out (over HTTP: a status line and
 * head from control_http.c, then out); the client goes once it is written. */
void ctl_answer(struct client *cl, bool ok, const char *err);
void ctl_client_free(struct client *cl);
/* A follower has more to write: its watcher waits for writability too. */
void ctl_follow_wake(struct client *cl);

/* control_cmd.c */
void ctl_dispatch(struct client *cl);
void ctl_cmd_metrics(struct client *cl);
/* Every master asked has answered, or the deadline came: the answer goes. */
void ctl_gathered(struct client *cl);

/* control_fetch.c */
void ctl_fetch_queue(struct client *cl, const struct vassal *v, const char *request);
/* Starts the queued queries, with CTL_FETCH_TIMEOUT for all; none: ctl_gathered now. */
void ctl_fetch_start(struct client *cl);
bool ctl_fetch_pending(const struct client *cl);
/* Drops every query (answered or not). */
void ctl_fetch_cancel(struct client *cl);
/* ... and the queue itself, when the client goes. */
void ctl_fetch_free(struct client *cl);

/* control_render.c */
void ctl_render_table(struct emperor *e, struct strbuf *b);
void ctl_render_json(struct emperor *e, struct strbuf *b);
/* The status document; masters (name -> a master's JSON, may be NULL) adds each
 * running vassal's generation; version: the table's ctl_page_version(). */
struct json_object *ctl_render_status_doc(struct emperor *e, struct json_object *masters);
void ctl_render_vassal_line(const struct vassal *v, struct strbuf *b);
/* A master's metrics answer, line by line: only the samples of a master's family
 * whose first label is vassal="<its own vassal>" are kept; the number dropped. A
 * master may run as another user: it speaks for its own vassal only. */
int ctl_render_master_samples(const char *reply, size_t len, const char *vassal, struct strbuf *b);
/* A master's text answer with every control character but newline shown as '?'. */
void ctl_render_master_text(const char *reply, size_t len, struct strbuf *b);
/* A master's JSON answer, checked and written again (null if it is not JSON). */
void ctl_render_master_json(const struct strbuf *reply, struct strbuf *b);
/* The emperor's families, then the masters' samples (gathered) under theirs. */
void ctl_render_metrics(struct emperor *e, const struct strbuf *gathered, struct strbuf *b);
unsigned ctl_reloads(const struct vassal *v);

/* control_logs.c */
void ctl_cmd_logs(struct client *cl, const char *name, const char *count, const char *follow);

/* control_page.c */
/* The page (emperor/page.html) and its length. */
const char *ctl_page_html(size_t *len);
/* A digest of what the page shows of every vassal: another value, another view. */
void ctl_page_version(struct emperor *e, char *buf, size_t len);
/* GET /status.json[?after=V]: answered now, or held until the version is not V. */
void ctl_page_status(struct client *cl, const char *query);
/* A master's JSON answer for the page: kept under its vassal's name. */
void ctl_page_keep(struct client *cl, const char *vassal, const struct strbuf *reply);
/* The masters answered: the status JSON goes. */
void ctl_page_gathered(struct client *cl);
/* A held client goes or is answered: no longer a watcher. */
void ctl_page_unwatch(struct client *cl);
/* Its hold ran out: answered with what there is. */
void ctl_page_expired(struct client *cl);
void ctl_page_close(struct control *ctl);

/* control_http.c */
int ctl_http_open(struct control *ctl, const char *addr);
void ctl_http_close(struct control *ctl);
int ctl_http_init(struct client *cl);
void ctl_http_free(struct client *cl);
/* Feeds n bytes of request; true once the whole request is in (or it is bad). */
bool ctl_http_read(struct client *cl, const char *buf, size_t n);
/* The request is in: routed (/, /status.json, /metrics), or the error its parse gave. */
void ctl_http_serve(struct client *cl);
/* The status line and head of the answer (its body: body_len bytes). */
void ctl_http_head(struct client *cl, bool ok, size_t body_len, struct strbuf *head);
/* The Content-Type of a 200 answer (the default: the Prometheus text). */
void ctl_http_set_type(struct client *cl, const char *content_type);
/* The whole answer to a client over the cap (why: the reason) in answer. */
void ctl_http_busy(const char *why, char *answer, size_t size);

#endif
