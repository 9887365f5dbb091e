/* hello-worker.c — the reference worker: a small HTTP/1.1 server that takes its
 * listening sockets by systemd socket activation (LISTEN_FDS), tells its master it is
 * ready over sd_notify (NOTIFY_SOCKET) and, on SIGTERM or SIGHUP, stops gracefully:
 * it stops accepting, answers the requests in flight, closes idle connections and
 * exits 0. One process, one libev loop, non-blocking sockets, HTTP parsed by
 * http-parser. docs/worker.md is the
 * contract it demonstrates; the test-only options (--ignore-stop, --fork-sleeper,
 * --exit-after, --fail-start, --fail-if-id, --no-ready) let the tests play a badly
 * behaved worker.
 * Exit status: 0 stopped as asked, 1 failure, 2 usage error or no sockets,
 * 128+N on SIGINT/SIGQUIT (N the signal). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <http_parser.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

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
	int ignore_stop;      /* SIGTERM/SIGHUP are logged and ignored */
	int fork_sleeper;     /* a child in our process group that pause()s forever */
	long exit_after_ms;   /* 0 = never */
	int fail_start;
	long fail_if_id;      /* exit 1 at once when VASSAL_WORKER_ID is this; 0 = never */
	int no_ready;
	long ready_delay_ms;
};

struct listener {
	ev_io io;
	ev_timer pause;       /* accept paused after running out of fds */
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
	char in[IN_MAX];
	char out[OUT_MAX];
};

TAILQ_HEAD(conn_list, conn);

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
	ev_timer ready_timer, exit_timer;
	pid_t sleeper_pid;    /* --fork-sleeper, else 0 */
	ev_child sleeper;
};

static void conn_advance(struct conn *c);
static void conn_write(struct conn *c);

/* Like log_fatal, with the exit status given. */
__attribute__((format(printf, 2, 3))) static _Noreturn void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(status);
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hello-worker [options]   (run under a vassal: sockets come by LISTEN_FDS)\n"
		"  --greeting WORD     first word of the body (default: $GREETING or \"hello\")\n"
		"  --delay MS          delay every response by MS milliseconds\n"
		"  --ignore-stop       log and ignore SIGTERM/SIGHUP (tests of the mercy kill)\n"
		"  --fork-sleeper      fork a child that sleeps forever in our process group\n"
		"  --exit-after MS     exit 1 after MS milliseconds (crash-loop tests)\n"
		"  --fail-start        exit 1 at once (crash-loop tests)\n"
		"  --fail-if-id N      exit 1 at once if VASSAL_WORKER_ID is N (one bad worker)\n"
		"  --no-ready          never send READY=1 to NOTIFY_SOCKET\n"
		"  --ready-delay MS    send READY=1 only MS milliseconds after start\n"
		"  --help              this text\n"
		"Paths: / and any other answer \"GREETING from pid PID worker ID\"; /slow?ms=N\n"
		"  /mule?farm=NAME&msg=TEXT sends TEXT to the mule farm NAME (MULE_NAME_SOCKET)\n"
		"answers after N ms; /pid answers the pid.\n");
}

static long parse_ms(const char *opt, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 24L * 3600 * 1000)
		die(EXIT_USAGE, "%s: \"%s\" is not a number of milliseconds", opt, s);
	return v;
}

static long parse_id(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 1024)
		die(EXIT_USAGE, "--fail-if-id: \"%s\" is not a worker id (1..1024)", s);
	return v;
}

