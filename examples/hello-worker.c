/* hello-worker.c — the reference worker: a small HTTP/1.1 server that takes its
 * listening sockets by systemd socket activation (LISTEN_FDS), tells its master it is
 * ready over sd_notify (NOTIFY_SOCKET) and, on SIGTERM or SIGHUP, stops gracefully:
 * it stops accepting, answers the requests in flight, closes idle connections and
 * exits 0. One process, one libev loop, non-blocking sockets. docs/worker.md is the
 * contract it demonstrates; this file holds that contract (options, sockets,
 * readiness, the stop), hello_conn.c the HTTP side, and worker_test_opts.c the
 * options with which the tests play a badly behaved worker.
 * Exit status: 0 stopped as asked, 1 failure, 2 usage error or no sockets,
 * 128+N on SIGINT/SIGQUIT (N the signal). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include "hello_worker.h"
#include "log.h"
#include "parse.h"

/* Like log_fatal, with the exit status given. */
_Noreturn void die(int status, const char *fmt, ...)
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
		"  --no-ready          never send READY=1 to NOTIFY_SOCKET\n"
		"  --ready-delay MS    send READY=1 only MS milliseconds after start\n"
		"  --start-delay MS    a slow start: neither accept nor send READY=1 for MS ms\n"
		"  --start-cpu MS      a busy start: use MS ms of CPU time before serving\n"
		"  --max-conns N       serve at most N connections at once; the others wait in\n"
		"                      the accept queue (as a worker with N threads would)\n"
		"  --help              this text\n"
		"Paths: / and any other answer \"GREETING from pid PID worker ID\"; /slow?ms=N\n"
		"answers after N ms; /pid answers the pid; /mule?farm=NAME&msg=TEXT sends TEXT\n"
		"to the mule farm NAME (MULE_NAME_SOCKET).\n");
	test_opts_usage(f);
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

/* --max-conns: a number of connections, 0 (no limit) up to max. */
static long parse_count(const char *opt, const char *s, long max)
{
	unsigned long long v;
	const char *why;

	if (parse_uint(s, (unsigned long long)max, &v, &why) < 0)
		die(EXIT_USAGE, "%s: \"%s\" is not a number of connections (%s, 0..%ld)", opt, s,
		    why, max);
	return (long)v;
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

/* Our options, then worker_test_opts.c's, in one getopt_long table. */
static void build_longopts(struct option *all, size_t max)
{
	static const struct option ours[] = {
		{"greeting", required_argument, NULL, 'g'}, {"delay", required_argument, NULL, 'd'},
		{"no-ready", no_argument, NULL, 'n'}, {"ready-delay", required_argument, NULL, 'r'},
		{"start-delay", required_argument, NULL, 's'}, {"start-cpu", required_argument, NULL, 'c'},
		{"max-conns", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
	};
	size_t n = 0;

	for (size_t i = 0; i < sizeof ours / sizeof ours[0] && n < max - 1; i++)
		all[n++] = ours[i];
	for (size_t i = 0; test_longopts[i].name && n < max - 1; i++)
		all[n++] = test_longopts[i];
	all[n] = (struct option){ 0 };
}

static void parse_options(int argc, char **argv, struct options *o)
{
	struct option longopts[32];
	const char *greeting = getenv("GREETING");
	int ch;

	build_longopts(longopts, sizeof longopts / sizeof longopts[0]);
	o->greeting = greeting && *greeting ? greeting : "hello";
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'g': o->greeting = optarg; break;
		case 'd': o->delay_ms = parse_ms("--delay", optarg); break;
		case 'n': o->no_ready = 1; break;
		case 'r': o->ready_delay_ms = parse_ms("--ready-delay", optarg); break;
		case 's': o->start_delay_ms = parse_ms("--start-delay", optarg); break;
		case 'c': o->start_cpu_ms = parse_ms("--start-cpu", optarg); break;
		case 'm': o->max_conns = parse_count("--max-conns", optarg, INT_MAX); break;
		case 'h': usage(stdout); exit(0);
		default:
			if (!test_opts_parse(&o->test, ch, optarg)) {
				usage(stderr);
				exit(EXIT_USAGE);
			}
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
void notify(const char *msg)
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

/* ---- life: ready, stop --------------------------------------------------------------- */

void worker_stopped(struct worker *w)
{
	log_info("stopped");
	ev_break(w->loop, EVBREAK_ALL);
}

/* ---- listeners ------------------------------------------------------------------ */

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
	ev_timer_stop(w->loop, &w->start_timer);
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
		else if (conn_unread(c))
			conn_await_first(c);
	}
}

static void stop_signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;

	(void)loop;
	(void)revents;
	if (test_opts_ignore_stop(&w->opt.test, s->signum))
		return;
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

static void serve(struct worker *w)
{
	accept_start(w);
	health_start(w);
	log_info("serving %zu socket%s", w->n_ls, w->n_ls == 1 ? "" : "s");
	if (w->opt.no_ready)
		log_info("--no-ready: not sending READY=1");
	else if (w->opt.ready_delay_ms)
		timer_start(w, &w->ready_timer, ready_timer_cb, w->opt.ready_delay_ms);
	else
		worker_ready(w);
}

static void start_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	serve(t->data);
}

static void worker_start(struct worker *w)
{
	signal_start(w, &w->sigterm, stop_signal_cb, SIGTERM);
	signal_start(w, &w->sighup, stop_signal_cb, SIGHUP);
	signal_start(w, &w->sigint, now_signal_cb, SIGINT);
	signal_start(w, &w->sigquit, now_signal_cb, SIGQUIT);
	test_opts_start(&w->opt.test, w->loop);
	if (w->opt.start_delay_ms) {
		log_info("--start-delay: starting for %ld ms", w->opt.start_delay_ms);
		timer_start(w, &w->start_timer, start_timer_cb, w->opt.start_delay_ms);
	} else {
		serve(w);
	}
}

/* --start-cpu: ms of CPU time, as an app's loading would take; bounded by 10x that
 * in wall-clock time (a starved start gives up and serves). */
static void burn_cpu(long ms)
{
	struct timespec cpu, wall0, wall;
	volatile unsigned long x = 0;

	if (ms <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &wall0);
	do {
		for (int i = 0; i < 100000; i++)
			x += (unsigned long)i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
		clock_gettime(CLOCK_MONOTONIC, &wall);
	} while (cpu.tv_sec * 1000L + cpu.tv_nsec / 1000000 < ms &&
		 (wall.tv_sec - wall0.tv_sec) * 1000L < 10 * ms + 1000);
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
	test_opts_fail_early(&w.opt.test, w.id);
	http_parser_set_max_header_size(HEAD_MAX);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_fatal("signal(SIGPIPE): %s", strerror(errno));
	take_listen_fds(&w);
	burn_cpu(w.opt.start_cpu_ms);
	TAILQ_INIT(&w.conns);
	test_opts_before_loop(&w.opt.test);
	w.loop = ev_default_loop(EVFLAG_AUTO);
	if (!w.loop)
		log_fatal("cannot initialise libev (bad LIBEV_FLAGS?)");
	worker_start(&w);
	ev_run(w.loop, 0);
	ev_loop_destroy(w.loop);
	return 0;
}
