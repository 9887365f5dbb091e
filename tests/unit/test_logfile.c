/* test_logfile.c — the pure parts of vassal/logfile.c and its config: the rotated
 * files' names, and `log:` as a path or as a mapping {file, max-size, keep}. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "logfile.h"

static void test_names(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(logfile_name("a.log", 0, buf, sizeof buf), 0);
	assert_string_equal(buf, "a.log");
	assert_int_equal(logfile_name("a.log", 12, buf, sizeof buf), 0);
	assert_string_equal(buf, "a.log.12");
	assert_int_equal(logfile_name("very-long-name.log", 1, buf, sizeof buf), -1);
}

static struct config *load(const char *text, struct config_errors *errs)
{
	return config_load_buffer("l.yaml", text, strlen(text), errs);
}

static void test_log_keys(void **state)
{
	struct config_errors errs = { 0 };
	struct config *cfg;

	(void)state;
	cfg = load("workers: {exec: [w]}\nlog: ./a.log\n", &errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->log.file, "./a.log");
	assert_int_equal(cfg->log.max_size, 0); /* a path alone: never rotated */
	assert_int_equal(cfg->log.keep, 5);
	config_free(cfg);
	cfg = load("workers: {exec: [w]}\nlog:\n  file: b.log\n  max-size: 64M\n  keep: 3\n", &errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->log.file, "b.log");
	assert_int_equal(cfg->log.max_size, 64LL << 20);
	assert_int_equal(cfg->log.keep, 3);
	config_free(cfg);
	cfg = load("workers: {exec: [w]}\n", &errs);
	assert_non_null(cfg);
	assert_null(cfg->log.file);
	config_free(cfg);
}

static void test_log_errors(void **state)
{
	static const char *const bad[][2] = {
		{ "workers: {exec: [w]}\nlog:\n  max-size: 1M\n", "l.yaml:3:13: log.max-size: applies to a log file only: set 'file' too" },
		{ "workers: {exec: [w]}\nlog:\n  file: a\n  keep: 0\n", "l.yaml:4:9: log.keep:" },
		{ "workers: {exec: [w]}\nlog:\n  file: a\n  max-size: 5Q\n", "l.yaml:4:13: log.max-size:" },
		{ "workers: {exec: [w]}\nlog:\n  file: a\n  keeep: 2\n", "did you mean 'keep'?" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct config_errors errs = { 0 };
		assert_null(load(bad[i][0], &errs));
		assert_true(errs.n >= 1);
		if (!strstr(errs.msgs[0], bad[i][1]))
			fail_msg("\"%s\": expected \"%s\"", errs.msgs[0], bad[i][1]);
		config_errors_fini(&errs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_log_keys),
		cmocka_unit_test(test_log_errors),
	};

	return cmocka_run_group_tests_name("logfile", tests, NULL, NULL);
}
