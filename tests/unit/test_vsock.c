/* test_vsock.c — unit tests of vassal/vsock.c's vsock_adopt(), the one place where the
 * master (LISTEN_FDS) and the emperor's on-demand holder (its held sockets and an
 * upgrade's) set their sockets up: a given socket is taken by the wanted one of its
 * address (the same fd, not a second bind), the others are bound, the given ones no
 * socket wants are closed; one socket that cannot be bound leaves every other one in
 * the table (the on-demand holder keeps serving them). Abstract unix addresses, named
 * after our pid: no port, no file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "parse.h"
#include "vsock.h"

/* "unix:@emperor-test-vsock/PID/name" as a wanted stream socket. */
static struct cfg_socket want(const char *name)
{
	struct cfg_socket s = { .name = (char *)name, .mode = 0666 };
	char text[128];
	const char *why = NULL;

	snprintf(text, sizeof text, "unix:@emperor-test-vsock/%d/%s", (int)getpid(), name);
	assert_int_equal(parse_addr(text, &s.addr, &why), 0);
	return s;
}

/* A socket of type listening (stream) or bound (datagram) at s's address. */
static int bound(const struct cfg_socket *s, int type)
{
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (const struct sockaddr *)&s->addr.ss, s->addr.len), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

static bool bound_to(int fd, const struct cfg_socket *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && len == s->addr.len &&
	       memcmp(&ss, &s->addr.ss, len) == 0;
}

static void test_taken_by_address_the_rest_bound_the_unwanted_closed(void **state)
{
	struct cfg_socket socks[] = { want("a"), want("b") }, gone = want("gone");
	struct vsock_given g = { .label = "test" };
	struct vsock_table t = { 0 };
	int a = bound(&socks[0], SOCK_STREAM), x = bound(&gone, SOCK_STREAM), pipe_fds[2];

	(void)state;
	assert_int_equal(pipe(pipe_fds), 0);
	close(pipe_fds[1]);
	assert_int_equal(vsock_given_add(&g, x, NULL), 0);
	assert_int_equal(vsock_given_add(&g, pipe_fds[0], NULL), 0); /* no socket */
	assert_int_equal(vsock_given_add(&g, a, NULL), 0);

	assert_int_equal(vsock_adopt(&t, socks, 2, NULL, &g), 0);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.n_workers, 2);
	assert_int_equal(t.v[0].fd, a); /* the same socket, its accept queue with it */
	assert_true(t.v[0].inherited);
	assert_false(t.v[1].inherited);
	assert_true(bound_to(t.v[1].fd, &socks[1]));
	assert_false(is_open(x));
	assert_false(is_open(pipe_fds[0]));
	assert_int_equal(g.n, 0);
	vsock_close_all(&t, false);
}

/* A datagram socket at a wanted stream socket's address is not taken for it. */
static void test_the_type_must_match(void **state)
{
	struct cfg_socket socks[] = { want("s") }, other = want("d");
	struct vsock_given g = { .label = "test" };
	struct vsock_table t = { 0 };
	int d = bound(&other, SOCK_DGRAM);

	(void)state;
	socks[0].addr = other.addr;
	assert_int_equal(vsock_given_add(&g, d, NULL), 0);
	assert_int_equal(vsock_adopt(&t, socks, 1, NULL, &g), 0);
	assert_int_equal(t.n, 1);
	assert_false(t.v[0].inherited); /* bound anew: Linux keeps a name per socket type */
	assert_true(t.v[0].fd != d);
	assert_false(is_open(d));
	vsock_close_all(&t, false);
}

/* One socket that cannot be bound: -1, and every other one is in the table, the
 * given one still the same fd (a changed address does not cost the others). */
static void test_one_failure_keeps_the_others(void **state)
{
	struct cfg_socket socks[] = { want("k"), want("bad"), want("n") };
	struct vsock_given g = { .label = "test" };
	struct vsock_table t = { 0 };
	const char *why = NULL;
	int k = bound(&socks[0], SOCK_STREAM);

	(void)state;
	assert_int_equal(parse_addr("unix:/nonexistent-dir-of-test-vsock/x.sock", &socks[1].addr, &why), 0);
	assert_int_equal(vsock_given_add(&g, k, "k"), 0);
	assert_int_equal(vsock_adopt(&t, socks, 3, NULL, &g), -1);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.v[0].fd, k);
	assert_string_equal(t.v[1].name, "n");
	assert_true(bound_to(t.v[1].fd, &socks[2]));
	vsock_close_all(&t, false);
}

/* An upgrade's pool: the socket of a wanted address moves into a record's given set,
 * the others stay in the pool for the records to come. */
static void test_move_from_a_pool(void **state)
{
	struct cfg_socket mine = want("mine"), theirs = want("theirs");
	struct vsock_given pool = { .label = "pool" }, g = { .label = "test" };
	struct vsock_table t = { 0 };
	int m = bound(&mine, SOCK_STREAM), o = bound(&theirs, SOCK_STREAM);

	(void)state;
	assert_int_equal(vsock_given_add(&pool, o, NULL), 0);
	assert_int_equal(vsock_given_add(&pool, m, NULL), 0);
	assert_int_equal(vsock_given_move(&g, &pool, &mine.addr, SOCK_STREAM), m);
	assert_int_equal(vsock_given_move(&g, &pool, &mine.addr, SOCK_STREAM), -1);
	assert_int_equal(pool.n, 1);
	assert_int_equal(vsock_adopt(&t, &mine, 1, NULL, &g), 0);
	assert_int_equal(t.v[0].fd, m);
	assert_true(is_open(o));
	vsock_given_close(&pool);
	assert_false(is_open(o));
	vsock_close_all(&t, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_taken_by_address_the_rest_bound_the_unwanted_closed),
		cmocka_unit_test(test_the_type_must_match),
		cmocka_unit_test(test_one_failure_keeps_the_others),
		cmocka_unit_test(test_move_from_a_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
