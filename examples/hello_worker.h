/* hello_worker.h — what the files of the reference worker share:
 *   hello-worker.c      the contract: options, sockets by LISTEN_FDS, sd_notify, the
 *                       graceful stop, main
 *   hello_conn.c        the HTTP side: connections, requests (http-parser), responses
 *   hello_accept.c      taking connections: an acceptor thread, EPOLLEXCLUSIVE
 *   worker_test_opts.c  the misbehaviours only the tests need (--ignore-stop, ...)
 * One process, one libev loop (and the acceptor thread that feeds it); these structs
 * are the worker's whole state. */
#ifndef HELLO_WORKER_H
#define HELLO_WORKER_H

#include <ev.h>
#include <http_parser.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "worker_test_opts.h"

#define EXIT_USAGE      2
#define LISTEN_FDS_START 3
#define LISTEN_MAX      64         /* sockets accepted from LISTEN_FDS */
#define HEAD_MAX        16384      /* request head limit: larger gets 431 */
#define URL_MAX         2048       /* request target limit: longer gets 414 */
#define IN_MAX          16384      /* read buffer: pipelined requests wait here */
#define OUT_MAX         1024       /* one response, head and body */
#define SLOW_MAX_MS     600000L    /* /slow?ms=N upper bound */
#define LINGER_S        2.0        /* wait for the client's FIN after our last response */
#define IDLE_GRACE_S    0.1        /* on stop, an idle keep-alive connection's last chance */
#define ACCEPT_PAUSE_S  0.1        /* accept paused this long after EMFILE/ENFILE */
#define NAME_MAX_LEN    64         /* worker id, greeting, socket name */

#define CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct options {
	const char *greeting;
	long delay_ms;        /* added to every response */
	int no_ready;
	long ready_delay_ms;
	long start_delay_ms;  /* neither accept nor READY=1 before this long */
	long start_cpu_ms;    /* CPU time burnt before the loop: an app that loads */
	long max_conns;       /* connections served at once, 0 = no limit; more wait in the
	                       * listening socket's accept queue (a worker of N threads) */
	struct test_opts test; /* worker_test_opts.c */
};

struct listener {
	int fd;
	char name[NAME_MAX_LEN];
	struct worker *w;
};

enum route { ROUTE_HELLO, ROUTE_SLOW, ROUTE_PID };

/* One request, as http-parser reports it. status is 200 or the error to answer. */
struct request {
	int status;
	int head_only;
	int keep_alive;
	enum route route;
	long slow_ms;
	size_t url_len;
	char url[URL_MAX];
	char detail[160];     /* the body of an error answer, when more than its reason */
};

/* A connection's life: READ (http-parser fed until a whole request, body included,
 * is in; idle when none has begun) -> DELAY (response timer) -> WRITE -> READ again
 * on keep-alive, or LINGER (our side shut, waiting for the client's FIN) -> closed. */
enum conn_state { CONN_READ, CONN_DELAY, CONN_WRITE, CONN_LINGER };

struct conn {
	TAILQ_ENTRY(conn) link;
	struct worker *w;
	ev_io io;
	ev_timer timer;       /* response delay, then linger deadline */
	int fd;
	enum conn_state state;
	http_parser parser;
	int in_request;       /* a request has begun and is not complete */
	int complete;         /* the parser paused on a complete request */
	struct request rq;
	size_t in_len;        /* bytes of in[] not yet given to the parser */
	size_t out_len, out_off;
	int keep_alive;       /* of the response being written */
	unsigned served;      /* responses written; 0: its first request may be on its way */
	ev_tstamp busy_since; /* worker_health.c: its request began then; 0 = none */
	char in[IN_MAX];
	char out[OUT_MAX];
};

TAILQ_HEAD(conn_list, conn);

/* hello_accept.c's thread and what it hands to the loop, under mu. */
struct acceptor {
	pthread_t thread;
	int running;
	int epfd;             /* the listening sockets (EPOLLEXCLUSIVE) and stop_fd */
	int stop_fd;          /* eventfd: the acceptor ends */
	int exclusive;        /* EPOLLEXCLUSIVE accepted by the kernel */
	ev_async async;       /* connections queued for the loop */
	pthread_mutex_t mu;
	pthread_cond_t cv;    /* the loop took the queue, or stop */
	int stop;
	int *fds;
	size_t n_fds, cap;
	size_t open, max;     /* --max-conns: connections taken and not closed; 0 = no cap */
};

struct worker {
	struct ev_loop *loop;
	struct options opt;
	const char *id;
	pid_t pid;
	struct listener *ls;
	size_t n_ls;
	struct conn_list conns;
	size_t n_conns;
	int stopping;
	ev_signal sigterm, sighup, sigint, sigquit;
	ev_timer ready_timer;
	ev_timer start_timer; /* --start-delay */
	struct acceptor acc;
	ev_timer watchdog;    /* worker_health.c: WATCHDOG=1 */
	int report_busy;      /* worker_health.c: VASSAL_STALL_USEC is set */
	size_t n_busy;        /* worker_health.c: connections with a request unanswered */
};

/* hello-worker.c */
/* Logs "fatal: ..." and exits with status. */
__attribute__((format(printf, 2, 3))) _Noreturn void die(int status, const char *fmt, ...);
/* Sends one sd_notify datagram to $NOTIFY_SOCKET (failures logged). */
void notify(const char *msg);
/* The last connection of a stopping worker is gone: the loop ends, exit 0. */
void worker_stopped(struct worker *w);

/* hello_accept.c */
/* Starts taking connections on w->ls (the acceptor thread). */
void accept_start(struct worker *w);
/* A connection is closed: under --max-conns, the acceptor may take one more. */
void accept_closed(struct worker *w);
/* Stops taking them (those taken are served), closes the listening sockets. */
void listeners_close(struct worker *w);
/* worker_health.c */
/* WATCHDOG=1 pings if WATCHDOG_USEC asks for them; X_BUSY reports if VASSAL_STALL_USEC. */
void health_start(struct worker *w);
/* A request of c is read in full (busy) / answered or dropped (idle). */
void health_busy(struct conn *c);
void health_idle(struct conn *c);

/* hello_conn.c */
void conn_new(struct worker *w, int fd);
/* Between two requests on a keep-alive connection: closed by a graceful stop. */
int conn_idle(const struct conn *c);
/* Accepted, nothing read yet: in flight, not idle; LINGER_S for its request. */
int conn_unread(const struct conn *c);
void conn_await_first(struct conn *c);
/* On stop: IDLE_GRACE_S for a request already on its way, then closed. */
void conn_await_last(struct conn *c);

#endif
