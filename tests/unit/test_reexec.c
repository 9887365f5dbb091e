/* test_reexec.c — the new image's pick-up of what the previous one handed over
 * (vassal/reexec.c): the reload state VASSAL_RELOAD_STATE read exactly or refused with
 * its value logged, the survive-reload daemons, and every handover variable removed
 * from the environment before any child could inherit it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "reexec.h"

static void clear_env(void)
{
	unsetenv("VASSAL_RELOAD_STATE");
	unsetenv("VASSAL_DAEMONS");
	unsetenv("VASSAL_CONFIG_FD");
}

static void test_fresh_start(void **state)
{
	struct reexec_state st;

	(void)state;
	clear_env();
	reexec_restore(&st);
	assert_int_equal(st.generation, 1);
	assert_false(st.after_reexec);
	assert_false(st.reload_pending);
	assert_null(st.config_text);
	assert_null(st.daemons);
	reexec_state_fini(&st);
}

static void test_handed_over(void **state)
{
	struct reexec_state st;

	(void)state;
	clear_env();
	setenv("VASSAL_RELOAD_STATE", "generation=7 started=123.500000 pending=1", 1);
	setenv("VASSAL_DAEMONS", "keeper=4242,cache=4343", 1);
	reexec_restore(&st);
	assert_int_equal(st.generation, 7);
	assert_true(st.reload_started > 123.49 && st.reload_started < 123.51);
	assert_true(st.after_reexec);
	assert_true(st.reload_pending);
	assert_string_equal(st.daemons, "keeper=4242,cache=4343");
	/* Nothing is left for a child to inherit. */
	assert_null(getenv("VASSAL_RELOAD_STATE"));
	assert_null(getenv("VASSAL_DAEMONS"));
	reexec_state_fini(&st);
}

/* A scaled vassal's worker count crosses the exec (scale.h); without it, 0. */
static void test_workers_target_handed_over(void **state)
{
	struct reexec_state st;

	(void)state;
	clear_env();
	setenv("VASSAL_RELOAD_STATE", "generation=2 started=1.000000 pending=0 workers=7", 1);
	reexec_restore(&st);
	assert_int_equal(st.generation, 2);
	assert_int_equal(st.workers_target, 7);
	assert_true(st.after_reexec);
	reexec_state_fini(&st);
	clear_env();
	setenv("VASSAL_RELOAD_STATE", "generation=2 started=1.000000 pending=0", 1);
	reexec_restore(&st);
	assert_int_equal(st.workers_target, 0);
	assert_true(st.after_reexec);
	reexec_state_fini(&st);
}

static void test_malformed_state_refused(void **state)
{
	static const char *const bad[] = {
		"generation=0 started=1.0 pending=0", "generation=3 started=1.0 pending=2",
		"generation=3 started=1.0", "generation=3 started=1.0 pending=1 extra",
		"pending=1", "", "generation=3 started=1.0 pending=0 workers=0",
		"generation=3 started=1.0 pending=0 workers=x", "generation=3 started=1.0 pending=0 workers=2 x",
		"generation=3 started=1.0 pending=0 workers=",
	};
	struct reexec_state st;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		clear_env();
		setenv("VASSAL_RELOAD_STATE", bad[i], 1);
		setenv("VASSAL_CONFIG_FD", "not-a-number", 1);
		reexec_restore(&st);
		assert_int_equal(st.generation, 1);
		assert_false(st.after_reexec);
		assert_false(st.reload_pending);
		assert_int_equal(st.workers_target, 0);
		assert_null(st.config_text);
		assert_null(getenv("VASSAL_RELOAD_STATE"));
		assert_null(getenv("VASSAL_CONFIG_FD"));
		reexec_state_fini(&st);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_start),
		cmocka_unit_test(test_handed_over),
		cmocka_unit_test(test_workers_target_handed_over),
		cmocka_unit_test(test_malformed_state_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
