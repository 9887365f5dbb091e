/* test_upgrade.c — unit tests of emperor/upgrade.c's records: what SIGUSR2 hands
 * across for each running vassal comes back the same in the new image, its cgroup
 * path included (it used to be lost: the no-mercy kill and the clean-up of a vassal's
 * cgroup after an upgrade had no path), and a record from an emperor before the
 * cgroup field is still read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "upgrade.h"

static void fill(struct vassal *v, char *file, char *cg)
{
	memset(v, 0, sizeof *v);
	v->file = file;
	v->cg_path = cg;
	v->child.pid = 4242;
	v->child.started_at = 12345.5;
	v->chan_fd = 7;
	v->state = VASSAL_RELOADING;
	v->id = (struct file_id){ .dev = 2049, .ino = 77, .size = 321,
				  .mtime = { .tv_sec = 1700000000, .tv_nsec = 5 }, .hash = 0xfeedULL };
}

static void test_round_trip_keeps_cgroup(void **state)
{
	struct vassal v;
	struct upgrade_record r;
	char line[8192];
	int n;

	(void)state;
	fill(&v, "my app\twith tab.yaml", "/sys/fs/cgroup/system.slice/vassal.my app");
	n = upgrade_format(&v, line, sizeof line);
	assert_true(n > 0 && line[n - 1] == '\n');
	line[n - 1] = '\0';
	assert_int_equal(upgrade_parse(line, &r), 0);
	assert_int_equal(r.pid, 4242);
	assert_int_equal(r.chan_fd, 7);
	assert_int_equal(r.out_fd, -1);
	assert_int_equal(r.state, VASSAL_RELOADING);
	assert_true(r.started > 12345.4 && r.started < 12345.6);
	assert_int_equal(r.id.ino, 77);
	assert_int_equal(r.id.mtime.tv_nsec, 5);
	assert_int_equal(r.id.hash, 0xfeedULL);
	assert_string_equal(r.cg_path, "/sys/fs/cgroup/system.slice/vassal.my app");
	assert_string_equal(r.file, "my app\twith tab.yaml");
}

static void test_round_trip_without_cgroup(void **state)
{
	struct vassal v;
	struct upgrade_record r;
	char line[8192];
	int n;

	(void)state;
	fill(&v, "plain.yaml", NULL);
	n = upgrade_format(&v, line, sizeof line);
	assert_true(n > 0);
	line[n - 1] = '\0';
	assert_int_equal(upgrade_parse(line, &r), 0);
	assert_string_equal(r.cg_path, "");
	assert_string_equal(r.file, "plain.yaml");
}

/* The format before the cgroup field: the file name follows the hash. */
/* An etcd-fed vassal's file is in the etcd mirror: it must be adopted from there,
 * not looked for in the watched directory (where the scan would find it gone). */
static void test_round_trip_keeps_etcd_source(void **state)
{
	struct vassal v;
	struct upgrade_record r;
	char line[8192];
	int n;

	(void)state;
	fill(&v, "hello.yaml", NULL);
	v.from_etcd = true;
	n = upgrade_format(&v, line, sizeof line);
	assert_true(n > 0);
	line[n - 1] = '\0';
	assert_int_equal(upgrade_parse(line, &r), 0);
	assert_true(r.from_etcd);
	assert_string_equal(r.file, "hello.yaml");
	v.from_etcd = false;
	n = upgrade_format(&v, line, sizeof line);
	line[n - 1] = '\0';
	assert_int_equal(upgrade_parse(line, &r), 0);
	assert_false(r.from_etcd);
}

static void test_reads_older_records(void **state)
{
	struct upgrade_record r;

	(void)state;
	assert_int_equal(upgrade_parse("10\t5\t6\t1\t99.000000\t1\t2\t3\t4\t5\t6\told.yaml", &r), 0);
	assert_int_equal(r.pid, 10);
	assert_int_equal(r.out_fd, 6);
	assert_string_equal(r.cg_path, "");
	assert_string_equal(r.file, "old.yaml");
}

static void test_refuses_garbage(void **state)
{
	struct upgrade_record r;

	(void)state;
	assert_int_equal(upgrade_parse("not a record", &r), -1);
	assert_int_equal(upgrade_parse("10\t5\t6\t1\t99.0\t1\t2\t3\t4\t5\t6\tcg=zz\tx.yaml", &r), -1);
	assert_int_equal(upgrade_parse("10\t5\t6\t1\t99.0\t1\t2\t3\t4\t5\t6\t", &r), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_keeps_cgroup),
		cmocka_unit_test(test_round_trip_without_cgroup),
		cmocka_unit_test(test_round_trip_keeps_etcd_source),
		cmocka_unit_test(test_reads_older_records),
		cmocka_unit_test(test_refuses_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
