/* test_prom.c — unit tests of lib/prom.c: the one table of metric families that the
 * emperor and the masters both write from, and label escaping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "prom.h"

static void test_families_are_well_formed(void **state)
{
	(void)state;
	for (int f = 0; f < PROM_N_FAMILIES; f++) {
		const struct prom_family_info *i = &prom_families[f];
		size_t len;
		assert_non_null(i->name);
		assert_non_null(i->help);
		len = strlen(i->name);
		/* ours, or the process_* names every Prometheus client library gives */
		assert_true(strncmp(i->name, "emperor_", 8) == 0 || strncmp(i->name, "process_", 8) == 0);
		assert_true(strcmp(i->type, "gauge") == 0 || strcmp(i->type, "counter") == 0 ||
			    strcmp(i->type, "histogram") == 0);
		/* a counter's name ends in _total, no other does */
		assert_int_equal(strcmp(i->type, "counter") == 0,
				 len > 6 && strcmp(i->name + len - 6, "_total") == 0);
		for (int g = 0; g < f; g++)
			assert_string_not_equal(prom_families[g].name, i->name);
	}
}

static void test_header(void **state)
{
	struct strbuf b = { 0 };

	(void)state;
	prom_header(&b, PROM_RESTARTS);
	assert_string_equal(b.p, "# HELP emperor_vassal_restarts_total Respawns after a vassal died unasked.\n"
				 "# TYPE emperor_vassal_restarts_total counter\n");
	strbuf_free(&b);
}

static void test_label_escaping(void **state)
{
	char label[64];

	(void)state;
	assert_string_equal(prom_label("q\"uo\\te\n", label, sizeof label), "q\\\"uo\\\\te\\n");
	assert_string_equal(prom_label("abcdefgh", label, 6), "abc"); /* bounded */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_are_well_formed),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_label_escaping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
