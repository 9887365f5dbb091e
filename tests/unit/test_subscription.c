/* test_subscription.c — unit tests of vassal/subscription.c: the subscription
 * datagrams (sub_parse, sub_format), the router's node table (lookup by exact key,
 * *.domain wildcard and the default key; smooth weighted round robin; least-conn;
 * nodes down or skipped; expiry; unsubscribe; nodes held by a connection outliving
 * their removal) and the .nodes state file (save, restore). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subscription.h"
#include "parse.h"
#include "../support/support.h"

static struct cfg_addr addr_of(const char *text)
{
	struct cfg_addr a;
	const char *why = NULL;

	if (parse_addr(text, &a, &why) < 0)
		fail_msg("parse_addr(%s): %s", text, why);
	return a;
}

static void add(struct sub_table *t, const char *key, const char *addr, int weight, ev_tstamp now)
{
	struct cfg_addr a = addr_of(addr);

	sub_table_add(t, key, &a, weight, now);
}

static struct sub_node *pick(struct sub_table *t, const char *host, ev_tstamp now)
{
	struct sub_key *k = sub_table_lookup(t, host);

	return k ? sub_pick(t, k, now, NULL, 0) : NULL;
}

static const char *picked(struct sub_table *t, const char *host, ev_tstamp now)
{
	struct sub_node *n = pick(t, host, now);

	return n ? n->addr.text : "(none)";
}

/* ---- datagrams ------------------------------------------------------------------------ */

static void test_format_then_parse(void **state)
{
	char msg[512], key[256];
	struct cfg_addr a;
	const char *why;
	int weight, len;

	(void)state;
	len = sub_format(msg, sizeof msg, true, "App.Example.COM", "127.0.0.1:8001", 7);
	assert_string_equal(msg, "subscribe\nkey=App.Example.COM\naddress=127.0.0.1:8001\nweight=7\n");
	assert_int_equal(len, (int)strlen(msg));
	assert_int_equal(sub_parse(msg, key, sizeof key, &a, &weight, &why), 1);
	assert_string_equal(key, "app.example.com"); /* keys are lowercased */
	assert_string_equal(a.text, "127.0.0.1:8001");
	assert_int_equal(weight, 7);

	sub_format(msg, sizeof msg, false, "*.example.com", "unix:/run/app.sock", 1);
	assert_string_equal(msg, "unsubscribe\nkey=*.example.com\naddress=unix:/run/app.sock\nweight=1\n");
	assert_int_equal(sub_parse(msg, key, sizeof key, &a, &weight, &why), 0);
	assert_string_equal(key, "*.example.com");
	assert_string_equal(a.text, "unix:/run/app.sock");

	assert_int_equal(sub_parse("subscribe\naddress=[::1]:80\nkey=v6\n", key, sizeof key, &a,
				   &weight, &why), 1);
	assert_string_equal(a.text, "[::1]:80");
	assert_int_equal(weight, 1); /* absent: 1 */
	assert_int_equal(sub_parse("unsubscribe\r\nkey=crlf\r\naddress=127.0.0.1:1\r\nweight=3\r\n",
				   key, sizeof key, &a, &weight, &why), 0); /* CRLF lines too */
	assert_string_equal(key, "crlf");
	assert_int_equal(weight, 3);
}

static void test_format_truncates(void **state)
{
	char msg[16];

	(void)state;
	assert_int_equal(sub_format(msg, sizeof msg, true, "a.localhost", "127.0.0.1:8001", 1), 15);
	assert_int_equal(strlen(msg), 15);
}

static void expect_bad(const char *msg, const char *why_part)
{
	char key[64];
	struct cfg_addr a;
	const char *why = NULL;
	int weight;

	assert_int_equal(sub_parse(msg, key, sizeof key, &a, &weight, &why), -1);
	assert_non_null(why);
	if (!strstr(why, why_part))
		fail_msg("\"%s\": why \"%s\", expected \"%s\" in it", msg, why, why_part);
}

