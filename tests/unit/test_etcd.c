/* test_etcd.c — the etcd client's parts that need no network: base64, prefix range
 * ends, the reconnect backoff, the connection state table (every row, and the story
 * of an outage told as events), and the splitter that cuts a watch stream into JSON
 * objects however curl chunks it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "../../lib/etcd_internal.h"

static void test_b64_vectors(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					     "Zm9vYmFy" };
	(void)state;
	for (size_t i = 0; i < 7; i++) {
		char *e = etcd_b64_encode(plain[i], strlen(plain[i])), *d;
		size_t len = 99;
		assert_string_equal(e, coded[i]);
		d = etcd_b64_decode(e, strlen(e), &len);
		assert_non_null(d);
		assert_int_equal(len, strlen(plain[i]));
		assert_memory_equal(d, plain[i], len);
		free(e);
		free(d);
	}
}

static void test_b64_binary_and_bad_input(void **state)
{
	unsigned char all[256];
	size_t len;
	char *e, *d;

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= 256; n += 37) {
		e = etcd_b64_encode(all, n);
		d = etcd_b64_decode(e, strlen(e), &len);
		assert_int_equal(len, n);
		assert_memory_equal(d, all, n);
		free(e);
		free(d);
	}
	assert_null(etcd_b64_decode("Zm9", 3, &len));       /* not a multiple of 4 */
	assert_null(etcd_b64_decode("Zm!v", 4, &len));      /* outside the alphabet */
	assert_null(etcd_b64_decode("Z===", 4, &len));      /* three pads */
}

static void test_prefix_end(void **state)
{
	size_t len;
	char *e;

	(void)state;
	e = etcd_prefix_end("/emperor/vassals/", 17, &len);
	assert_int_equal(len, 17);
	assert_memory_equal(e, "/emperor/vassals0", 17);
	free(e);
	e = etcd_prefix_end("a\xff\xff", 3, &len); /* carries past 0xff */
	assert_int_equal(len, 1);
	assert_memory_equal(e, "b", 1);
	free(e);
	e = etcd_prefix_end("", 0, &len); /* every key */
	assert_int_equal(len, 1);
	assert_int_equal(e[0], 0);
	free(e);
}

static void test_backoff_doubles_caps_and_jitters(void **state)
{
	(void)state;
	assert_true(etcd_backoff(0, 0.1, 3, 0.999) < 0.1 && etcd_backoff(0, 0.1, 3, 0.999) > 0.099);
	assert_true(etcd_backoff(0, 0.1, 3, 0) == 0.05);
	assert_true(etcd_backoff(3, 0.1, 3, 0.999) > 0.79 && etcd_backoff(3, 0.1, 3, 0.999) <= 0.8);
	for (int a = 5; a < 1000; a += 97) { /* capped, never overflows */
		double d = etcd_backoff(a, 0.1, 3, 0.5);
		assert_true(d <= 3 && d >= 1.5);
	}
}

struct step {
	enum etcd_conn_state from;
	enum etcd_conn_event ev;
	enum etcd_conn_state to;
	int actions;
};

/* Every row of the table, as docs/etcd-client.md describes it. */
static void test_conn_table_every_row(void **state)
{
	static const struct step rows[] = {
		{ ETCD_CONN_INIT, ETCD_EV_OK, ETCD_CONN_UP, ETCD_ACT_LOG_CONNECTED | ETCD_ACT_RESET },
		{ ETCD_CONN_INIT, ETCD_EV_FAIL, ETCD_CONN_INIT, ETCD_ACT_NEXT },
		{ ETCD_CONN_INIT, ETCD_EV_FAIL_LAST, ETCD_CONN_DOWN,
		  ETCD_ACT_LOG_DOWN | ETCD_ACT_NEXT | ETCD_ACT_BACKOFF },
		{ ETCD_CONN_INIT, ETCD_EV_TIMER, ETCD_CONN_INIT, 0 },
		{ ETCD_CONN_UP, ETCD_EV_OK, ETCD_CONN_UP, 0 },
		{ ETCD_CONN_UP, ETCD_EV_FAIL, ETCD_CONN_FAILOVER, ETCD_ACT_LOG_LOST | ETCD_ACT_NEXT },
		{ ETCD_CONN_UP, ETCD_EV_FAIL_LAST, ETCD_CONN_DOWN,
		  ETCD_ACT_LOG_LOST | ETCD_ACT_LOG_DOWN | ETCD_ACT_NEXT | ETCD_ACT_BACKOFF },
		{ ETCD_CONN_UP, ETCD_EV_TIMER, ETCD_CONN_UP, 0 },
		{ ETCD_CONN_FAILOVER, ETCD_EV_OK, ETCD_CONN_UP,
		  ETCD_ACT_LOG_RECONNECTED | ETCD_ACT_RESET },
		{ ETCD_CONN_FAILOVER, ETCD_EV_FAIL, ETCD_CONN_FAILOVER, ETCD_ACT_NEXT },
		{ ETCD_CONN_FAILOVER, ETCD_EV_FAIL_LAST, ETCD_CONN_DOWN,
		  ETCD_ACT_LOG_DOWN | ETCD_ACT_NEXT | ETCD_ACT_BACKOFF },
		{ ETCD_CONN_FAILOVER, ETCD_EV_TIMER, ETCD_CONN_FAILOVER, 0 },
		{ ETCD_CONN_DOWN, ETCD_EV_OK, ETCD_CONN_DOWN, 0 },
		{ ETCD_CONN_DOWN, ETCD_EV_FAIL, ETCD_CONN_DOWN, 0 },
		{ ETCD_CONN_DOWN, ETCD_EV_FAIL_LAST, ETCD_CONN_DOWN, 0 },
		{ ETCD_CONN_DOWN, ETCD_EV_TIMER, ETCD_CONN_RETRY, ETCD_ACT_FLUSH },
		{ ETCD_CONN_RETRY, ETCD_EV_OK, ETCD_CONN_UP, ETCD_ACT_LOG_RECONNECTED | ETCD_ACT_RESET },
		{ ETCD_CONN_RETRY, ETCD_EV_FAIL, ETCD_CONN_RETRY, ETCD_ACT_NEXT },
		{ ETCD_CONN_RETRY, ETCD_EV_FAIL_LAST, ETCD_CONN_DOWN, ETCD_ACT_NEXT | ETCD_ACT_BACKOFF },
		{ ETCD_CONN_RETRY, ETCD_EV_TIMER, ETCD_CONN_RETRY, 0 },
	};
	(void)state;
	assert_int_equal(sizeof rows / sizeof rows[0], ETCD_CONN_NSTATES * ETCD_EV_NEVENTS);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int act = -1;
		enum etcd_conn_state to = etcd_conn_step(rows[i].from, rows[i].ev, &act);
		if (to != rows[i].to || act != rows[i].actions)
			fail_msg("row %zu: %s + event %d -> %s actions %#x, want %s %#x", i,
				 etcd_conn_state_name(rows[i].from), rows[i].ev,
				 etcd_conn_state_name(to), act, etcd_conn_state_name(rows[i].to),
				 rows[i].actions);
	}
}

