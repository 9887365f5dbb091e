/* test_peer.c — unit tests of lib/peer.c and lib/status_proto.c: a client of a
 * master's status socket tells the master from another process that took its name
 * (the name is in the abstract namespace: anyone may bind it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer.h"
#include "status_proto.h"

static void test_status_address(void **state)
{
	struct sockaddr_un sun;
	char text[64];
	socklen_t len = status_sockaddr(4242, &sun);

	(void)state;
	status_address(4242, text, sizeof text);
	assert_string_equal(text, "@emperor-vassal/4242");
	assert_int_equal(sun.sun_path[0], '\0');
	assert_memory_equal(sun.sun_path + 1, "emperor-vassal/4242", 19);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 20);
}

/* A listener on the status name of `named` (a pid that is not the listener's). */
static int listen_as(pid_t named)
{
	struct sockaddr_un sun;
	socklen_t len = status_sockaddr(named, &sun);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int connect_to(pid_t named)
{
	struct sockaddr_un sun;
	socklen_t len = status_sockaddr(named, &sun);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

static void test_peer_is_the_listener(void **state)
{
	struct ucred uc;
	pid_t me = getpid(), other = getppid();
	int lfd = listen_as(me), fd = connect_to(me);

	(void)state;
	assert_true(peer_allowed(fd, &uc));
	assert_int_equal(uc.pid, me);
	assert_true(peer_is(fd, me, &uc));
	close(fd), close(lfd);

	/* the name of `other` held by us: an impostor for whoever expects `other` */
	lfd = listen_as(other);
	fd = connect_to(other);
	assert_false(peer_is(fd, other, &uc));
	assert_int_equal(uc.pid, me);
	close(fd), close(lfd);
}

/* A child takes a master's name: its pid is told apart from the master's. */
static void test_peer_in_another_process(void **state)
{
	int ready[2], fd;
	char byte;
	struct ucred uc;
	pid_t child;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int lfd = listen_as(getppid());
		(void)!write(ready[1], "x", 1);
		pause();
		close(lfd);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &byte, 1), 1);
	fd = connect_to(getpid());
	assert_false(peer_is(fd, getpid(), &uc));
	assert_int_equal(uc.pid, child);
	assert_true(peer_is(fd, child, &uc));
	close(fd), close(ready[0]), close(ready[1]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static void test_peer_of_a_non_socket(void **state)
{
	struct ucred uc;
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_false(peer_allowed(p[0], &uc));
	assert_int_equal(uc.pid, 0);
	close(p[0]), close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_address),
		cmocka_unit_test(test_peer_is_the_listener),
		cmocka_unit_test(test_peer_in_another_process),
		cmocka_unit_test(test_peer_of_a_non_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