static void test_parse_rejects(void **state)
{
	char key[64], long_key[200];
	struct cfg_addr a;
	const char *why;
	int weight;

	(void)state;
	expect_bad("", "first line");
	expect_bad("hello\nkey=a\naddress=127.0.0.1:1\n", "first line");
	expect_bad("subscribed\nkey=a\naddress=127.0.0.1:1\n", "first line");
	expect_bad("subscribe", "first line"); /* the command alone, no line */
	expect_bad("unsubscribe key=a\n", "first line");
	expect_bad("subscribe\naddress=127.0.0.1:1\n", "key=");
	expect_bad("subscribe\nkey=\naddress=127.0.0.1:1\n", "key=");
	expect_bad("subscribe\nkey=a b\naddress=127.0.0.1:1\n", "printable");
	expect_bad("subscribe\nkey=a\tb\naddress=127.0.0.1:1\n", "printable");
	expect_bad("subscribe\nkey=a\n", "address=");
	expect_bad("subscribe\nkey=a\naddress=localhost:80\n", "");
	expect_bad("subscribe\nkey=a\naddress=127.0.0.1:99999\n", "");
	memset(long_key, 'k', sizeof long_key);
	snprintf(long_key + 100, sizeof long_key - 100, "\naddress=127.0.0.1:1\n");
	char msg[300];
	snprintf(msg, sizeof msg, "subscribe\nkey=%s", long_key);
	expect_bad(msg, "key="); /* longer than the key buffer (64) */

	/* A weight out of 1..1000 or not a number is 1, not an error. */
	assert_int_equal(sub_parse("subscribe\nkey=a\naddress=127.0.0.1:1\nweight=0\n", key,
				   sizeof key, &a, &weight, &why), 1);
	assert_int_equal(weight, 1);
	assert_int_equal(sub_parse("subscribe\nkey=a\naddress=127.0.0.1:1\nweight=1001\n", key,
				   sizeof key, &a, &weight, &why), 1);
	assert_int_equal(weight, 1);
	assert_int_equal(sub_parse("subscribe\nkey=a\naddress=127.0.0.1:1\nweight=x\n", key,
				   sizeof key, &a, &weight, &why), 1);
	assert_int_equal(weight, 1);
	assert_int_equal(sub_parse("subscribe\nkey=a\naddress=127.0.0.1:1\nweight=1000\n", key,
				   sizeof key, &a, &weight, &why), 1);
	assert_int_equal(weight, 1000);
}

/* ---- lookup ------------------------------------------------------------------------------ */

static void test_lookup_exact_wildcard_default(void **state)
{
	struct sub_table t;

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	assert_null(sub_table_lookup(&t, "a.localhost"));
	add(&t, "a.localhost", "127.0.0.1:1001", 1, 1);
	add(&t, "*.example.com", "127.0.0.1:1002", 1, 1);
	add(&t, "*.deep.example.com", "127.0.0.1:1003", 1, 1);
	add(&t, "example.com", "127.0.0.1:1004", 1, 1);
	assert_int_equal(sub_table_count(&t), 4);

	assert_string_equal(picked(&t, "a.localhost", 2), "127.0.0.1:1001");
	assert_string_equal(picked(&t, "A.LocalHost:8080", 2), "127.0.0.1:1001"); /* case, port */
	assert_string_equal(picked(&t, "b.localhost", 2), "(none)");
	assert_string_equal(picked(&t, "www.example.com", 2), "127.0.0.1:1002");
	assert_string_equal(picked(&t, "x.y.example.com:80", 2), "127.0.0.1:1002");
	assert_string_equal(picked(&t, "x.deep.example.com", 2), "127.0.0.1:1003"); /* nearest */
	assert_string_equal(picked(&t, "example.com", 2), "127.0.0.1:1004"); /* exact, not *. */
	assert_string_equal(picked(&t, "", 2), "(none)");

	/* The default key "" (a `to:` socket, static) catches every other host. */
	add(&t, "", "127.0.0.1:1005", 1, 0);
	assert_string_equal(picked(&t, "b.localhost", 2), "127.0.0.1:1005");
	assert_string_equal(picked(&t, "", 2), "127.0.0.1:1005");
	assert_string_equal(picked(&t, "[::1]:8080", 2), "127.0.0.1:1005");
	assert_string_equal(picked(&t, "a.localhost", 2), "127.0.0.1:1001");
	sub_table_fini(&t);
}

static void test_lookup_ipv6_host_and_long_names(void **state)
{
	struct sub_table t;
	char longhost[400];

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	add(&t, "[::1]", "127.0.0.1:1001", 1, 1);
	add(&t, "127.0.0.1", "127.0.0.1:1002", 1, 1);
	assert_string_equal(picked(&t, "[::1]:8080", 2), "127.0.0.1:1001");
	assert_string_equal(picked(&t, "127.0.0.1:8080", 2), "127.0.0.1:1002");
	memset(longhost, 'a', sizeof longhost - 1);
	longhost[sizeof longhost - 1] = '\0';
	assert_null(sub_table_lookup(&t, longhost));
	assert_null(sub_table_lookup(&t, "[unterminated"));
	sub_table_fini(&t);
}

