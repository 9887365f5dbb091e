/* test_health.c — the pure parts of vassal/health.c: reading a process's group and
 * RSS from /proc/PID/stat, the lifetime spread of a generation (no two workers due
 * together, all within +-10 %), the one timer's period for each set of limits (none
 * set: no timer), and the env a worker gets; and the config keys that set them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "config.h"
#include "health.h"

static void test_parse_stat(void **state)
{
	/* a comm holding spaces and a ')' of its own; rss (field 24) is 411 pages */
	const char *line = "24972 (we) ird) R 24914 24913 32563 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 "
			   "379582 3133440 411 18446744073709551615 94324168601600 0\n";
	pid_t pgrp = 0;
	long rss = 0;

	(void)state;
	assert_int_equal(health_parse_stat(line, &pgrp, &rss), 0);
	assert_int_equal(pgrp, 24913);
	assert_int_equal(rss, 411);
	assert_int_equal(health_parse_stat("24972 (cat) R 1 2", &pgrp, &rss), -1);
	assert_int_equal(health_parse_stat("no paren", &pgrp, &rss), -1);
}

static void test_lifetime_spread(void **state)
{
	double prev = 0;

	(void)state;
	for (int id = 1; id <= 4; id++) {
		double lo = health_lifetime(100, id, 4, 0), hi = health_lifetime(100, id, 4, 1);
		assert_true(lo >= 90 - 1e-9 && hi <= 110 + 1e-9);
		assert_true(lo >= prev - 1e-9); /* slots in id order, not overlapping */
		assert_true(hi - lo <= 5 + 1e-9);
		prev = hi;
	}
	assert_true(fabs(health_lifetime(100, 1, 1, 0.5) - 100) < 1e-9);
	assert_true(health_lifetime(100, 9, 4, 2) <= 110 + 1e-9); /* out of range: clamped */
}

static void test_period(void **state)
{
	struct cfg_workers cw = { 0 };

	(void)state;
	assert_true(health_period(&cw) == 0); /* nothing configured: no timer at all */
	cw.max_lifetime = 6 * 3600;
	assert_true(health_period(&cw) == 540);
	cw.watchdog = 10;
	assert_true(health_period(&cw) == 2.5);
	cw.max_rss = 1 << 20;
	assert_true(health_period(&cw) == 1);
	cw.stall = 0.01;
	assert_true(health_period(&cw) == 0.05); /* never faster than 50 ms */
}

static void test_env(void **state)
{
	struct cfg_workers cw = { .watchdog = 10, .stall = 0.5 };
	char *add[2], buf[2][48];

	(void)state;
	assert_int_equal(health_env(&cw, add, buf), 2);
	assert_string_equal(add[0], "WATCHDOG_USEC=10000000");
	assert_string_equal(add[1], "VASSAL_STALL_USEC=500000");
	cw.watchdog = cw.stall = 0;
	assert_int_equal(health_env(&cw, add, buf), 0);
}

static void test_config_keys(void **state)
{
	static const char ok[] = "workers:\n  exec: [w]\n  watchdog: 10s\n  max-rss: 512M\n"
				 "  max-lifetime: 6h\n  stall: 60s\n";
	static const char bad[] = "workers:\n  exec: [w]\n  max-rss: 12Q\n";
	struct config_errors errs = { 0 };
	struct config *cfg = config_load_buffer("h.yaml", ok, sizeof ok - 1, &errs);

	(void)state;
	assert_non_null(cfg);
	assert_true(cfg->workers.watchdog == 10);
	assert_int_equal(cfg->workers.max_rss, 512LL << 20);
	assert_true(cfg->workers.max_lifetime == 6 * 3600);
	assert_true(cfg->workers.stall == 60);
	config_free(cfg);
	cfg = config_load_buffer("h.yaml", bad, sizeof bad - 1, &errs);
	assert_null(cfg);
	assert_true(errs.n >= 1);
	assert_non_null(strstr(errs.msgs[0], "h.yaml:3:"));
	config_errors_fini(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_lifetime_spread),
		cmocka_unit_test(test_period),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
