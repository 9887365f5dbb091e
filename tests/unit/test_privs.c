/* test_privs.c — unit tests of lib/privs.c's resolution of user: and group: values: a
 * name or a number, and a number that does not fit a uid is refused (it used to wrap:
 * "4294967296" became uid 0, root). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"

static void test_numeric_ids(void **state)
{
	struct privs p;
	char why[160] = "";

	(void)state;
	assert_int_equal(privs_resolve("4242", "4343", &p, why, sizeof why), 0);
	assert_true(p.set);
	assert_int_equal(p.uid, 4242);
	assert_int_equal(p.gid, 4343);
	assert_int_equal(privs_resolve("4294967294", NULL, &p, why, sizeof why), 0);
	assert_int_equal(p.uid, 4294967294U);
}

static void test_ids_that_do_not_fit_are_refused(void **state)
{
	static const char *const bad[] = { "4294967296", "4294967295", "18446744073709551616",
					   "-1", "+0", " 0", "0x0" };
	struct privs p;
	char why[160];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[96];
		why[0] = '\0';
		if (privs_resolve(bad[i], NULL, &p, why, sizeof why) == 0)
			fail_msg("user '%s' accepted as uid %u", bad[i], (unsigned)p.uid);
		snprintf(want, sizeof want, "user '%s': no such user", bad[i]);
		assert_string_equal(why, want);
		if (privs_resolve(NULL, bad[i], &p, why, sizeof why) == 0)
			fail_msg("group '%s' accepted as gid %u", bad[i], (unsigned)p.gid);
		snprintf(want, sizeof want, "group '%s': no such group", bad[i]);
		assert_string_equal(why, want);
	}
}

static void test_unset_is_ourselves(void **state)
{
	struct privs p;
	char why[160];

	(void)state;
	assert_int_equal(privs_resolve(NULL, NULL, &p, why, sizeof why), 0);
	assert_false(p.set);
	assert_int_equal(p.uid, getuid());
	assert_int_equal(p.gid, getgid());
	assert_int_equal(privs_drop(&p, why, sizeof why), 0); /* nothing to do */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric_ids),
		cmocka_unit_test(test_ids_that_do_not_fit_are_refused),
		cmocka_unit_test(test_unset_is_ourselves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