/* ---- balancing ----------------------------------------------------------------------------- */

static int index_of(struct sub_node *n, const char *const addrs[], int count)
{
	for (int i = 0; i < count; i++)
		if (n && strcmp(n->addr.text, addrs[i]) == 0)
			return i;
	fail_msg("unexpected node %s", n ? n->addr.text : "(none)");
	return -1;
}

static void test_weighted_round_robin(void **state)
{
	static const char *const addrs[] = { "127.0.0.1:2001", "127.0.0.1:2002", "127.0.0.1:2003" };
	struct sub_table t;
	int hits[3] = { 0 }, run = 0, longest = 0, last = -1;

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	add(&t, "app", addrs[0], 1, 1);
	add(&t, "app", addrs[1], 2, 1);
	add(&t, "app", addrs[2], 5, 1);
	for (int i = 0; i < 800; i++) {
		int k = index_of(pick(&t, "app", 2), addrs, 3);
		hits[k]++;
		run = k == last ? run + 1 : 1;
		last = k;
		if (run > longest)
			longest = run;
	}
	/* Exact proportions over whole cycles (8 picks), and smooth: weight 5 of 8 never
	 * gets more than 3 in a row (plain weighted round robin would give 5). */
	assert_int_equal(hits[0], 100);
	assert_int_equal(hits[1], 200);
	assert_int_equal(hits[2], 500);
	assert_true(longest <= 3);

	/* Equal weights alternate strictly. */
	struct sub_table u;
	sub_table_init(&u, CFG_BALANCE_ROUND_ROBIN, "test");
	add(&u, "app", addrs[0], 1, 1);
	add(&u, "app", addrs[1], 1, 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(index_of(pick(&u, "app", 2), addrs, 2), i % 2);
	sub_table_fini(&u);
	sub_table_fini(&t);
}

static void test_least_conn(void **state)
{
	static const char *const addrs[] = { "127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003" };
	struct sub_table t;
	struct sub_node *n[3];

	(void)state;
	sub_table_init(&t, CFG_BALANCE_LEAST_CONN, "test");
	add(&t, "app", addrs[0], 1, 1);
	add(&t, "app", addrs[1], 1, 1);
	add(&t, "app", addrs[2], 2, 1);
	/* Each pick takes a connection: the least loaded relative to its weight wins. */
	for (int i = 0; i < 3; i++) {
		n[i] = pick(&t, "app", 2);
		assert_non_null(n[i]);
		n[i]->active++;
	}
	assert_int_equal(index_of(n[0], addrs, 3), 0);
	assert_int_equal(index_of(n[1], addrs, 3), 1);
	assert_int_equal(index_of(n[2], addrs, 3), 2);
	/* Now 1/1, 1/1, 1/2: node 3 has the least per weight. */
	assert_int_equal(index_of(pick(&t, "app", 2), addrs, 3), 2);
	n[2]->active++; /* 1, 1, 2/2: a tie, the first wins */
	assert_int_equal(index_of(pick(&t, "app", 2), addrs, 3), 0);
	n[0]->active = 5;
	n[1]->active = 0;
	assert_int_equal(index_of(pick(&t, "app", 2), addrs, 3), 1);
	sub_table_fini(&t);
}

static void test_down_and_skipped_nodes(void **state)
{
	static const char *const addrs[] = { "127.0.0.1:4001", "127.0.0.1:4002" };
	struct sub_table t;
	struct sub_key *k;
	struct sub_node *first;

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	add(&t, "app", addrs[0], 1, 1);
	add(&t, "app", addrs[1], 1, 1);
	k = sub_table_lookup(&t, "app");
	assert_non_null(k);
	first = TAILQ_FIRST(&k->nodes);
	first->down_until = 10 + SUB_NODE_DOWN;
	for (int i = 0; i < 5; i++) /* down: never picked until down_until */
		assert_int_equal(index_of(sub_pick(&t, k, 10, NULL, 0), addrs, 2), 1);
	assert_non_null(sub_pick(&t, k, 10 + SUB_NODE_DOWN, NULL, 0));
	int seen0 = 0;
	for (int i = 0; i < 4; i++)
		seen0 += index_of(sub_pick(&t, k, 10 + SUB_NODE_DOWN, NULL, 0), addrs, 2) == 0;
	assert_int_equal(seen0, 2);

	/* Skipped (already tried for this request): the other one, then none. */
	struct sub_node *skip[2] = { first, TAILQ_NEXT(first, link) };
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(sub_pick(&t, k, 100, skip, 1), skip[1]);
	assert_null(sub_pick(&t, k, 100, skip, 2));
	skip[1]->down_until = 200;
	assert_null(sub_pick(&t, k, 100, skip, 1));
	sub_table_fini(&t);
}

/* ---- life of nodes ------------------------------------------------------------------------ */

static void test_expiry(void **state)
{
	const double life = SUB_PERIOD * SUB_EXPIRE_PERIODS;
	struct sub_table t;

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	add(&t, "a", "127.0.0.1:5001", 1, 100);
	add(&t, "a", "127.0.0.1:5002", 1, 100);
	add(&t, "b", "127.0.0.1:5003", 1, 100);
	add(&t, "", "127.0.0.1:5004", 1, 0); /* static: never expires */
	assert_true(sub_table_next_expiry(&t) == 100 + life);
	assert_int_equal(sub_table_expire(&t, 100 + life - 0.1), 0);
	add(&t, "a", "127.0.0.1:5002", 1, 100 + SUB_PERIOD); /* heard from again */
	assert_true(sub_table_next_expiry(&t) == 100 + life); /* the others still due */
	assert_int_equal(sub_table_count(&t), 4);
	assert_int_equal(sub_table_expire(&t, 100 + life), 2);
	assert_int_equal(sub_table_count(&t), 2);
	assert_true(sub_table_next_expiry(&t) == 100 + SUB_PERIOD + life);
	assert_string_equal(picked(&t, "a", 200), "127.0.0.1:5002");
	assert_string_equal(picked(&t, "b", 200), "127.0.0.1:5004"); /* key gone: default */
	assert_int_equal(sub_table_expire(&t, 100 + SUB_PERIOD + life), 1);
	assert_int_equal(sub_table_expire(&t, 1e9), 0);
	assert_int_equal(sub_table_count(&t), 1);
	assert_true(sub_table_next_expiry(&t) == 0); /* only the static node is left */
	sub_table_fini(&t);
}

static void test_add_refresh_and_remove(void **state)
{
	struct sub_table t;
	struct cfg_addr a = addr_of("127.0.0.1:6001"), b = addr_of("127.0.0.1:6002");

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	sub_table_add(&t, "app", &a, 1, 1);
	sub_table_add(&t, "app", &a, 3, 2); /* the same node: refreshed, reweighted */
	assert_int_equal(sub_table_count(&t), 1);
	assert_int_equal(TAILQ_FIRST(&sub_table_lookup(&t, "app")->nodes)->weight, 3);
	sub_table_add(&t, "app", &b, 0, 2); /* weight 0 becomes 1 */
	assert_int_equal(TAILQ_LAST(&sub_table_lookup(&t, "app")->nodes, sub_node_list)->weight, 1);
	sub_table_add(&t, "other", &a, 1, 2); /* the same address under another key */
	assert_int_equal(sub_table_count(&t), 3);

	sub_table_remove(&t, "app", &a);
	assert_int_equal(sub_table_count(&t), 2);
	assert_string_equal(picked(&t, "app", 3), "127.0.0.1:6002");
	sub_table_remove(&t, "app", &a); /* twice, or an unknown key: nothing */
	sub_table_remove(&t, "nope", &a);
	sub_table_remove(&t, "app", &b);
	assert_null(sub_table_lookup(&t, "app"));
	assert_string_equal(picked(&t, "other", 3), "127.0.0.1:6001");
	sub_table_fini(&t);
}

/* A connection holds the node it talks to: removing or expiring it meanwhile keeps
 * the memory until the connection lets go (ASan would report a use after free). */
static void test_held_node_outlives_removal(void **state)
{
	struct sub_table t;
	struct cfg_addr a = addr_of("127.0.0.1:7001");
	struct sub_node *n;

	(void)state;
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	sub_table_add(&t, "app", &a, 1, 1);
	n = pick(&t, "app", 2);
	assert_non_null(n);
	sub_node_hold(n);
	sub_node_hold(n);
	n->active++;
	sub_table_remove(&t, "app", &a);
	assert_null(sub_table_lookup(&t, "app"));
	assert_int_equal(sub_table_count(&t), 0);
	assert_true(n->retired);
	n->active--; /* still valid memory */
	sub_node_release(&t, n);
	assert_false(TAILQ_EMPTY(&t.retired));
	sub_node_release(&t, n);
	assert_true(TAILQ_EMPTY(&t.retired));

	/* Expired while held; then the same address subscribes again: a new node. */
	sub_table_add(&t, "app", &a, 1, 1);
	n = pick(&t, "app", 2);
	sub_node_hold(n);
	assert_int_equal(sub_table_expire(&t, 1e6), 1);
	sub_table_add(&t, "app", &a, 1, 1e6);
	assert_ptr_not_equal(pick(&t, "app", 1e6), n);
	sub_node_release(&t, n);

	/* Held at fini: freed all the same (no leak under ASan). */
	n = pick(&t, "app", 1e6);
	sub_node_hold(n);
	sub_table_remove(&t, "app", &a);
	sub_table_fini(&t);
}

/* ---- the state file ------------------------------------------------------------------------ */

static void test_save_and_restore(void **state)
{
	char *dir = sup_tmpdir(), *path = sup_path(dir, "router.sock.nodes"), *text;
	struct sub_table t, u;

	(void)state;
	assert_non_null(dir);
	sub_table_init(&t, CFG_BALANCE_ROUND_ROBIN, "test");
	t.state_path = strdup(path);
	add(&t, "", "127.0.0.1:8000", 1, 0); /* static: not saved */
	add(&t, "a.localhost", "127.0.0.1:8001", 2, 10);
	add(&t, "a.localhost", "127.0.0.1:8002", 1, 10);
	add(&t, "*.example.com", "unix:/tmp/a dir/app.sock", 3, 10);
	add(&t, "b.localhost", "[::1]:8003", 1, 10);
	text = sup_read_file(path);
	assert_non_null(text);
	assert_string_equal(text, "a.localhost 127.0.0.1:8001 2\n"
				  "a.localhost 127.0.0.1:8002 1\n"
				  "*.example.com unix:/tmp/a dir/app.sock 3\n"
				  "b.localhost [::1]:8003 1\n");
	free(text);
	struct cfg_addr gone = addr_of("[::1]:8003");
	sub_table_remove(&t, "b.localhost", &gone); /* every change is saved */
	text = sup_read_file(path);
	assert_null(strstr(text, "b.localhost"));
	free(text);
	assert_int_equal(access(path, F_OK), 0);

	/* Another table (a restarted router) restores them as just heard from. */
	sub_table_init(&u, CFG_BALANCE_ROUND_ROBIN, "test");
	u.state_path = strdup(path);
	assert_int_equal(sub_table_restore(&u, 500), 3);
	assert_int_equal(sub_table_count(&u), 3);
	assert_string_equal(picked(&u, "a.localhost", 500), "127.0.0.1:8001");
	assert_string_equal(picked(&u, "www.example.com", 500), "unix:/tmp/a dir/app.sock");
	assert_int_equal(TAILQ_FIRST(&sub_table_lookup(&u, "x.example.com")->nodes)->weight, 3);
	assert_int_equal(sub_table_expire(&u, 500 + SUB_PERIOD * SUB_EXPIRE_PERIODS - 1), 0);
	sub_table_fini(&u);

	/* Malformed lines are skipped, the good ones kept. */
	assert_int_equal(sup_write_file(path, "garbage\n"
					      "a.localhost 127.0.0.1:9001 1\n"
					      "a.localhost localhost:80 1\n"
					      "a.localhost 127.0.0.1:9002 x\n"
					      "a.localhost 127.0.0.1:9003 0\n"
					      " 127.0.0.1:9004 1\n"
					      "b.localhost 127.0.0.1:9005 1000\n"), 0);
	sub_table_init(&u, CFG_BALANCE_ROUND_ROBIN, "test");
	u.state_path = strdup(path);
	assert_int_equal(sub_table_restore(&u, 1), 2);
	sub_table_fini(&u);

	/* No file, or no path: nothing restored, not an error. */
	assert_int_equal(unlink(path), 0);
	sub_table_init(&u, CFG_BALANCE_ROUND_ROBIN, "test");
	assert_int_equal(sub_table_restore(&u, 1), 0);
	u.state_path = strdup(path);
	assert_int_equal(sub_table_restore(&u, 1), 0);
	assert_int_equal(sub_table_save(&u), 0);
	text = sup_read_file(path);
	assert_string_equal(text, "");
	free(text);
	sub_table_fini(&u);

	sub_table_fini(&t);
	sup_rmtree(dir);
	free(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_then_parse),
		cmocka_unit_test(test_format_truncates),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_lookup_exact_wildcard_default),
		cmocka_unit_test(test_lookup_ipv6_host_and_long_names),
		cmocka_unit_test(test_weighted_round_robin),
		cmocka_unit_test(test_least_conn),
		cmocka_unit_test(test_down_and_skipped_nodes),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_add_refresh_and_remove),
		cmocka_unit_test(test_held_node_outlives_removal),
		cmocka_unit_test(test_save_and_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
