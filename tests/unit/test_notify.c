/* test_notify.c — unit tests of lib/notify.c's sockets: a receiver's abstract name
 * is unguessable (from getrandom(2), not from random(), which a seed replays), and
 * the sender to $NOTIFY_SOCKET never waits on a receiver that does not read (a
 * stalled systemd must not stall the emperor's loop). Message parsing is tested in
 * test_util.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static void ignore(struct notify_server *ns, pid_t sender, const char *msg)
{
	(void)ns, (void)sender, (void)msg;
}

/* The same seed twice, the same pid: the names still differ. */
static void test_server_name_not_from_random(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct notify_server a, b;

	(void)state;
	assert_non_null(loop);
	srandom(42);
	assert_int_equal(notify_server_open(&a, loop, "t", ignore, NULL), 0);
	srandom(42);
	assert_int_equal(notify_server_open(&b, loop, "t", ignore, NULL), 0);
	assert_string_not_equal(a.address, b.address);
	assert_int_equal(strncmp(a.address, "@emperor/", 9), 0);
	notify_server_close(&a);
	notify_server_close(&b);
	ev_loop_destroy(loop);
}

/* A long tag is cut, never the random part. */
static void test_server_name_keeps_nonce_with_long_tag(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char tag[300];
	struct notify_server a;
	unsigned long long nonce = 0;
	int pid = 0, n = 0;

	(void)state;
	memset(tag, 'x', sizeof tag - 1);
	tag[sizeof tag - 1] = '\0';
	assert_int_equal(notify_server_open(&a, loop, tag, ignore, NULL), 0);
	assert_int_equal(sscanf(a.address, "@emperor/%d/%16llx/%n", &pid, &nonce, &n), 2);
	assert_int_equal(pid, (int)getpid());
	assert_true(n > 0 && a.address[n] == 'x');
	notify_server_close(&a);
	ev_loop_destroy(loop);
}

static void on_alarm(int sig)
{
	(void)sig;
	fail_msg("notify_parent() blocked on a full receiver");
}

/* A receiver that never reads: its queue fills (net.unix.max_dgram_qlen, 10 by
 * default), and every further notify_parent() returns -1 at once. */
static void test_parent_never_waits(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char name[64];
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), failed = 0;
	socklen_t len;

	(void)state;
	assert_true(fd >= 0);
	snprintf(name, sizeof name, "@test-notify/%d/%ld", (int)getpid(), (long)time(NULL));
	memcpy(sun.sun_path + 1, name + 1, strlen(name) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	log_set_fd(-1); /* the drops are logged */
	signal(SIGALRM, on_alarm);
	alarm(10);
	for (int i = 0; i < 2000; i++)
		failed += notify_parent("STATUS=filling the queue") < 0;
	alarm(0);
	log_set_fd(2);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	assert_true(failed > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_name_not_from_random),
		cmocka_unit_test(test_server_name_keeps_nonce_with_long_tag),
		cmocka_unit_test(test_parent_never_waits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
