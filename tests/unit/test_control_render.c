/* test_control_render.c — unit tests of emperor/control_render.c's checks of what a
 * master answers: a master (maybe running as another user) speaks for its own vassal
 * only, and its text cannot carry terminal escapes to emperorctl. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../emperor/control_int.h"

static void test_master_samples_for_its_own_vassal(void **state)
{
	static const char reply[] =
		"emperor_vassal_workers{vassal=\"a\",state=\"ready\"} 2\n"
		"emperor_vassal_generation{vassal=\"a\"} 3\n"
		"emperor_vassal_generation{vassal=\"b\"} 9\n"          /* another vassal's */
		"emperor_vassal_generation{vassal=\"ab\"} 9\n"         /* a longer name */
		"emperor_vassals{state=\"ready\"} 99\n"                /* the emperor's family */
		"# TYPE emperor_vassal_generation counter\n"          /* no comments */
		"emperor_vassal_children{kind=\"worker\",vassal=\"a\"} 1\n" /* vassal not first */
		"emperor_vassal_generation{vassal=\"a\"} 4\x1b[2J\n"  /* a control character */
		"emperor_vassal_workers_configured{vassal=\"a\"} 2";  /* no final newline */
	struct strbuf b = { 0 };

	(void)state;
	assert_int_equal(ctl_render_master_samples(reply, sizeof reply - 1, "a", &b), 7);
	assert_string_equal(b.p, "emperor_vassal_workers{vassal=\"a\",state=\"ready\"} 2\n"
				 "emperor_vassal_generation{vassal=\"a\"} 3\n");
	strbuf_free(&b);
}

static void test_master_samples_escaped_name(void **state)
{
	static const char reply[] = "emperor_vassal_generation{vassal=\"q\\\"uo\\\\te\"} 1\n";
	struct strbuf b = { 0 };

	(void)state;
	assert_int_equal(ctl_render_master_samples(reply, sizeof reply - 1, "q\"uo\\te", &b), 0);
	assert_string_equal(b.p, reply);
	strbuf_free(&b);
}

static void test_master_text_without_escapes(void **state)
{
	static const char reply[] = "KIND NAME\nworker \x1b]0;owned\x07w\xc3\xa9\n";
	struct strbuf b = { 0 };

	(void)state;
	ctl_render_master_text(reply, sizeof reply - 1, &b);
	assert_string_equal(b.p, "KIND NAME\nworker ?]0;owned?w\xc3\xa9\n");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_samples_for_its_own_vassal),
		cmocka_unit_test(test_master_samples_escaped_name),
		cmocka_unit_test(test_master_text_without_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
