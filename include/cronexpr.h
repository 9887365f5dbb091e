/* cronexpr.h — cron schedules: the five classic fields (minute hour day-of-month month
 * day-of-week; `*`, `a`, `a-b`, `*\/n`, `a-b/n`, lists with commas, month and day
 * names) and the macros @yearly @annually @monthly @weekly @daily @midnight @hourly,
 * parsed into bit sets, and the next matching minute after a time, in local time. As
 * in cron, when both day fields are restricted a day matching either one runs. Pure:
 * no clock is read (tests/unit/test_cronexpr.c). */
#ifndef EMPEROR_CRONEXPR_H
#define EMPEROR_CRONEXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cronexpr {
	uint64_t minutes;   /* bit 0..59 */
	uint32_t hours;     /* bit 0..23 */
	uint32_t mdays;     /* bit 1..31 */
	uint16_t months;    /* bit 1..12 */
	uint8_t wdays;      /* bit 0..6, Sunday 0 (7 is read as 0) */
	bool mday_any, wday_any; /* the field was `*` */
};

/* 0, or -1 with why ("field 2 (hour): 24 is out of 0..23") in err. A schedule that
 * can never run ("30 2 31 2 *") is refused too. */
int cronexpr_parse(const char *text, struct cronexpr *out, char *err, size_t errlen);
/* The first matching minute strictly after `after` (local time), or -1 if none within
 * five years. */
time_t cronexpr_next(const struct cronexpr *e, time_t after);

#endif
