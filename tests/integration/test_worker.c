/* test_worker.c — the reference worker (examples/hello-worker) run for real on
 * loopback sockets that it receives by socket activation, as a vassal would start
 * it: refusing to run without sockets, serving (keep-alive, pipelining, partial
 * reads, unix and IPv6), sd_notify readiness, the graceful stop that finishes the
 * request in flight, and the misbehaviours the tests of the master rely on
 * (--ignore-stop, --fork-sleeper, --fail-start, --exit-after). With
 * EMPEROR_TEST_VALGRIND=1 the worker runs under valgrind's memcheck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/support.h"

#define T_MS 10000          /* bound of every wait that should succeed at once */
#define MAX_ARGS 32

struct fixture {
	char *dir;
	char *log;
	char *worker;            /* the binary */
	int listen_fd;           /* 127.0.0.1:port, handed to the worker then closed */
	int port;
	struct sup_proc *proc;
};

/* ---- helpers ---------------------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = sup_tmpdir();
	assert_non_null(f->dir);
	f->log = sup_path(f->dir, "worker.log");
	f->worker = sup_bin("examples/hello-worker");
	assert_int_equal(access(f->worker, X_OK), 0);
	f->listen_fd = sup_listen_tcp("127.0.0.1", 0, &f->port);
	assert_true(f->listen_fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sup_proc_free(f->proc);
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	if (getenv("EMPEROR_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", f->dir);
	else
		sup_rmtree(f->dir);
	free(f->dir);
	free(f->log);
	free(f->worker);
	free(f);
	return 0;
}

/* argv: [valgrind ...] worker args... */
static void worker_argv(const struct fixture *f, const char *const args[], char *argv[MAX_ARGS])
{
	static const char *const valgrind[] = {
		"valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
		"--errors-for-leak-kinds=definite", NULL,
	};
	const char *v = getenv("EMPEROR_TEST_VALGRIND");
	int n = 0;

	for (int i = 0; v && strcmp(v, "1") == 0 && valgrind[i]; i++)
		argv[n++] = (char *)valgrind[i];
	argv[n++] = f->worker;
	for (int i = 0; args && args[i] && n < MAX_ARGS - 1; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
}

/* Hands the listening socket to a new worker, closes our copy (so that the socket
 * refuses connections once the worker closes it) and waits until it serves. */
static struct sup_proc *start_with(struct fixture *f, const struct sup_spawn_opts *opts,
				   const char *const args[], char *const env[])
{
	char *argv[MAX_ARGS];
	size_t mark = sup_file_size(f->log);

	worker_argv(f, args, argv);
	f->proc = sup_spawn_ex(argv, env, opts);
	assert_non_null(f->proc);
	if (f->listen_fd >= 0)
		assert_int_equal(close(f->listen_fd), 0);
	f->listen_fd = -1;
	assert_int_equal(sup_wait_log(f->proc, mark, "serving ", T_MS), 0);
	return f->proc;
}

static struct sup_proc *start_worker(struct fixture *f, const char *const args[], char *const env[])
{
	struct sup_spawn_opts o = {
		.logpath = f->log, .listen_fds = &f->listen_fd, .n_listen_fds = 1, .listen_fdnames = "http",
	};

	return start_with(f, &o, args, env);
}

static void assert_exit_status(struct sup_proc *p, int code)
{
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != code) {
		fprintf(stderr, "pid %d: %s, expected exit %d\n", (int)p->pid, sup_status_str(p->status), code);
		sup_print_tail(p->logpath, 40);
		fail();
	}
}

static void assert_hello(const struct sup_http *r, const char *greeting, pid_t pid, const char *id)
{
	char want[256], pidstr[32];

	snprintf(want, sizeof want, "%s from pid %d worker %s\n", greeting, (int)pid, id);
	snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, want);
	assert_non_null(sup_http_header(r, "X-Worker-Pid"));
	assert_string_equal(sup_http_header(r, "X-Worker-Pid"), pidstr);
	assert_string_equal(sup_http_header(r, "X-Worker-Id"), id);
}

static void get_hello(const struct fixture *f, pid_t pid)
{
	struct sup_http r;

	assert_int_equal(sup_http_get("127.0.0.1", f->port, "/", &r, T_MS), 0);
	assert_hello(&r, "hello", pid, "-");
	sup_http_fini(&r);
}

