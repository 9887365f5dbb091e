/* test_idle.c — the idle stop's connection count (vassal/idle.c) against real sockets
 * on loopback and in the abstract unix namespace: nothing open counts 0; a connection
 * still in the accept queue counts, an accepted one too; a client's own socket (its
 * local port is not ours) never does; once both ends are closed the count is 0 again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "idle.h"
#include "parse.h"
#include "util.h"

/* A table of one listening socket at text (port 0: any; the table gets the real one). */
static int listen_on(const char *text, struct vsock_table *t, struct vsock *v)
{
	const char *why = NULL;
	socklen_t len = sizeof v->addr.ss;
	int fd;

	memset(v, 0, sizeof *v);
	assert_int_equal(parse_addr(text, &v->addr, &why), 0);
	fd = socket(v->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&v->addr.ss, v->addr.len), 0);
	assert_int_equal(listen(fd, 16), 0);
	if (v->addr.ss.ss_family != AF_UNIX) {
		assert_int_equal(getsockname(fd, (struct sockaddr *)&v->addr.ss, &len), 0);
		v->addr.len = len;
	}
	v->type = SOCK_STREAM;
	v->fd = fd;
	v->name = "http";
	t->v = v;
	t->n = t->n_workers = 1;
	return fd;
}

static int connect_to(const struct vsock *v)
{
	int fd = socket(v->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)&v->addr.ss, v->addr.len), 0);
	return fd;
}

/* The count once it is want, within 2 s (a closing TCP end passes LAST_ACK). */
static void wait_count(const struct vsock_table *t, int want)
{
	double deadline = mono_now() + 2;
	int n;

	while ((n = idle_connections(t, t->n)) != want && mono_now() < deadline) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(n, want);
}

static void count_a_life(const char *text)
{
	struct vsock_table t;
	struct vsock v;
	int lfd = listen_on(text, &t, &v), client, server;

	assert_int_equal(idle_connections(&t, 1), 0);
	client = connect_to(&v);
	assert_int_equal(idle_connections(&t, 1), 1); /* queued, not accepted */
	server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(server >= 0);
	assert_int_equal(idle_connections(&t, 1), 1);
	assert_int_equal(idle_connections(&t, 0), 0); /* no socket asked about */
	close(client);
	close(server);
	wait_count(&t, 0);
	close(lfd);
}

static void test_tcp4(void **state)
{
	(void)state;
	count_a_life("127.0.0.1:0");
}

static void test_tcp6(void **state)
{
	int probe = socket(AF_INET6, SOCK_STREAM, 0);

	(void)state;
	if (probe < 0)
		skip();
	close(probe);
	count_a_life("[::1]:0");
}

static void test_unix_abstract(void **state)
{
	char text[96];

	(void)state;
	snprintf(text, sizeof text, "unix:@emperor-test-idle/%d", (int)getpid());
	count_a_life(text);
}

static void test_unix_path(void **state)
{
	char text[96];

	(void)state;
	snprintf(text, sizeof text, "unix:/tmp/emperor-test-idle-%d.sock", (int)getpid());
	unlink(text + 5);
	count_a_life(text);
	unlink(text + 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp4),
		cmocka_unit_test(test_tcp6),
		cmocka_unit_test(test_unix_abstract),
		cmocka_unit_test(test_unix_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
