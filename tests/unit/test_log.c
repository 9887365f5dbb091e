/* test_log.c — unit tests of lib/log.c's formats: the text line, the JSON object of
 * --log-format json (for our own lines and for a child's line, taken apart when it is
 * in our text format), each line handed whole to the installed writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static struct strbuf captured;

static void capture(const char *line, size_t len, void *arg)
{
	(void)arg;
	strbuf_append(&captured, line, len);
}

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no %s", key);
	return json_object_get_string(v);
}

static void test_own_line_as_json(void **state)
{
	struct json_object *o;
	char pid[16];

	(void)state;
	log_init("emperor");
	log_set_writer(capture, NULL);
	log_set_format(LOG_FORMAT_JSON);
	log_warn("a \"quoted\" %s\tline", "tabbed");
	log_set_format(LOG_FORMAT_TEXT);
	log_set_writer(NULL, NULL);
	assert_non_null(captured.p);
	assert_true(captured.len > 0 && captured.p[captured.len - 1] == '\n');
	assert_null(memchr(captured.p, '\n', captured.len - 1)); /* one line */
	o = json_tokener_parse(captured.p);
	assert_non_null(o);
	assert_string_equal(field(o, "level"), "warning");
	assert_string_equal(field(o, "ident"), "emperor");
	assert_string_equal(field(o, "message"), "a \"quoted\" tabbed\tline");
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	assert_string_equal(field(o, "pid"), pid);
	assert_int_equal(strlen(field(o, "time")), 24); /* 2026-12-03T17:58:45.921Z */
	assert_int_equal(field(o, "time")[23], 'Z');
	json_object_put(o);
	strbuf_free(&captured);
}

static void test_child_line_as_json(void **state)
{
	static const char ours[] = "2026-12-03 17:58:45.930 vassal a[22600]: warning: disk full";
	static const char plain[] = "Listening on :8000 \xff";
	struct strbuf b = { 0 };
	struct json_object *o;

	(void)state;
	log_json_line(&b, 1796320000.5, "a", 41, ours, sizeof ours - 1);
	o = json_tokener_parse(b.p);
	assert_non_null(o);
	assert_string_equal(field(o, "ident"), "vassal a");
	assert_string_equal(field(o, "vassal"), "a");
	assert_string_equal(field(o, "pid"), "22600");
	assert_string_equal(field(o, "level"), "warning");
	assert_string_equal(field(o, "message"), "disk full");
	json_object_put(o);
	strbuf_free(&b);

	log_json_line(&b, 1796320000.5, "a", 41, plain, sizeof plain - 1);
	o = json_tokener_parse(b.p);
	assert_non_null(o);
	assert_string_equal(field(o, "ident"), "a");
	assert_string_equal(field(o, "pid"), "41");
	assert_string_equal(field(o, "level"), "info");
	assert_string_equal(field(o, "message"), "Listening on :8000 \xef\xbf\xbd"); /* U+FFFD */
	assert_string_equal(field(o, "time"), "2026-12-03T17:46:40.500Z");
	json_object_put(o);
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_line_as_json),
		cmocka_unit_test(test_child_line_as_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
