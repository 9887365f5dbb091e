/* test_scale.c — the workers' scaling without processes: a range count and its scale:
 * section as the config loader reads and refuses them (file:line:col), and the pure
 * decision (scale_decide, vassal/scale.c) walked sample by sample: a backlog sustained
 * for up-after adds one worker, only once the last one added is ready, never past MAX;
 * every queue empty for down-after removes one, never below MIN; a queue that is
 * neither empty nor long enough does both clocks no good; a start or reload resets
 * the clocks. And the accept queue as the kernel tells it (backlog.c), on loopback
 * sockets of this process: TCP_INFO and sock_diag count the connections not accepted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backlog.h"
#include "config.h"
#include "scale.h"

/* ---- the config -------------------------------------------------------------------- */

static struct config *load(const char *yaml, struct config_errors *errs)
{
	return config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static void assert_refused(const char *yaml, const char *want)
{
	struct config_errors errs = { 0 };
	struct config *cfg = load(yaml, &errs);

	assert_null(cfg);
	assert_true(errs.n >= 1);
	if (strcmp(errs.msgs[0], want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", errs.msgs[0], want);
	config_errors_fini(&errs);
}

static void test_a_range_and_its_defaults(void **state)
{
	struct config *cfg = load("workers: {exec: [w], count: 2..16}\n", NULL);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->workers.count, 2);
	assert_int_equal(cfg->workers.count_max, 16);
	assert_false(cfg->workers.has_scale);
	assert_int_equal(cfg->workers.scale.up_when_backlog, 1);
	assert_true(cfg->workers.scale.up_after > 0.199 && cfg->workers.scale.up_after < 0.201);
	assert_true(cfg->workers.scale.down_after == 30);
	config_free(cfg);

	cfg = load("workers:\n  exec: [w]\n  count: 1..4\n"
		   "  scale: {up-when-backlog: 3, up-after: 100ms, down-after: 1s}\n", NULL);
	assert_non_null(cfg);
	assert_true(cfg->workers.has_scale);
	assert_int_equal(cfg->workers.scale.up_when_backlog, 3);
	assert_true(cfg->workers.scale.up_after > 0.099 && cfg->workers.scale.up_after < 0.101);
	assert_true(cfg->workers.scale.down_after == 1);
	config_free(cfg);

	cfg = load("workers: {exec: [w], count: 3}\n", NULL); /* today's behaviour */
	assert_non_null(cfg);
	assert_int_equal(cfg->workers.count, 3);
	assert_int_equal(cfg->workers.count_max, 3);
	config_free(cfg);
}

static void test_bad_ranges_named_at_their_place(void **state)
{
	(void)state;
	assert_refused("workers: {exec: [w], count: 5..2}\n",
		       "t.yaml:1:29: workers.count: range 5..2: MIN must be below MAX (a fixed count "
		       "is one number)");
	assert_refused("workers: {exec: [w], count: 3..3}\n",
		       "t.yaml:1:29: workers.count: range 3..3: MIN must be below MAX (a fixed count "
		       "is one number)");
	assert_refused("workers: {exec: [w], count: 0..3}\n",
		       "t.yaml:1:29: workers.count: 0 is out of range (1..1024)");
	assert_refused("workers: {exec: [w], count: 1..1025}\n",
		       "t.yaml:1:29: workers.count: 1025 is out of range (1..1024)");
	assert_refused("workers: {exec: [w], count: 2..x}\n",
		       "t.yaml:1:29: workers.count: expected an integer, got 'x'");
	assert_refused("workers:\n  exec: [w]\n  count: 2\n  scale: {up-after: 1s}\n",
		       "t.yaml:4:10: workers.scale: applies to a range count only (count: MIN..MAX); "
		       "count is 2");
	assert_refused("workers:\n  exec: [w]\n  count: 1..2\n  scale: {up-after: 1ms}\n",
		       "t.yaml:4:21: workers.scale.up-after: '1ms' is out of range (10ms..24h)");
	assert_refused("workers:\n  exec: [w]\n  count: 1..2\n  scale: {up-when-backlog: 0}\n",
		       "t.yaml:4:28: workers.scale.up-when-backlog: 0 is out of range (1..65535)");
}

/* ---- the decision ------------------------------------------------------------------ */

static const struct cfg_scale cfg = { .up_when_backlog = 2, .up_after = 0.2, .down_after = 1.0 };

struct step {
	double now;
	int queued, target, ready;
	enum scale_verdict want;
};

/* Runs the steps on one clock, range 1..3, the master running. */
static void walk(struct scale_clock *c, const struct step *steps, size_t n)
{
	char why[160];

	for (size_t i = 0; i < n; i++) {
		const struct step *st = &steps[i];
		struct scale_sample s = { .now = st->now, .queued = st->queued, .target = st->target,
					  .ready = st->ready, .min = 1, .max = 3, .running = true };
		enum scale_verdict got = scale_decide(c, &cfg, &s, why, sizeof why);
		if (got != st->want)
			fail_msg("step %zu (t=%.2f queue %d target %d ready %d): verdict %d, want %d",
				 i, st->now, st->queued, st->target, st->ready, got, st->want);
		if (got != SCALE_HOLD)
			assert_true(why[0] != '\0');
	}
}

static void test_up_after_a_sustained_backlog(void **state)
{
	struct scale_clock c = { 0 };
	static const struct step steps[] = {
		{ 10.00, 2, 1, 1, SCALE_HOLD },
		{ 10.10, 5, 1, 1, SCALE_HOLD },
		{ 10.19, 2, 1, 1, SCALE_HOLD },
		{ 10.20, 2, 1, 1, SCALE_UP },   /* 200 ms at >= 2 */
		{ 10.30, 2, 2, 1, SCALE_HOLD }, /* the added one is not ready */
		{ 10.45, 2, 2, 1, SCALE_HOLD },
		{ 10.46, 2, 2, 2, SCALE_UP },   /* ready, and sustained since the last add */
		{ 10.70, 9, 3, 3, SCALE_HOLD }, /* at the maximum */
		{ 11.70, 9, 3, 3, SCALE_HOLD },
	};

	(void)state;
	walk(&c, steps, sizeof steps / sizeof *steps);
}

static void test_a_backlog_must_not_break(void **state)
{
	struct scale_clock c = { 0 };
	static const struct step steps[] = {
		{ 1.00, 2, 1, 1, SCALE_HOLD },
		{ 1.15, 1, 1, 1, SCALE_HOLD },  /* below the threshold: the clock restarts */
		{ 1.20, 2, 1, 1, SCALE_HOLD },
		{ 1.35, 3, 1, 1, SCALE_HOLD },
		{ 1.40, 2, 1, 1, SCALE_UP },
	};

	(void)state;
	walk(&c, steps, sizeof steps / sizeof *steps);
}

static void test_down_after_empty_queues(void **state)
{
	struct scale_clock c = { 0 };
	static const struct step steps[] = {
		{ 0.0, 0, 3, 3, SCALE_HOLD },
		{ 0.5, 1, 3, 3, SCALE_HOLD },   /* not empty: no removal, nor an add (1 < 2) */
		{ 0.6, 0, 3, 3, SCALE_HOLD },
		{ 1.5, 0, 3, 3, SCALE_HOLD },
		{ 1.6, 0, 3, 3, SCALE_DOWN },   /* empty since 0.6 */
		{ 2.5, 0, 2, 2, SCALE_HOLD },   /* the next one needs another down-after */
		{ 2.6, 0, 2, 2, SCALE_DOWN },
		{ 3.6, 0, 1, 1, SCALE_HOLD },   /* never below the minimum */
		{ 9.0, 0, 1, 1, SCALE_HOLD },
	};

	(void)state;
	walk(&c, steps, sizeof steps / sizeof *steps);
}

static void test_a_reload_resets_the_clocks(void **state)
{
	struct scale_clock c = { 0 };
	struct scale_sample s = { .now = 1.0, .queued = 5, .target = 1, .ready = 1, .min = 1,
				  .max = 3, .running = true };
	char why[160];

	(void)state;
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	s.now = 1.1, s.running = false; /* reloading */
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	s.now = 1.25, s.running = true;
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	s.now = 1.44;
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	s.now = 1.45; /* 200 ms since the reload ended, not since 1.0 */
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_UP);
}

/* A hold at the maximum is said once per backlog, not at every sample. */
static void test_a_hold_at_max_said_once(void **state)
{
	struct scale_clock c = { 0 };
	struct scale_sample s = { .now = 1.0, .queued = 5, .target = 3, .ready = 3, .min = 1,
				  .max = 3, .running = true };
	char why[160];

	(void)state;
	scale_decide(&c, &cfg, &s, why, sizeof why);
	s.now = 1.2;
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	assert_non_null(strstr(why, "already at the maximum of 3 workers"));
	s.now = 1.3;
	assert_int_equal(scale_decide(&c, &cfg, &s, why, sizeof why), SCALE_HOLD);
	assert_string_equal(why, "");
	s.now = 1.4, s.queued = 0; /* the backlog ends; a new one is said again */
	scale_decide(&c, &cfg, &s, why, sizeof why);
	s.now = 1.5, s.queued = 4;
	scale_decide(&c, &cfg, &s, why, sizeof why);
	s.now = 1.7;
	scale_decide(&c, &cfg, &s, why, sizeof why);
	assert_non_null(strstr(why, "already at the maximum"));
}

/* ---- the accept queue (loopback, this process only) -------------------------------- */

/* Connects n clients to the listener at sa (never accepted); their fds into fds. */
static void connect_n(const struct sockaddr *sa, socklen_t len, int family, int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], sa, len), 0);
	}
}

