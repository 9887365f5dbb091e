/* test_etcd_feed.c — the pure parts of the etcd feed (emperor/etcd_feed.c): its
 * machine, every state × event pair written here independently of the table (an
 * impossible pair keeps the state), and the check of a key's file name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "etcd_feed.h"

#define W FEED_ACT_WATCH
#define R FEED_ACT_READ
#define B FEED_ACT_RETRY
#define L FEED_ACT_LOG

struct outcome {
	const char *next;    /* NULL: impossible */
	int actions;
};

/* read ok, read failed, compacted, retry due */
static const struct outcome expected[FEED_NSTATES][FEED_EV_NEVENTS] = {
	[FEED_READING] = { { "synced", W | L }, { "unreachable", B | L }, { NULL, 0 }, { NULL, 0 } },
	[FEED_SYNCED] = { { NULL, 0 }, { NULL, 0 }, { "resyncing", R | L }, { NULL, 0 } },
	[FEED_RESYNCING] = { { "synced", W | L }, { "unreachable", B | L }, { "resyncing", 0 },
			     { NULL, 0 } },
	[FEED_UNREACHABLE] = { { NULL, 0 }, { NULL, 0 }, { "unreachable", 0 }, { "retrying", R } },
	/* a retry that fails again says nothing: one line per outage, not per retry */
	[FEED_RETRYING] = { { "synced", W | L }, { "unreachable", B }, { "retrying", 0 },
			    { NULL, 0 } },
};

static void test_every_pair(void **state)
{
	(void)state;
	for (int s = 0; s < FEED_NSTATES; s++)
		for (int ev = 0; ev < FEED_EV_NEVENTS; ev++) {
			int act = -1;
			enum etcd_feed_state next = etcd_feed_step(s, ev, &act);
			const struct outcome *o = &expected[s][ev];
			if (!o->next) {
				assert_int_equal(act, FEED_ACT_IMPOSSIBLE);
				assert_int_equal(next, s);
				continue;
			}
			if (strcmp(etcd_feed_state_name(next), o->next) != 0 || act != o->actions)
				fail_msg("%s x event %d: %s/%d, expected %s/%d",
					 etcd_feed_state_name(s), ev, etcd_feed_state_name(next), act,
					 o->next, o->actions);
		}
}

static void test_out_of_range(void **state)
{
	int act;

	(void)state;
	assert_int_equal(etcd_feed_step(FEED_NSTATES, FEED_EV_READ_OK, &act), FEED_NSTATES);
	assert_int_equal(act, FEED_ACT_IMPOSSIBLE);
	assert_string_equal(etcd_feed_state_name(FEED_NSTATES), "?");
}

static bool ok(const char *file)
{
	const char *why = NULL;
	bool good = etcd_feed_file_ok(file, strlen(file), &why);

	assert_true(good || (why && *why));
	return good;
}

static void test_file_names(void **state)
{
	char longest[252], too_long[253];

	(void)state;
	assert_true(ok("hello.yaml"));
	assert_true(ok("a-b_c.1.yml"));
	assert_false(ok("hello.json"));
	assert_false(ok(".hidden.yaml"));
	assert_false(ok("sub/dir.yaml"));
	assert_false(ok("bad key.yaml"));
	assert_false(ok("new\nline.yaml"));
	assert_false(ok(".yaml"));
	assert_false(ok(""));
	assert_false(etcd_feed_file_ok("a\0b.yaml", 8, &(const char *){ NULL }));
	memset(longest, 'x', sizeof longest);
	memcpy(longest + 245, ".yaml", 6); /* 250 bytes */
	assert_true(ok(longest));
	memset(too_long, 'x', sizeof too_long);
	memcpy(too_long + 246, ".yaml", 6);
	assert_false(ok(too_long));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_file_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