static void send_str(struct sup_conn *c, const char *s)
{
	assert_int_equal(sup_conn_send(c, s, strlen(s), T_MS), 0);
}

/* Sends a raw request on a new connection; expects status and a close after it. */
static void expect_rejected(const struct fixture *f, const char *req, size_t len, int status)
{
	struct sup_conn *c = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;

	assert_non_null(c);
	assert_int_equal(sup_conn_send(c, req, len, T_MS), 0);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, status);
	assert_string_equal(sup_http_header(&r, "Connection"), "close");
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	sup_http_fini(&r);
	sup_conn_close(c);
}

static void expect_rejected_str(const struct fixture *f, const char *req, int status)
{
	expect_rejected(f, req, strlen(req), status);
}

/* How many of pid's open fds are sockets. */
static int count_socket_fds(pid_t pid)
{
	char dir[64], path[320], target[64];
	int n = 0, total = sup_count_fds(pid);

	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	for (int fd = 0, seen = 0; seen < total && fd < 65536; fd++) {
		ssize_t len;

		snprintf(path, sizeof path, "%s/%d", dir, fd);
		len = readlink(path, target, sizeof target - 1);
		if (len < 0)
			continue;
		seen++;
		target[len] = '\0';
		n += strncmp(target, "socket:", 7) == 0;
	}
	return n;
}