/* A value that goes into a header: printable, no spaces, bounded. */
static int header_safe(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= NAME_MAX_LEN)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 127)
			return 0;
	return 1;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"greeting", required_argument, NULL, 'g'}, {"delay", required_argument, NULL, 'd'},
		{"ignore-stop", no_argument, NULL, 'i'}, {"fork-sleeper", no_argument, NULL, 's'},
		{"exit-after", required_argument, NULL, 'x'}, {"fail-start", no_argument, NULL, 'f'},
		{"fail-if-id", required_argument, NULL, 'F'},
		{"no-ready", no_argument, NULL, 'n'}, {"ready-delay", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *greeting = getenv("GREETING");
	int ch;

	o->greeting = greeting && *greeting ? greeting : "hello";
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'g': o->greeting = optarg; break;
		case 'd': o->delay_ms = parse_ms("--delay", optarg); break;
		case 'i': o->ignore_stop = 1; break;
		case 's': o->fork_sleeper = 1; break;
		case 'x': o->exit_after_ms = parse_ms("--exit-after", optarg); break;
		case 'f': o->fail_start = 1; break;
		case 'F': o->fail_if_id = parse_id(optarg); break;
		case 'n': o->no_ready = 1; break;
		case 'r': o->ready_delay_ms = parse_ms("--ready-delay", optarg); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(EXIT_USAGE);
		}
	}
	if (optind < argc)
		die(EXIT_USAGE, "unexpected argument \"%s\" (see --help)", argv[optind]);
	if (!header_safe(o->greeting))
		die(EXIT_USAGE, "greeting \"%s\": expected one printable word under %d bytes",
		    o->greeting, NAME_MAX_LEN);
}

/* ---- sd_notify ---------------------------------------------------------------- */

/* Sends one datagram to $NOTIFY_SOCKET ("/path" or "@abstract"). Failures are
 * logged: a worker keeps serving even if its master cannot hear it. */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || !*path)
		return;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
		log_warn("NOTIFY_SOCKET=%s: expected an absolute path or @name; not notifying", path);
		return;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_errno("notify: socket(AF_UNIX, SOCK_DGRAM)");
		return;
	}
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_errno("notify: sendto NOTIFY_SOCKET=%s", path);
	if (close(fd) < 0)
		log_errno("notify: close");
}

/* ---- socket activation -------------------------------------------------------- */

static void describe_addr(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;
	socklen_t len = sizeof ss;
	size_t path_len;
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, size, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		log_errno("getsockname(fd %d)", fd);
		return;
	}
	path_len = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (ss.ss_family == AF_INET && inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip))
		snprintf(buf, size, "%s:%d", ip, ntohs(in4->sin_port));
	else if (ss.ss_family == AF_INET6 && inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip))
		snprintf(buf, size, "[%s]:%d", ip, ntohs(in6->sin6_port));
	else if (ss.ss_family == AF_UNIX && path_len > 0 && un->sun_path[0] == '\0')
		snprintf(buf, size, "unix:@%.*s", (int)(path_len - 1), un->sun_path + 1);
	else if (ss.ss_family == AF_UNIX && path_len > 0)
		snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, path_len), un->sun_path);
}

/* Checks that fd is a listening stream socket, makes it CLOEXEC and non-blocking. */
static void listener_take(struct listener *l, struct worker *w, int fd, const char *name)
{
	int type = 0, listening = 0, fl;
	socklen_t len = sizeof type;
	struct stat st;
	char addr[160];

	l->w = w;
	l->fd = fd;
	snprintf(l->name, sizeof l->name, "%s", name);
	if (fstat(fd, &st) < 0)
		die(EXIT_USAGE, "LISTEN_FDS: fd %d (%s): %s", fd, name, strerror(errno));
	if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    (len = sizeof listening, getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) < 0 ||
	    type != SOCK_STREAM || !listening)
		die(EXIT_USAGE, "LISTEN_FDS: fd %d (%s) is not a listening stream socket", fd, name);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		log_fatal("fcntl(fd %d): %s", fd, strerror(errno));
	describe_addr(fd, addr, sizeof addr);
	log_info("listening on fd %d (%s): %s", fd, name, addr);
}

/* The name of socket i in a copy of LISTEN_FDNAMES ("a:b:c"); "unknown" if absent. */
static const char *fd_name(char *names, size_t i, char **save)
{
	char *tok = strtok_r(i == 0 ? names : NULL, ":", save);

	return tok && *tok ? tok : "unknown";
}