/* A long outage logs "lost" once, "down" once and "reconnected" once, however many
 * retry rounds it takes. */
static void test_conn_outage_logs_once_per_change(void **state)
{
	enum etcd_conn_state s = ETCD_CONN_UP;
	int act, lost = 0, down = 0, reconn = 0, backoffs = 0;

	(void)state;
	s = etcd_conn_step(s, ETCD_EV_FAIL_LAST, &act); /* one endpoint, it dies */
	for (int round = 0; round < 50; round++) {
		lost += !!(act & ETCD_ACT_LOG_LOST);
		down += !!(act & ETCD_ACT_LOG_DOWN);
		backoffs += !!(act & ETCD_ACT_BACKOFF);
		assert_int_equal(s, ETCD_CONN_DOWN);
		s = etcd_conn_step(s, ETCD_EV_TIMER, &act);
		assert_true(act & ETCD_ACT_FLUSH);
		s = etcd_conn_step(s, ETCD_EV_FAIL_LAST, &act);
	}
	s = etcd_conn_step(s, ETCD_EV_TIMER, &act);
	s = etcd_conn_step(s, ETCD_EV_OK, &act);
	reconn += !!(act & ETCD_ACT_LOG_RECONNECTED);
	assert_int_equal(s, ETCD_CONN_UP);
	assert_int_equal(lost, 1);
	assert_int_equal(down, 1);
	assert_int_equal(backoffs, 50);
	assert_int_equal(reconn, 1);
	assert_true(act & ETCD_ACT_RESET);
}

/* ---- the stream splitter ------------------------------------------------------------- */

struct collected {
	char *texts[16];
	int n;
};

static void collect(void *arg, json_object *o)
{
	struct collected *c = arg;

	if (c->n < 16)
		c->texts[c->n++] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void collected_free(struct collected *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->texts[i]);
	c->n = 0;
}

static const char stream_text[] =
	"{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}\n"
	"{\"result\":{\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"value\":\"e30=\",\"mod_revision\":\"4\"}}]}}"
	"{\"result\":{\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\"}}],"
	"\"note\":\"a } and a \\\" in a string\"}}\r\n  ";

static void check_three(struct collected *c)
{
	assert_int_equal(c->n, 3);
	assert_non_null(strstr(c->texts[0], "\"created\":true"));
	assert_non_null(strstr(c->texts[1], "\"mod_revision\":\"4\""));
	assert_non_null(strstr(c->texts[2], "DELETE"));
	assert_non_null(strstr(c->texts[2], "a } and a"));
}

/* Objects split at every possible byte, then in three cuts, then all in one chunk. */
static void test_jstream_any_split(void **state)
{
	size_t len = strlen(stream_text);

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct etcd_jstream js;
		struct collected c = { 0 };
		assert_int_equal(etcd_jstream_init(&js), 0);
		assert_int_equal(etcd_jstream_feed(&js, stream_text, cut, collect, &c), 0);
		assert_int_equal(etcd_jstream_feed(&js, stream_text + cut, len - cut, collect, &c), 0);
		check_three(&c);
		collected_free(&c);
		etcd_jstream_fini(&js);
	}
	for (size_t step = 1; step < 9; step++) { /* byte-by-byte and small chunks */
		struct etcd_jstream js;
		struct collected c = { 0 };
		etcd_jstream_init(&js);
		for (size_t at = 0; at < len; at += step)
			assert_int_equal(etcd_jstream_feed(&js, stream_text + at,
							   at + step > len ? len - at : step, collect, &c), 0);
		check_three(&c);
		collected_free(&c);
		etcd_jstream_fini(&js);
	}
}

static void test_jstream_malformed(void **state)
{
	struct etcd_jstream js;
	struct collected c = { 0 };

	(void)state;
	etcd_jstream_init(&js);
	assert_int_equal(etcd_jstream_feed(&js, "{\"a\":1}{\"b\":]", 13, collect, &c), -1);
	assert_int_equal(c.n, 1); /* what came before the garbage was delivered */
	collected_free(&c);
	etcd_jstream_fini(&js);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_binary_and_bad_input),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_backoff_doubles_caps_and_jitters),
		cmocka_unit_test(test_conn_table_every_row),
		cmocka_unit_test(test_conn_outage_logs_once_per_change),
		cmocka_unit_test(test_jstream_any_split),
		cmocka_unit_test(test_jstream_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
