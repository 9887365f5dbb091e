/* test_util.c — unit tests of lib/util.c (environment building, string vectors,
 * /proc/PID/stat) and lib/notify.c's message parsing: the pieces every spawn and every
 * READY=1 rely on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "notify.h"
#include "util.h"

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static void test_env_build_adds_replaces_and_drops(void **state)
{
	char *base[] = { "PATH=/bin", "HOME=/root", "LISTEN_FDS=2", "A=old", NULL };
	char *add[] = { "A=new", "B=2", "NOTEQUALS", NULL };
	const char *drop[] = { "LISTEN_FDS", "MISSING", NULL };
	char **env = env_build(base, add, drop);

	(void)state;
	assert_non_null(env);
	assert_string_equal(env_get(env, "PATH"), "/bin");
	assert_string_equal(env_get(env, "A"), "new");
	assert_string_equal(env_get(env, "B"), "2");
	assert_null(env_get(env, "LISTEN_FDS"));
	assert_null(env_get(env, "NOTEQUALS"));
	assert_int_equal(strv_len(env), 4);
	strv_free(env);
}

static void test_env_build_empty_base(void **state)
{
	char *empty[] = { NULL };
	char *add[] = { "ONLY=1", NULL };
	char **env = env_build(empty, add, NULL);

	(void)state;
	assert_int_equal(strv_len(env), 1);
	assert_string_equal(env[0], "ONLY=1");
	strv_free(env);
}

static void test_env_set_value_with_equals(void **state)
{
	char *empty[] = { NULL };
	char **env = env_build(empty, NULL, NULL);

	(void)state;
	env = env_set(env, "K", "a=b");
	env = env_set(env, "K", "c");
	assert_int_equal(strv_len(env), 1);
	assert_string_equal(env[0], "K=c");
	strv_free(env);
}

/* A variable name of any length is kept (a 256-byte table used to drop it silently). */
static void test_env_build_long_name(void **state)
{
	char *empty[] = { NULL }, name[600], *add[] = { name, NULL };
	char **env;

	(void)state;
	memset(name, 'N', 500);
	strcpy(name + 500, "=v");
	env = env_build(empty, add, NULL);
	assert_int_equal(strv_len(env), 1);
	assert_string_equal(env[0], name);
	strv_free(env);
}

/* One list of internal variables: none reaches a child, whatever its kind. */
static void test_env_for_child_drops_every_internal_variable(void **state)
{
	char *base[] = { "PATH=/bin", "EMPEROR_FD=3", "EMPEROR_STATE_FD=9", "VASSAL_DAEMONS=a=1",
			 "VASSAL_CONFIG_FD=5", "VASSAL_RELOAD_STATE=generation=2 started=1.5 pending=0",
			 "LISTEN_FDS=2", "LISTEN_PID=1",
			 "LISTEN_FDNAMES=a:b", "NOTIFY_SOCKET=@x", "VASSAL_OWN=kept", NULL };
	char *add[] = { "NOTIFY_SOCKET=@mine", NULL };
	char **env = env_for_child(base, add);

	(void)state;
	assert_non_null(env);
	for (size_t i = 0; env_internal[i]; i++)
		if (strcmp(env_internal[i], "NOTIFY_SOCKET") != 0)
			assert_null(env_get(env, env_internal[i]));
	assert_string_equal(env_get(env, "NOTIFY_SOCKET"), "@mine"); /* what the child is given */
	assert_string_equal(env_get(env, "PATH"), "/bin");
	assert_string_equal(env_get(env, "VASSAL_OWN"), "kept");
	assert_int_equal(strv_len(env), 3);
	strv_free(env);
}

static void test_env_set_null_stays_null(void **state)
{
	(void)state;
	assert_null(env_set(NULL, "K", "v")); /* an earlier failure carries through */
}

static void test_strv_dup_is_deep(void **state)
{
	char a[] = "x", *v[] = { a, NULL };
	char **d = strv_dup(v);

	(void)state;
	a[0] = 'y';
	assert_string_equal(d[0], "x");
	assert_null(d[1]);
	strv_free(d);
}

static void test_notify_has_matches_whole_lines(void **state)
{
	(void)state;
	assert_true(notify_has("READY=1", "READY=1"));
	assert_true(notify_has("STATUS=x\nREADY=1\n", "READY=1"));
	assert_false(notify_has("READY=10", "READY=1"));
	assert_false(notify_has("XREADY=1", "READY=1"));
	assert_false(notify_has("STATUS=READY=1", "READY=1"));
	assert_false(notify_has("", "READY=1"));
}

static void test_notify_get(void **state)
{
	char out[8];

	(void)state;
	assert_string_equal(notify_get("READY=1\nSTATUS=serving", "STATUS", out, sizeof out),
			    "serving");
	assert_string_equal(notify_get("STATUS=a very long status", "STATUS", out, sizeof out),
			    "a very ");
	assert_null(notify_get("READY=1", "STATUS", out, sizeof out));
	assert_null(notify_get("STATUSX=1", "STATUS", out, sizeof out));
}

/* /proc/PID/stat past a command name holding ") " and parentheses: the state and the
 * parent pid read right; a pid that is not there gives NULL. */
static void test_proc_stat_fields(void **state)
{
	char buf[512], old[17] = "";
	const char *st;
	int ppid = -1;

	(void)state;
	assert_int_equal(prctl(PR_GET_NAME, old), 0);
	assert_int_equal(prctl(PR_SET_NAME, "a) Z 1 (b"), 0);
	st = proc_stat_fields((int)getpid(), buf, sizeof buf);
	assert_int_equal(prctl(PR_SET_NAME, old), 0);
	assert_non_null(st);
	assert_int_equal(st[0], 'R');
	assert_int_equal(sscanf(st, "%*c %d", &ppid), 1);
	assert_int_equal(ppid, (int)getppid());
	assert_null(proc_stat_fields(0, buf, sizeof buf));
	assert_null(proc_stat_fields(0x3fffffff, buf, sizeof buf)); /* above any pid_max */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_build_adds_replaces_and_drops),
		cmocka_unit_test(test_proc_stat_fields),
		cmocka_unit_test(test_env_build_empty_base),
		cmocka_unit_test(test_env_set_value_with_equals),
		cmocka_unit_test(test_env_build_long_name),
		cmocka_unit_test(test_env_for_child_drops_every_internal_variable),
		cmocka_unit_test(test_env_set_null_stays_null),
		cmocka_unit_test(test_strv_dup_is_deep),
		cmocka_unit_test(test_notify_has_matches_whole_lines),
		cmocka_unit_test(test_notify_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