static void take_listen_fds(struct worker *w)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	const char *fdnames = getenv("LISTEN_FDNAMES");
	char *names = strdup(fdnames ? fdnames : "");
	char *end, *save = NULL;
	long n;

	if (!names)
		log_fatal("out of memory");
	if (!fds)
		die(EXIT_USAGE, "no sockets: expected LISTEN_FDS/LISTEN_PID (socket "
				"activation); run it under a vassal");
	if (pid && (strtol(pid, &end, 10) != (long)w->pid || *end))
		die(EXIT_USAGE, "no sockets: LISTEN_PID=%s is not our pid %d (the "
				"sockets were meant for another process); run it under a vassal",
		    pid, (int)w->pid);
	if (!pid)
		log_warn("LISTEN_FDS without LISTEN_PID: taking the sockets anyway");
	errno = 0;
	n = strtol(fds, &end, 10);
	if (errno || end == fds || *end || n < 1 || n > LISTEN_MAX)
		die(EXIT_USAGE, "LISTEN_FDS=%s: expected 1 to %d sockets", fds, LISTEN_MAX);
	if (unsetenv("LISTEN_FDS") < 0 || unsetenv("LISTEN_PID") < 0 || unsetenv("LISTEN_FDNAMES") < 0)
		log_fatal("unsetenv(LISTEN_*): %s", strerror(errno));
	w->ls = calloc((size_t)n, sizeof *w->ls);
	if (!w->ls)
		log_fatal("out of memory");
	w->n_ls = (size_t)n;
	for (size_t i = 0; i < w->n_ls; i++)
		listener_take(&w->ls[i], w, LISTEN_FDS_START + (int)i, fd_name(names, i, &save));
	free(names);
}

/* ---- connections -------------------------------------------------------------- */

static void worker_stopped(struct worker *w)
{
	log_info("stopped");
	ev_break(w->loop, EVBREAK_ALL);
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;

	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	if (close(c->fd) < 0)
		log_errno("close(connection fd %d)", c->fd);
	TAILQ_REMOVE(&w->conns, c, link);
	free(c);
	w->n_conns--;
	if (w->stopping && w->n_conns == 0)
		worker_stopped(w);
}

/* Watches fd for events (EV_READ, EV_WRITE or 0). */
static void conn_watch(struct conn *c, int events)
{
	if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(c->w->loop, &c->io);
	if (!events)
		return;
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->w->loop, &c->io);
}

/* After the last response: shut our side and wait (bounded) for the client's FIN, so
 * that unread input does not turn our close into a reset that eats the response. */
