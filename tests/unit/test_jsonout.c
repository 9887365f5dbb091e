/* test_jsonout.c — unit tests of lib/jsonout.c: what the emperor and the masters
 * write as JSON is valid JSON in valid UTF-8, whatever bytes a vassal's name or an
 * error text holds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonout.h"
#include "util.h"

static void test_utf8_sanitize(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "plain" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x91", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x91" },
		{ "caf\xe9", "caf\xef\xbf\xbd" },                  /* Latin-1 byte */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },         /* overlong '/' */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* a surrogate */
		{ "\xf4\x90\x80\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx" }, /* > U+10FFFF */
		{ "ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd" },     /* cut short */
		{ "\xff", "\xef\xbf\xbd" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = utf8_sanitize(cases[i].in, strlen(cases[i].in));
		assert_non_null(got);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void test_json_strings(void **state)
{
	struct strbuf b = { 0 };
	struct json_object *o = json_object_new_object();

	(void)state;
	json_object_object_add(o, "q", jsonout_string("a\"b\\c\nd/e"));
	json_object_object_add(o, "bad", jsonout_string("caf\xe9"));
	json_object_object_add(o, "none", jsonout_string(NULL));
	json_object_object_add(o, "up", jsonout_fixed(12.345, 1));
	json_object_object_add(o, "cpu", jsonout_fixed(0.1, 2));
	jsonout_append(&b, o);
	assert_string_equal(b.p, "{\"q\":\"a\\\"b\\\\c\\nd/e\",\"bad\":\"caf\xef\xbf\xbd\","
			    "\"none\":null,\"up\":12.3,\"cpu\":0.10}\n");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_sanitize),
		cmocka_unit_test(test_json_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
