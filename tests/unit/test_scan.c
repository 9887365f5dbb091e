/* test_scan.c — unit tests of the emperor's file filter (emperor/scan.c): which
 * directory entries are vassals and which are editor droppings or hidden files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "emperor.h"
#include "scan.h"

static void test_vassal_files(void **state)
{
	(void)state;
	assert_true(scan_is_candidate("app.yaml"));
	assert_true(scan_is_candidate("app.yml"));
	assert_true(scan_is_candidate("my app.yaml"));
	assert_true(scan_is_candidate("a.b.yaml"));
}

static void test_ignored_files(void **state)
{
	static const char *const ignored[] = {
		".app.yaml.swp", "app.yaml~", "#app.yaml#", "app.yaml.tmp", "4913",
		".hidden.yaml", "..data", ".yaml", "app.yaml.bak", "app.json", "yaml", "",
		"app.YAML",
	};

	(void)state;
	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
		if (scan_is_candidate(ignored[i]))
			fail_msg("'%s' should be ignored", ignored[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vassal_files),
		cmocka_unit_test(test_ignored_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
