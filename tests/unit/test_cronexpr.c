/* test_cronexpr.c — cron schedules (lib/cronexpr.c): what parses into which sets,
 * what is refused and why, and the next run after a given time (in UTC: TZ is set so
 * the local time is known), across hour, day, month and year ends, with both day
 * fields given (either matches), every-N steps and names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cronexpr.h"

/* 2026-12-03 17:24:30 UTC, a Thursday */
#define BASE ((time_t)1796318670)

static time_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi };

	return timegm(&tm);
}

static time_t next_of(const char *text, time_t after)
{
	struct cronexpr e;
	char why[160];

	if (cronexpr_parse(text, &e, why, sizeof why) < 0) {
		fprintf(stderr, "%s: %s\n", text, why);
		fail();
	}
	return cronexpr_next(&e, after);
}

static void refused(const char *text, const char *why_has)
{
	struct cronexpr e;
	char why[160] = "";

	assert_int_equal(cronexpr_parse(text, &e, why, sizeof why), -1);
	if (!strstr(why, why_has))
		fprintf(stderr, "'%s': '%s' lacks '%s'\n", text, why, why_has);
	assert_non_null(strstr(why, why_has));
}

static void test_parse_sets(void **state)
{
	struct cronexpr e;
	char why[160];

	(void)state;
	assert_int_equal(cronexpr_parse("*/15 9-17 * jan,JUL mon-fri", &e, why, sizeof why), 0);
	assert_true(e.minutes == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
	assert_int_equal(e.hours, 0x3fe00);          /* 9..17 */
	assert_int_equal(e.months, 1 << 1 | 1 << 7);
	assert_int_equal(e.wdays, 0x3e);             /* 1..5 */
	assert_true(e.mday_any);
	assert_false(e.wday_any);
	assert_int_equal(cronexpr_parse("0 0 * * 7", &e, why, sizeof why), 0);
	assert_int_equal(e.wdays, 1);                /* 7 is Sunday, as 0 */
	assert_int_equal(cronexpr_parse("5/20 1,3-4 1-31/10 * *", &e, why, sizeof why), 0);
	assert_true(e.minutes == (1ULL << 5 | 1ULL << 25 | 1ULL << 45));
	assert_int_equal(e.hours, 2 | 8 | 16);
	assert_int_equal(e.mdays, 1u << 1 | 1u << 11 | 1u << 21 | 1u << 31);
	assert_int_equal(cronexpr_parse("@hourly", &e, why, sizeof why), 0);
	assert_true(e.minutes == 1 && e.hours == 0xffffff);
}

static void test_refused(void **state)
{
	(void)state;
	refused("", "has 0 fields");
	refused("* * * *", "has 4 fields");
	refused("* * * * * *", "more than five fields");
	refused("60 * * * *", "minute: '60' is out of 0..59");
	refused("* 24 * * *", "hour: '24' is out of 0..23");
	refused("* * 0 * *", "day of month: '0' is out of 1..31");
	refused("* * * 13 *", "month: '13' is out of 1..12");
	refused("* * * * 8", "day of week: '8' is out of 0..7");
	refused("5-1 * * * *", "out of");
	refused("*/0 * * * *", "cannot read '*/0'");
	refused("x * * * *", "cannot read 'x'");
	refused("1,,2 * * * *", "minute");
	refused("* * * foo *", "cannot read 'foo'");
	refused("@often", "unknown schedule '@often'");
	refused("0 0 30 2 *", "never runs");
}

static void test_next(void **state)
{
	(void)state;
	assert_int_equal(next_of("* * * * *", BASE), utc(2026, 12, 3, 17, 25));
	assert_int_equal(next_of("30 2 * * *", BASE), utc(2026, 12, 4, 2, 30));
	assert_int_equal(next_of("@hourly", BASE), utc(2026, 12, 3, 18, 0));
	assert_int_equal(next_of("@daily", BASE), utc(2026, 12, 4, 0, 0));
	assert_int_equal(next_of("@weekly", BASE), utc(2026, 12, 6, 0, 0));   /* Sunday */
	assert_int_equal(next_of("@monthly", BASE), utc(2027, 1, 1, 0, 0));
	assert_int_equal(next_of("@yearly", BASE), utc(2027, 1, 1, 0, 0));
	assert_int_equal(next_of("*/20 * * * *", BASE), utc(2026, 12, 3, 17, 40));
	assert_int_equal(next_of("24 17 * * *", BASE), utc(2026, 12, 4, 17, 24)); /* just passed */
	assert_int_equal(next_of("0 12 29 2 *", BASE), utc(2028, 2, 29, 12, 0));  /* leap day */
	/* both day fields: the 15th or a Monday, whichever comes first */
	assert_int_equal(next_of("0 0 15 * mon", BASE), utc(2026, 12, 7, 0, 0));
	assert_int_equal(next_of("0 0 15 * *", BASE), utc(2026, 12, 15, 0, 0));
	/* from an exact minute: strictly after */
	assert_int_equal(next_of("* * * * *", utc(2026, 12, 31, 23, 59)), utc(2027, 1, 1, 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sets),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_next),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