static void test_backlog_of_a_tcp_socket(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	struct backlog b;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fds[3], max = 0;

	(void)state;
	backlog_init(&b);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(backlog_queued(&b, lfd, AF_INET, &max), 0);
	assert_int_equal(max, 16);
	connect_n((struct sockaddr *)&sin, len, AF_INET, fds, 3);
	assert_int_equal(backlog_queued(&b, lfd, AF_INET, NULL), 3);
	close(accept(lfd, NULL, NULL));
	assert_int_equal(backlog_queued(&b, lfd, AF_INET, NULL), 2);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(lfd);
}

static void test_backlog_of_a_unix_socket(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	struct backlog b;
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fds[2], max = 0;

	(void)state;
	backlog_init(&b);
	assert_true(lfd >= 0);
	/* abstract: nothing to remove afterwards */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  (size_t)snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1,
					   "emperor-test-backlog-%d", (int)getpid()));
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(backlog_queued(&b, lfd, AF_UNIX, &max), 0);
	assert_int_equal(max, 8);
	connect_n((struct sockaddr *)&sun, len, AF_UNIX, fds, 2);
	assert_int_equal(backlog_queued(&b, lfd, AF_UNIX, NULL), 2);
	for (int i = 0; i < 2; i++)
		close(fds[i]);
	close(lfd);
	close(b.nl_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_range_and_its_defaults),
		cmocka_unit_test(test_bad_ranges_named_at_their_place),
		cmocka_unit_test(test_up_after_a_sustained_backlog),
		cmocka_unit_test(test_a_backlog_must_not_break),
		cmocka_unit_test(test_down_after_empty_queues),
		cmocka_unit_test(test_a_reload_resets_the_clocks),
		cmocka_unit_test(test_a_hold_at_max_said_once),
		cmocka_unit_test(test_backlog_of_a_tcp_socket),
		cmocka_unit_test(test_backlog_of_a_unix_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