/* A datagram socket for NOTIFY_SOCKET; name is a path or "@abstract". */
static int notify_socket(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(len < sizeof sa.sun_path);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

/* Receives one datagram within timeout_ms into buf (NUL-terminated); -1 if none. */
static int recv_notify(int fd, char *buf, size_t size, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	n = recv(fd, buf, size - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Receives the next datagram and checks that it contains want. */
static void expect_notify(int fd, const char *want)
{
	char msg[512];

	assert_int_equal(recv_notify(fd, msg, sizeof msg, T_MS), 0);
	if (!strstr(msg, want)) {
		fprintf(stderr, "notify: got \"%s\", expected \"%s\"\n", msg, want);
		fail();
	}
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_refuses_without_sockets(void **state)
{
	struct fixture *f = *state;
	char *argv[MAX_ARGS];
	char *foreign[] = {"LISTEN_FDS=1", "LISTEN_PID=1", NULL};
	struct sup_proc *p;

	worker_argv(f, NULL, argv);
	f->proc = sup_spawn(argv, NULL, NULL, f->log);
	assert_non_null(f->proc);
	assert_exit_status(f->proc, 2);
	assert_int_equal(sup_count_log(f->proc, 0, "no sockets: expected LISTEN_FDS/LISTEN_PID "
				       "(socket activation); run it under a vassal"), 1);

	p = sup_spawn(argv, foreign, NULL, f->log);
	assert_non_null(p);
	assert_exit_status(p, 2);
	assert_int_equal(sup_count_log(p, 0, "LISTEN_PID=1 is not our pid"), 1);
	sup_proc_free(p);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_serves_activated_socket(void **state)
{
	struct fixture *f = *state;
	char *env[] = {"VASSAL_WORKER_ID=7", "GREETING=howdy", NULL};
	struct sup_proc *p = start_worker(f, NULL, env);
	struct sup_conn *c;
	struct sup_http r1, r2, r3;
	char pidline[32];

	assert_int_equal(sup_http_get("127.0.0.1", f->port, "/", &r1, T_MS), 0);
	assert_hello(&r1, "howdy", p->pid, "7");
	assert_string_equal(sup_http_header(&r1, "Connection"), "close");
	sup_http_fini(&r1);

	c = sup_conn_open("127.0.0.1", f->port, T_MS);
	assert_non_null(c);
	assert_int_equal(sup_conn_get(c, "/", &r1, T_MS), 0);
	assert_int_equal(sup_conn_get(c, "/any/path?x=1", &r2, T_MS), 0);
	assert_int_equal(sup_conn_get(c, "/pid", &r3, T_MS), 0);
	assert_hello(&r1, "howdy", p->pid, "7");
	assert_hello(&r2, "howdy", p->pid, "7");
	assert_string_equal(sup_http_header(&r1, "Connection"), "keep-alive");
	snprintf(pidline, sizeof pidline, "%d\n", (int)p->pid);
	assert_string_equal(r3.body, pidline);
	sup_http_fini(&r1);
	sup_http_fini(&r2);
	sup_http_fini(&r3);
	sup_conn_close(c);

	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_pipelined_requests(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--greeting", "hi", NULL};
	char *env[] = {"GREETING=ignored", NULL};
	struct sup_proc *p = start_worker(f, args, env);
	struct sup_conn *c = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;

	assert_non_null(c);
	/* Three requests in one write: a POST whose body must be skipped, then a last
	 * HTTP/1.0 one after which the worker closes. */
	send_str(c, "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
		    "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
		    "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_hello(&r, "hi", p->pid, "-");
	sup_http_fini(&r);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(atoi(r.body), p->pid);
	sup_http_fini(&r);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_hello(&r, "hi", p->pid, "-");
	assert_string_equal(sup_http_header(&r, "Connection"), "close");
	sup_http_fini(&r);
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	sup_conn_close(c);

	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* A head and a body arriving in pieces: no answer until each is complete. */
static void test_partial_reads(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--greeting", "hi", NULL};
	struct sup_proc *p = start_worker(f, args, NULL);
	struct sup_conn *c = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;

	assert_non_null(c);
	send_str(c, "GET / HT");
	assert_int_equal(sup_conn_readable(c, 100), 0);
	send_str(c, "TP/1.1\r\nHost: t\r\n");
	assert_int_equal(sup_conn_readable(c, 100), 0);
	send_str(c, "\r\n");
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_hello(&r, "hi", p->pid, "-");
	sup_http_fini(&r);
	for (const char *byte = "GET /pid HTTP/1.1\nHost: t\n\n"; *byte; byte++)
		assert_int_equal(sup_conn_send(c, byte, 1, T_MS), 0); /* bare LF ends lines too */
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(atoi(r.body), p->pid);
	sup_http_fini(&r);
	send_str(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello");
	assert_int_equal(sup_conn_readable(c, 100), 0);
	send_str(c, "world");
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_hello(&r, "hi", p->pid, "-");
	assert_string_equal(sup_http_header(&r, "Connection"), "keep-alive");
	sup_http_fini(&r);
	sup_conn_close(c);

	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_serves_unix_and_ipv6_sockets(void **state)
{
	struct fixture *f = *state;
	char *path = sup_path(f->dir, "web.sock");
	int v6port, fds[2] = {sup_listen_unix(path), sup_listen_tcp("::1", 0, &v6port)};
	struct sup_spawn_opts o = {
		.logpath = f->log, .listen_fds = fds, .n_listen_fds = 2, .listen_fdnames = "web:v6",
	};
	struct sup_proc *p;
	struct sup_http r;

	assert_true(fds[0] >= 0 && fds[1] >= 0);
	p = start_with(f, &o, NULL, NULL);
	assert_int_equal(close(fds[0]), 0);
	assert_int_equal(close(fds[1]), 0);
	assert_int_equal(sup_count_log(p, 0, "listening on fd 3 (web): unix:"), 1);
	assert_int_equal(sup_count_log(p, 0, "listening on fd 4 (v6): [::1]:"), 1);

	assert_int_equal(sup_http_get_unix(path, "/", &r, T_MS), 0);
	assert_hello(&r, "hello", p->pid, "-");
	sup_http_fini(&r);
	assert_int_equal(sup_http_get("::1", v6port, "/", &r, T_MS), 0);
	assert_hello(&r, "hello", p->pid, "-");
	sup_http_fini(&r);

	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_port_refused("::1", v6port, T_MS), 0);
	free(path);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_notify_ready_and_stopping(void **state)
{
	struct fixture *f = *state;
	char *path = sup_path(f->dir, "notify.sock"), env0[256];
	char *env[] = {env0, NULL};
	int nfd = notify_socket(path);
	struct sup_proc *p;

	snprintf(env0, sizeof env0, "NOTIFY_SOCKET=%s", path);
	p = start_worker(f, NULL, env);
	expect_notify(nfd, "READY=1\nSTATUS=serving");
	assert_int_equal(kill(p->pid, SIGTERM), 0);
	expect_notify(nfd, "STOPPING=1");
	assert_exit_status(p, 0);
	assert_int_equal(close(nfd), 0);
	free(path);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_notify_abstract_ready_delay(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--ready-delay", "300", NULL};
	char name[128], env0[160];
	char *env[] = {env0, NULL};
	int nfd;
	long long t0;

	snprintf(name, sizeof name, "@emperor-test-%s-notify", sup_tag());
	snprintf(env0, sizeof env0, "NOTIFY_SOCKET=%s", name);
	nfd = notify_socket(name);
	t0 = sup_now_ms();
	start_worker(f, args, env);
	expect_notify(nfd, "READY=1");
	assert_true(sup_now_ms() - t0 >= 300);
	assert_int_equal(sup_stop(f->proc, SIGTERM, T_MS), 0);
	assert_exit_status(f->proc, 0);
	assert_int_equal(close(nfd), 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_notify_no_ready(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--no-ready", NULL};
	char name[128], env0[160];
	char *env[] = {env0, NULL};
	int nfd;

	snprintf(name, sizeof name, "@emperor-test-%s-noready", sup_tag());
	snprintf(env0, sizeof env0, "NOTIFY_SOCKET=%s", name);
	nfd = notify_socket(name);
	start_worker(f, args, env);
	get_hello(f, f->proc->pid);
	assert_int_equal(kill(f->proc->pid, SIGTERM), 0);
	/* The first datagram is the stop: READY=1 never came. */
	expect_notify(nfd, "STOPPING=1");
	assert_exit_status(f->proc, 0);
	assert_int_equal(close(nfd), 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* A request sent on an idle keep-alive connection just as the stop arrives (a load
 * generator's next request) is answered, with Connection: close, not dropped. */
static void test_stop_answers_request_racing_it(void **state)
{
	struct fixture *f = *state;
	struct sup_proc *p = start_worker(f, NULL, NULL);
	struct sup_conn *c = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r = { 0 };
	size_t mark;

	assert_non_null(c);
	assert_int_equal(sup_conn_get(c, "/", &r, T_MS), 0);
	sup_http_fini(&r);
	mark = sup_log_size(p);
	assert_int_equal(kill(p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_log(p, mark, "idle closing within", T_MS), 0);
	assert_int_equal(sup_conn_get(c, "/", &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(sup_http_header(&r, "Connection"), "close");
	sup_http_fini(&r);
	assert_int_equal(sup_conn_wait_closed(c, T_MS), 0);
	assert_exit_status(p, 0);
	sup_conn_close(c);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_graceful_stop_finishes_slow_request(void **state)
{
	struct fixture *f = *state;
	struct sup_proc *p = start_worker(f, NULL, NULL);
	struct sup_conn *idle = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_conn *slow = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;
	size_t mark;

	assert_non_null(idle);
	assert_non_null(slow);
	assert_int_equal(sup_conn_get(idle, "/", &r, T_MS), 0);
	sup_http_fini(&r);

	mark = sup_log_size(p);
	send_str(slow, "GET /slow?ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(sup_wait_log(p, mark, "slow request: answering in 3000 ms", T_MS), 0);
	mark = sup_log_size(p);
	assert_int_equal(kill(p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_log(p, mark, "stopping: 1 connections in flight, 1 idle closing within 100 ms", T_MS), 0);

	/* Idle keep-alive connection closed at once; no new connection accepted. */
	assert_int_equal(sup_conn_wait_closed(idle, T_MS), 0);
	assert_int_equal(sup_port_refused("127.0.0.1", f->port, T_MS), 0);
	assert_true(sup_pid_alive(p->pid));

	/* The request in flight gets its whole answer, then the worker exits 0. */
	assert_int_equal(sup_conn_read_response(slow, &r, T_MS), 0);
	assert_hello(&r, "hello", p->pid, "-");
	assert_string_equal(sup_http_header(&r, "Connection"), "close");
	sup_http_fini(&r);
	assert_int_equal(sup_conn_wait_closed(slow, T_MS), 0);
	sup_conn_close(slow);
	assert_exit_status(p, 0);
	assert_int_equal(sup_count_log(p, mark, "stopped"), 1);
	assert_int_equal(sup_port_refused("127.0.0.1", f->port, T_MS), 0);
	sup_conn_close(idle);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_sigint_exits_at_once(void **state)
{
	struct fixture *f = *state;
	struct sup_proc *p = start_worker(f, NULL, NULL);
	struct sup_conn *slow = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;
	size_t mark = sup_log_size(p);

	assert_non_null(slow);
	send_str(slow, "GET /slow?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(sup_wait_log(p, mark, "slow request", T_MS), 0);
	assert_int_equal(kill(p->pid, SIGINT), 0);
	assert_exit_status(p, 128 + SIGINT);
	sup_net_quiet(1);
	assert_int_equal(sup_conn_read_response(slow, &r, T_MS), -1);
	sup_net_quiet(0);
	sup_conn_close(slow);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_ignore_stop(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--ignore-stop", NULL};
	struct sup_proc *p = start_worker(f, args, NULL);
	size_t mark = sup_log_size(p);

	get_hello(f, p->pid);
	assert_int_equal(kill(p->pid, SIGTERM), 0);
	assert_int_equal(sup_wait_log(p, mark, "SIGTERM ignored (--ignore-stop)", T_MS), 0);
	get_hello(f, p->pid);
	assert_int_equal(kill(p->pid, SIGHUP), 0);
	assert_int_equal(sup_wait_log(p, mark, "SIGHUP ignored (--ignore-stop)", T_MS), 0);
	get_hello(f, p->pid);

	assert_int_equal(kill(p->pid, SIGKILL), 0);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	assert_true(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGKILL);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

/* --max-conns is a number of connections, not of milliseconds: one above a day's worth
 * of milliseconds starts and serves; a word is refused as "not a number of
 * connections". */
static void test_max_conns_is_a_count(void **state)
{
	struct fixture *f = *state;
	const char *big[] = {"--max-conns", "100000000", NULL}, *word[] = {"--max-conns", "lots", NULL};
	char *argv[MAX_ARGS];
	struct sup_proc *p = start_worker(f, big, NULL), *bad;

	get_hello(f, p->pid);
	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);

	worker_argv(f, word, argv);
	bad = sup_spawn(argv, NULL, NULL, f->log);
	assert_non_null(bad);
	assert_exit_status(bad, 2);
	assert_int_equal(sup_count_log(bad, 0, "--max-conns: \"lots\" is not a number of connections"), 1);
	sup_proc_free(bad);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_bad_requests_then_serves(void **state)
{
	struct fixture *f = *state;
	struct sup_proc *p = start_worker(f, NULL, NULL);
	static const char nul_head[] = "GET /\0 HTTP/1.1\r\n\r\n";
	size_t big_len = 20000;
	char *big = malloc(big_len);

	assert_non_null(big);
	memset(big, 'a', big_len);
	memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
	expect_rejected(f, big, big_len, 431);
	expect_rejected(f, nul_head, sizeof nul_head - 1, 400);
	expect_rejected_str(f, "garbage\r\n\r\n", 400);
	expect_rejected_str(f, "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
	expect_rejected_str(f, "GET /slow?ms=oops HTTP/1.1\r\n\r\n", 400);
	expect_rejected_str(f, "DELETE / HTTP/1.1\r\n\r\n", 405);
	expect_rejected_str(f, "GET / HTTP/2.0\r\n\r\n", 505);
	free(big);

	/* an unknown mule farm: 404 Not Found, and the body says which */
	struct sup_conn *c = sup_conn_open("127.0.0.1", f->port, T_MS);
	struct sup_http r;
	assert_non_null(c);
	send_str(c, "GET /mule?farm=nope&msg=hi HTTP/1.1\r\n\r\n");
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.head, "HTTP/1.1 404 Not Found\r\n"));
	assert_string_equal(r.body, "no mule farm \"nope\" (no MULE_NOPE_SOCKET in the environment)\n");
	sup_http_fini(&r);
	sup_conn_close(c);

	/* a chunked body is read (and dropped): the request pipelined after it is answered */
	c = sup_conn_open("127.0.0.1", f->port, T_MS);
	assert_non_null(c);
	send_str(c, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		    "GET /pid HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_hello(&r, "hello", p->pid, "-");
	sup_http_fini(&r);
	assert_int_equal(sup_conn_read_response(c, &r, T_MS), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(atoi(r.body), p->pid);
	sup_http_fini(&r);
	sup_conn_close(c);

	get_hello(f, p->pid);
	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_fork_sleeper_dies_with_its_group(void **state)
{
	struct fixture *f = *state;
	const char *args[] = {"--fork-sleeper", "--ignore-stop", NULL};
	struct sup_spawn_opts o = {
		.logpath = f->log, .flags = SUP_SPAWN_NEW_PGROUP, .listen_fds = &f->listen_fd,
		.n_listen_fds = 1, .listen_fdnames = "http",
	};
	struct sup_proc *p = start_with(f, &o, args, NULL);
	pid_t kids[8];
	size_t mark = sup_log_size(p);

	assert_int_equal(sup_wait_log(p, 0, "forked sleeper", T_MS), 0);
	/* the sleeper closes what it inherited first: "forked sleeper" is the parent's
	 * line, written maybe before the sleeper ran (CI once saw its listening socket) */
	assert_int_equal(sup_wait_log(p, 0, "sleeper: holds none of the sockets", T_MS), 0);
	assert_int_equal(sup_descendants(p->pid, kids, 8), 1);
	assert_int_equal(sup_pid_pgid(kids[0]), p->pid);
	assert_int_equal(count_socket_fds(kids[0]), 0); /* holds none of the sockets */

	assert_int_equal(sup_kill_group(p, SIGTERM), 0);
	assert_int_equal(sup_wait_log(p, mark, "SIGTERM ignored", T_MS), 0);
	assert_true(sup_pid_alive(kids[0]));
	get_hello(f, p->pid);

	assert_int_equal(sup_kill_group(p, SIGKILL), 0);
	assert_int_equal(sup_wait_exit(p, T_MS), 0);
	assert_true(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGKILL);
	assert_int_equal(sup_wait_pid_dead(kids[0], T_MS), 0);
	assert_false(sup_pgid_alive(p->pid));
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void assert_clean_load(const struct sup_load_stats *s, long min_ok, pid_t pid)
{
	if (s->ok < min_ok || s->non200 || s->connect_errors || s->io_errors || s->stale_retries ||
	    s->n_pids != 1 || s->pids[0] != pid) {
		sup_load_print("unexpected load outcome", s);
		fail();
	}
}

static void test_serves_two_load_threads(void **state)
{
	struct fixture *f = *state;
	struct sup_proc *p = start_worker(f, NULL, NULL);
	struct sup_load *fresh = sup_load_start("127.0.0.1", f->port, "/");
	struct sup_load *kept = sup_load_start_mode("127.0.0.1", f->port, "/", SUP_LOAD_KEEPALIVE);
	struct sup_load_stats s1, s2;

	assert_non_null(fresh);
	assert_non_null(kept);
	assert_int_equal(sup_load_wait_ok(fresh, 300, T_MS), 0);
	assert_int_equal(sup_load_wait_ok(kept, 300, T_MS), 0);
	sup_load_stop(fresh, &s1);
	sup_load_stop(kept, &s2);
	assert_clean_load(&s1, 300, p->pid);
	assert_clean_load(&s2, 300, p->pid);

	assert_int_equal(sup_stop(p, SIGTERM, T_MS), 0);
	assert_exit_status(p, 0);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

static void test_crash_options(void **state)
{
	struct fixture *f = *state;
	const char *fail_args[] = {"--fail-start", NULL};
	const char *exit_args[] = {"--exit-after", "300", "--delay", "100", NULL};
	char *argv[MAX_ARGS];
	struct sup_proc *p;
	long long t0;

	worker_argv(f, fail_args, argv);
	p = sup_spawn_activated(f->listen_fd, argv, NULL, f->log);
	assert_non_null(p);
	assert_exit_status(p, 1);
	sup_proc_free(p);

	p = start_worker(f, exit_args, NULL);
	t0 = sup_now_ms();
	get_hello(f, p->pid);
	assert_true(sup_now_ms() - t0 >= 100); /* --delay */
	assert_exit_status(p, 1);
	assert_int_equal(sup_count_log(p, 0, "--exit-after 300 ms: exiting 1"), 1);
	assert_int_equal(sup_wait_no_leftovers(5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refuses_without_sockets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serves_activated_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serves_unix_and_ipv6_sockets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_ready_and_stopping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_abstract_ready_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_no_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_graceful_stop_finishes_slow_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_answers_request_racing_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigint_exits_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignore_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_conns_is_a_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests_then_serves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_sleeper_dies_with_its_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serves_two_load_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_options, setup, teardown),
	};

	sup_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