static void conn_linger(struct conn *c)
{
	c->state = CONN_LINGER;
	if (shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->in_len = 0;
	ev_timer_stop(c->w->loop, &c->timer);
	ev_timer_set(&c->timer, LINGER_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
	conn_watch(c, EV_READ);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

static void response_body(const struct conn *c, char *body, size_t size)
{
	const struct worker *w = c->w;

	if (c->rq.status != 200)
		snprintf(body, size, "%s\n", c->rq.detail[0] ? c->rq.detail : reason(c->rq.status));
	else if (c->rq.route == ROUTE_PID)
		snprintf(body, size, "%d\n", (int)w->pid);
	else
		snprintf(body, size, "%s from pid %d worker %s\n", w->opt.greeting, (int)w->pid, w->id);
}

static void conn_respond_now(struct conn *c)
{
	struct worker *w = c->w;
	char body[sizeof c->rq.detail + NAME_MAX_LEN * 2];
	int n;

	c->keep_alive = c->rq.status == 200 && c->rq.keep_alive && !w->stopping;
	response_body(c, body, sizeof body);
	n = snprintf(c->out, sizeof c->out,
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "X-Worker-Pid: %d\r\nX-Worker-Id: %s\r\n%sConnection: %s\r\n\r\n%s",
		     c->rq.status, reason(c->rq.status), strlen(body), (int)w->pid, w->id,
		     c->rq.status == 405 ? "Allow: GET, HEAD, POST\r\n" : "",
		     c->keep_alive ? "keep-alive" : "close", c->rq.head_only ? "" : body);
	c->out_len = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
	c->out_off = 0;
	c->state = CONN_WRITE;
	conn_write(c);
}

/* The request is read in full: answer now or after /slow's and --delay's wait. */
static void conn_respond(struct conn *c)
{
	long ms = c->w->opt.delay_ms + (c->rq.route == ROUTE_SLOW ? c->rq.slow_ms : 0);

	if (c->rq.status != 200 || ms == 0) {
		conn_respond_now(c);
		return;
	}
	if (c->rq.route == ROUTE_SLOW)
		log_info("slow request: answering in %ld ms", ms);
	c->state = CONN_DELAY;
	conn_watch(c, 0);
	ev_timer_set(&c->timer, (double)ms / 1000., 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

static void conn_after_response(struct conn *c)
{
	c->served++;
	if (!c->keep_alive || c->w->stopping) {
		conn_linger(c);
		return;
	}
	c->state = CONN_READ;
	conn_advance(c);
}

static void conn_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(c, EV_WRITE);
			return;
		}
		if (n < 0) {
			if (errno != EPIPE && errno != ECONNRESET)
				log_errno("send(connection fd %d)", c->fd);
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_after_response(c);
}

/* ---- requests: http-parser ------------------------------------------------------ */

/* "ms=N" among the &-separated parameters of query. */
static int parse_slow_query(char *query, long *ms)
{
	char *save = NULL, *end;

	for (char *p = strtok_r(query, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
		if (strncmp(p, "ms=", 3) != 0)
			continue;
		errno = 0;
		*ms = strtol(p + 3, &end, 10);
		return errno || end == p + 3 || *end || *ms < 0 || *ms > SLOW_MAX_MS ? -1 : 0;
	}
	return -1;
}

/* /mule?farm=NAME&msg=TEXT: one datagram to the farm's MULE_<NAME>_SOCKET. */
static int mule_send(char *query, struct request *rq)
{
	char *save = NULL, *farm = NULL, *msg = NULL, key[96], *addr;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, rc;

	for (char *p = strtok_r(query, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
		if (strncmp(p, "farm=", 5) == 0)
			farm = p + 5;
		else if (strncmp(p, "msg=", 4) == 0)
			msg = p + 4;
	}
	if (!farm || !msg || strlen(farm) > 64)
		return 400;
	snprintf(key, sizeof key, "MULE_%s_SOCKET", farm);
	for (char *k = key; *k; k++)
		*k = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
	addr = getenv(key);
	if (!addr || strlen(addr) >= sizeof sun.sun_path) {
		snprintf(rq->detail, sizeof rq->detail, "no mule farm \"%s\" (no %s in the environment)",
			 farm, key);
		return 404;
	}
	memcpy(sun.sun_path, addr, strlen(addr));
	if (addr[0] == '@')
		sun.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 503;
	rc = (int)sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sun,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr)));
	if (rc < 0)
		log_errno("mule message to %s", addr);
	close(fd);
	return rc < 0 ? 503 : 200;
}

/* The route of the request target (in place): 200 or an error status. */
static int parse_target(char *target, struct request *rq)
{
	char *query = strchr(target, '?');

	if (target[0] != '/')
		return 400;
	if (query)
		*query++ = '\0';
	if (strcmp(target, "/pid") == 0)
		rq->route = ROUTE_PID;
	if (strcmp(target, "/mule") == 0)
		return query ? mule_send(query, rq) : 400;
	if (strcmp(target, "/slow") != 0)
		return 200;
	rq->route = ROUTE_SLOW;
	return query && parse_slow_query(query, &rq->slow_ms) == 0 ? 200 : 400;
}

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	memset(&c->rq, 0, sizeof c->rq);
	c->rq.status = 200;
	c->in_request = 1;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct request *rq = &((struct conn *)p->data)->rq;

	if (rq->url_len + len >= sizeof rq->url) {
		rq->status = 414;
		return 0;
	}
	memcpy(rq->url + rq->url_len, at, len);
	rq->url_len += len;
	rq->url[rq->url_len] = '\0';
	return 0;
}

/* The head is in: method, version and target decide the answer. */
static int on_headers_complete(http_parser *p)
{
	struct request *rq = &((struct conn *)p->data)->rq;

	rq->head_only = p->method == HTTP_HEAD;
	if (rq->status != 200)
		return 0;
	if (p->http_major != 1 || p->http_minor > 1)
		rq->status = 505;
	else if (p->method != HTTP_GET && p->method != HTTP_HEAD && p->method != HTTP_POST)
		rq->status = 405;
	else
		rq->status = parse_target(rq->url, rq);
	return 0;
}

/* A whole request (its body read and dropped): pause, to answer it before the next. */
static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->rq.keep_alive = http_should_keep_alive(p);
	c->in_request = 0;
	c->complete = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* ---- input ------------------------------------------------------------------ */

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* A request http-parser refused: answered, and the connection closed after. */
static void conn_reject(struct conn *c, enum http_errno err)
{
	memset(&c->rq, 0, sizeof c->rq);
	c->rq.status = err == HPE_HEADER_OVERFLOW ? 431 : 400;
	if (c->rq.status == 400)
		snprintf(c->rq.detail, sizeof c->rq.detail, "Bad Request: %s", http_errno_description(err));
	c->in_len = 0;
	c->in_request = 0;
	conn_respond(c);
}

/* Gives what is buffered to http-parser; answers once a whole request is in. */
static void conn_advance(struct conn *c)
{
	size_t n;
	enum http_errno err;

	if (c->in_len == 0 && !c->in_request && c->w->stopping) {
		conn_close(c);
		return;
	}
	c->complete = 0;
	n = http_parser_execute(&c->parser, &parser_settings, c->in, c->in_len);
	err = HTTP_PARSER_ERRNO(&c->parser);
	if (err != HPE_OK && err != HPE_PAUSED) {
		conn_reject(c, err);
		return;
	}
	conn_consume(c, n);
	if (!c->complete) {
		conn_watch(c, EV_READ);
		return;
	}
	http_parser_pause(&c->parser, 0);
	if (c->rq.status != 200)
		c->rq.keep_alive = 0;
	conn_respond(c);
}

static void conn_read(struct conn *c)
{
	char discard[4096];
	int lingering = c->state == CONN_LINGER;
	char *buf = lingering ? discard : c->in + c->in_len;
	size_t room = lingering ? sizeof discard : sizeof c->in - c->in_len;
	ssize_t n = recv(c->fd, buf, room, 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0 && errno != ECONNRESET && errno != EPIPE)
			log_errno("recv(connection fd %d)", c->fd);
		conn_close(c);
		return;
	}
	if (lingering)
		return;
	ev_timer_stop(c->w->loop, &c->timer); /* conn_await_first(): it came */
	c->in_len += (size_t)n;
	conn_advance(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct conn *c = CONTAINER_OF(io, struct conn, io);

	(void)loop;
	if (revents & EV_WRITE)
		conn_write(c);
	else if (revents & EV_READ)
		conn_read(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = CONTAINER_OF(t, struct conn, timer);

	(void)loop;
	(void)revents;
	if (c->state == CONN_LINGER || c->state == CONN_READ)
		conn_close(c);
	else
		conn_respond_now(c);
}

static void conn_new(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof *c);

	if (!c) {
		log_warn("out of memory: dropping a connection");
		if (close(fd) < 0)
			log_errno("close(connection fd %d)", fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->state = CONN_READ;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
	TAILQ_INSERT_TAIL(&w->conns, c, link);
	w->n_conns++;
	ev_io_start(w->loop, &c->io);
}

/* ---- listeners ------------------------------------------------------------------ */

static void listener_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *l = CONTAINER_OF(t, struct listener, pause);

	(void)revents;
	ev_io_start(loop, &l->io);
}

static void listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *l = CONTAINER_OF(io, struct listener, io);

	(void)revents;
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(l->w, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		log_errno("accept(fd %d, %s)", l->fd, l->name);
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			ev_io_stop(loop, &l->io);
			ev_timer_set(&l->pause, ACCEPT_PAUSE_S, 0.);
			ev_timer_start(loop, &l->pause);
		}
		return;
	}
}

static void listeners_start(struct worker *w)
{
	for (size_t i = 0; i < w->n_ls; i++) {
		ev_io_init(&w->ls[i].io, listener_accept_cb, w->ls[i].fd, EV_READ);
		ev_timer_init(&w->ls[i].pause, listener_pause_cb, ACCEPT_PAUSE_S, 0.);
		ev_io_start(w->loop, &w->ls[i].io);
	}
}

static void listeners_close(struct worker *w)
{
	for (size_t i = 0; i < w->n_ls; i++) {
		ev_io_stop(w->loop, &w->ls[i].io);
		ev_timer_stop(w->loop, &w->ls[i].pause);
		if (close(w->ls[i].fd) < 0)
			log_errno("close(listening fd %d)", w->ls[i].fd);
	}
	free(w->ls);
	w->ls = NULL;
	w->n_ls = 0;
}

/* ---- life: ready, stop, sleeper ------------------------------------------------------ */

static void worker_ready(struct worker *w)
{
	log_info("ready: %zu socket%s, sending READY=1", w->n_ls, w->n_ls == 1 ? "" : "s");
	notify("READY=1\nSTATUS=serving");
}

static void ready_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	worker_ready(t->data);
}

