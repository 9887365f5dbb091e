/* cronexpr.c — cron schedules (see cronexpr.h): a field is read item by item into a
 * bit set; the next run is found by walking local time forward, skipping a whole
 * month, day or hour at once when that part does not match, so it takes at most a few
 * thousand steps over the five years it looks ahead. */
#include "cronexpr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct field {
	const char *what;
	int lo, hi;
	const char *const *names; /* names[i] stands for lo + i; NULL = numbers only */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
					   "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const wday_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL }, { "hour", 0, 23, NULL }, { "day of month", 1, 31, NULL },
	{ "month", 1, 12, month_names }, { "day of week", 0, 7, wday_names },
};

static const struct { const char *name, *fields; } macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* A number or a name of field f at *s; -1 if neither. */
static int read_value(const struct field *f, const char **s)
{
	if (isdigit((unsigned char)**s)) {
		long v = 0;
		while (isdigit((unsigned char)**s) && v < 1000)
			v = v * 10 + (*(*s)++ - '0');
		return (int)v;
	}
	for (int i = 0; f->names && f->names[i]; i++)
		if (strncasecmp(*s, f->names[i], 3) == 0 && !isalpha((unsigned char)(*s)[3])) {
			*s += 3;
			return f->lo + i;
		}
	return -1;
}

/* One item: "*", "a", "a-b", each optionally "/step". */
static int read_item(const struct field *f, const char *item, uint64_t *bits, char *err,
		     size_t errlen)
{
	const char *s = item;
	int lo = f->lo, hi = f->hi, step = 1;

	if (*s == '*') {
		s++;
	} else {
		if ((lo = read_value(f, &s)) < 0)
			goto bad;
		hi = lo;
		if (*s == '-' && (s++, (hi = read_value(f, &s)) < 0))
			goto bad;
	}
	if (*s == '/') {
		s++;
		if (!isdigit((unsigned char)*s) || (step = atoi(s)) <= 0)
			goto bad;
		while (isdigit((unsigned char)*s))
			s++;
		if (item[0] != '*' && hi == lo)
			hi = f->hi; /* "5/15": from 5 on */
	}
	if (*s)
		goto bad;
	if (lo < f->lo || hi > f->hi || lo > hi) {
		snprintf(err, errlen, "%s: '%s' is out of %d..%d", f->what, item, f->lo, f->hi);
		return -1;
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ULL << v;
	return 0;
bad:
	snprintf(err, errlen, "%s: cannot read '%s' (expected *, N, N-M, */S, N-M/S or a list)",
		 f->what, item);
	return -1;
}

static int read_field(const struct field *f, const char *text, uint64_t *bits, char *err,
		      size_t errlen)
{
	char buf[128], *save = NULL;

	size_t len = strnlen(text, sizeof buf - 1);

	memcpy(buf, text, len);
	buf[len] = '\0';
	*bits = 0;
	if (buf[0] == ',' || (len && buf[len - 1] == ',') || strstr(buf, ",,")) {
		snprintf(err, errlen, "%s: an empty item in '%s'", f->what, buf);
		return -1;
	}
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save))
		if (read_item(f, item, bits, err, errlen) < 0)
			return -1;
	if (!*bits) {
		snprintf(err, errlen, "%s: empty", f->what);
		return -1;
	}
	return 0;
}

static int split(const char *text, char parts[5][128], char *err, size_t errlen)
{
	int n = 0;

	for (const char *s = text; *s;) {
		while (isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		size_t len = strcspn(s, " \t");
		if (n == 5 || len >= 128) {
			snprintf(err, errlen, n == 5 ? "more than five fields in '%s'" :
				 "a field of '%s' is too long", text);
			return -1;
		}
		snprintf(parts[n++], 128, "%.*s", (int)len, s);
		s += len;
	}
	if (n != 5) {
		snprintf(err, errlen, "'%s' has %d fields; a schedule has five (minute hour "
			 "day-of-month month day-of-week) or is @hourly, @daily, @weekly, @monthly, "
			 "@yearly", text, n);
		return -1;
	}
	return 0;
}

int cronexpr_parse(const char *text, struct cronexpr *out, char *err, size_t errlen)
{
	char parts[5][128];
	uint64_t bits[5];

	for (size_t i = 0; text[0] == '@' && i < sizeof macros / sizeof macros[0]; i++)
		if (strcasecmp(text, macros[i].name) == 0)
			return cronexpr_parse(macros[i].fields, out, err, errlen);
	if (text[0] == '@') {
		snprintf(err, errlen, "unknown schedule '%s' (@hourly, @daily, @midnight, @weekly, "
			 "@monthly, @yearly, @annually)", text);
		return -1;
	}
	if (split(text, parts, err, errlen) < 0)
		return -1;
	for (int i = 0; i < 5; i++)
		if (read_field(&fields[i], parts[i], &bits[i], err, errlen) < 0)
			return -1;
	*out = (struct cronexpr){
		.minutes = bits[0], .hours = (uint32_t)bits[1], .mdays = (uint32_t)bits[2],
		.months = (uint16_t)bits[3],
		.wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f),
		.mday_any = strcmp(parts[2], "*") == 0, .wday_any = strcmp(parts[4], "*") == 0,
	};
	if (cronexpr_next(out, 0) < 0) {
		snprintf(err, errlen, "'%s' never runs (no such day)", text);
		return -1;
	}
	return 0;
}

static bool day_matches(const struct cronexpr *e, const struct tm *tm)
{
	bool md = e->mdays >> tm->tm_mday & 1, wd = e->wdays >> tm->tm_wday & 1;

	if (e->mday_any || e->wday_any)
		return md && wd;
	return md || wd;
}

/* tm normalised by mktime (local time); -1 if it cannot be represented. */
static time_t settle(struct tm *tm)
{
	tm->tm_isdst = -1;
	return mktime(tm);
}

time_t cronexpr_next(const struct cronexpr *e, time_t after)
{
	time_t t = after - (after % 60 + 60) % 60 + 60, limit = after + 5 * 366 * 86400L;
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return -1;
	for (int steps = 0; steps < 100000 && t <= limit && t != -1; steps++) {
		if (!(e->months >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++, tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0;
		} else if (!day_matches(e, &tm)) {
			tm.tm_mday++, tm.tm_hour = 0, tm.tm_min = 0;
		} else if (!(e->hours >> tm.tm_hour & 1)) {
			tm.tm_hour++, tm.tm_min = 0;
		} else if (!(e->minutes >> tm.tm_min & 1)) {
			tm.tm_min++;
		} else {
			return t;
		}
		tm.tm_sec = 0;
		t = settle(&tm);
	}
	return -1;
}
