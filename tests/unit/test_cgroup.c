/* test_cgroup.c — unit tests of lib/cgroup.c's check of a vassal's `cgroup.parent`
 * in tyrant mode: a file's owner may not put its vassal's cgroup outside the
 * emperor's own (an absolute path, a '..', a sibling of the emperor's cgroup). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cgroup.h"

static void expect(const struct cgroup_base *b, const char *parent, int rc, const char *why)
{
	char reason[256] = "";

	if (cgroup_parent_check(b, parent, reason, sizeof reason) != rc)
		fail_msg("cgroup.parent \"%s\": expected %s", parent, rc ? "refused" : "accepted");
	if (why && !strstr(reason, why))
		fail_msg("cgroup.parent \"%s\": refused for \"%s\", expected \"%s\"", parent, reason, why);
}

static void test_parent_inside_the_emperors_cgroup(void **state)
{
	struct cgroup_base b = { .usable = true };

	(void)state;
	snprintf(b.path, sizeof b.path, "%s/system.slice/emperor.service", CGROUP_ROOT);
	expect(&b, "system.slice/emperor.service", 0, NULL);
	expect(&b, "system.slice/emperor.service/tenants", 0, NULL);
	expect(&b, "system.slice", -1, "outside the emperor's cgroup");
	expect(&b, "system.slice/emperor.service2", -1, "outside");
	expect(&b, "user.slice", -1, "outside");
	expect(&b, "/system.slice/emperor.service/x", -1, "absolute");
	expect(&b, "system.slice/emperor.service/../../user.slice", -1, "'..'");
	expect(&b, "system.slice/emperor.service/./x", -1, "'.'");
	expect(&b, "system.slice//emperor.service", -1, "empty");
	expect(&b, "system.slice/emperor.service/", -1, "empty");
	expect(&b, "..", -1, "'..'");
}

/* The emperor in the root cgroup, or without cgroups: only the path's shape counts. */
static void test_parent_shape_only(void **state)
{
	struct cgroup_base root = { .usable = true }, none = { .usable = false };

	(void)state;
	snprintf(root.path, sizeof root.path, "%s", CGROUP_ROOT);
	expect(&root, "app.slice", 0, NULL);
	expect(&root, "../app.slice", -1, "'..'");
	expect(&none, "app.slice/x", 0, NULL);
	expect(&none, "/app.slice", -1, "absolute");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_inside_the_emperors_cgroup),
		cmocka_unit_test(test_parent_shape_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