static void exit_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop;
	(void)revents;
	log_warn("--exit-after %ld ms: exiting 1", w->opt.exit_after_ms);
	exit(1);
}

/* Between two requests on a keep-alive connection: closed by a graceful stop. */
static int conn_idle(const struct conn *c)
{
	return c->state == CONN_READ && !c->in_request && c->in_len == 0 && c->served > 0;
}

/* Accepted, nothing read yet: its request may already be on its way, so it is in
 * flight, not idle. It gets LINGER_S to arrive. */
static void conn_await_first(struct conn *c)
{
	ev_timer_set(&c->timer, LINGER_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* On stop, an idle keep-alive connection may have a request already on its way:
 * closing it now would fail that request. It gets IDLE_GRACE_S to arrive (and be
 * answered with Connection: close); otherwise the timer closes it. */
static void conn_await_last(struct conn *c)
{
	ev_timer_stop(c->w->loop, &c->timer);
	ev_timer_set(&c->timer, IDLE_GRACE_S, 0.);
	ev_timer_start(c->w->loop, &c->timer);
}

/* Graceful stop: no new connections; idle ones get a last short chance, busy ones
 * finish their response (which says Connection: close); exit 0 once none is left. */
static void worker_stop(struct worker *w, int sig)
{
	struct conn *c, *next;
	size_t idle = 0;

	if (w->stopping) {
		log_info("SIG%s: already stopping (%zu connections left)", sigabbrev_np(sig), w->n_conns);
		return;
	}
	w->stopping = 1;
	notify("STOPPING=1\nSTATUS=stopping");
	ev_timer_stop(w->loop, &w->ready_timer);
	listeners_close(w);
	TAILQ_FOREACH(c, &w->conns, link)
		idle += conn_idle(c);
	log_info("stopping: %zu connections in flight, %zu idle closing within %.0f ms (SIG%s)",
		 w->n_conns - idle, idle, IDLE_GRACE_S * 1000, sigabbrev_np(sig));
	if (w->n_conns == 0) {
		worker_stopped(w);
		return;
	}
	for (c = TAILQ_FIRST(&w->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (conn_idle(c))
			conn_await_last(c); /* closed by its timer, unless a request comes */
		else if (c->state == CONN_READ && !c->in_request && c->in_len == 0)
			conn_await_first(c);
	}
}

static void stop_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	(void)loop;
	(void)revents;
	if (w->opt.ignore_stop) {
		log_info("SIG%s ignored (--ignore-stop)", sigabbrev_np(s->signum));
		return;
	}
	worker_stop(w, s->signum);
}

static void now_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	(void)loop;
	(void)revents;
	log_info("SIG%s: exiting at once, dropping %zu connections", sigabbrev_np(s->signum), w->n_conns);
	exit(128 + s->signum);
}

static void sleeper_cb(struct ev_loop *loop, ev_child *ch, int revents)
{
	(void)revents;
	log_info("sleeper %d ended (wait status %d)", ch->rpid, ch->rstatus);
	ev_child_stop(loop, ch);
}

/* The sleeper holds none of our sockets and, like us, ignores the stop signals when
 * --ignore-stop is given: only a kill of the process group ends it. */
static _Noreturn void sleeper_main(const struct options *o)
{
	if (close_range(LISTEN_FDS_START, ~0U, 0) < 0)
		log_errno("sleeper: close_range");
	if (o->ignore_stop && (signal(SIGTERM, SIG_IGN) == SIG_ERR || signal(SIGHUP, SIG_IGN) == SIG_ERR))
		log_errno("sleeper: signal");
	for (;;)
		pause();
}

/* Forked before the loop exists, so the sleeper inherits no libev state. */
static pid_t fork_sleeper(const struct options *o)
{
	pid_t pid = fork();

	if (pid < 0)
		log_fatal("fork (--fork-sleeper): %s", strerror(errno));
	if (pid == 0)
		sleeper_main(o);
	log_info("forked sleeper %d in process group %d", (int)pid, (int)getpgrp());
	return pid;
}

static void signal_start(struct worker *w, ev_signal *s, void (*cb)(struct ev_loop *, ev_signal *, int),
			 int sig)
{
	ev_signal_init(s, cb, sig);
	s->data = w;
	ev_signal_start(w->loop, s);
}

static void timer_start(struct worker *w, ev_timer *t, void (*cb)(struct ev_loop *, ev_timer *, int),
			long ms)
{
	ev_timer_init(t, cb, (double)ms / 1000., 0.);
	t->data = w;
	ev_timer_start(w->loop, t);
}

static void worker_start(struct worker *w)
{
	signal_start(w, &w->sigterm, stop_signal_cb, SIGTERM);
	signal_start(w, &w->sighup, stop_signal_cb, SIGHUP);
	signal_start(w, &w->sigint, now_signal_cb, SIGINT);
	signal_start(w, &w->sigquit, now_signal_cb, SIGQUIT);
	listeners_start(w);
	if (w->sleeper_pid > 0) {
		ev_child_init(&w->sleeper, sleeper_cb, w->sleeper_pid, 0);
		ev_child_start(w->loop, &w->sleeper);
	}
	if (w->opt.exit_after_ms)
		timer_start(w, &w->exit_timer, exit_timer_cb, w->opt.exit_after_ms);
	log_info("serving %zu socket%s", w->n_ls, w->n_ls == 1 ? "" : "s");
	if (w->opt.no_ready)
		log_info("--no-ready: not sending READY=1");
	else if (w->opt.ready_delay_ms)
		timer_start(w, &w->ready_timer, ready_timer_cb, w->opt.ready_delay_ms);
	else
		worker_ready(w);
}

int main(int argc, char **argv)
{
	struct worker w = {0};
	char ident[NAME_MAX_LEN + 16];

	w.pid = getpid();
	w.id = getenv("VASSAL_WORKER_ID") ? getenv("VASSAL_WORKER_ID") : "-";
	if (!header_safe(w.id))
		w.id = "-";
	snprintf(ident, sizeof ident, "hello-worker %s", w.id);
	log_init(ident);
	parse_options(argc, argv, &w.opt);
	if (w.opt.fail_start) {
		log_warn("--fail-start: exiting 1");
		return 1;
	}
	if (w.opt.fail_if_id && strtol(w.id, NULL, 10) == w.opt.fail_if_id) {
		log_warn("--fail-if-id %ld: exiting 1", w.opt.fail_if_id);
		return 1;
	}
	http_parser_set_max_header_size(HEAD_MAX);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_fatal("signal(SIGPIPE): %s", strerror(errno));
	take_listen_fds(&w);
	TAILQ_INIT(&w.conns);
	if (w.opt.fork_sleeper)
		w.sleeper_pid = fork_sleeper(&w.opt);
	w.loop = ev_default_loop(EVFLAG_AUTO);
	if (!w.loop)
		log_fatal("cannot initialise libev (bad LIBEV_FLAGS?)");
	worker_start(&w);
	ev_run(w.loop, 0);
	ev_loop_destroy(w.loop);
	return 0;
}
