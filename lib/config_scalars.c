/* config_scalars.c — the config kinds whose value is one scalar: integers, sizes
 * ("64K"), rlimits ("unlimited"), octal modes and umasks, booleans, enums, durations,
 * signals, addresses and cgroup cpu.max. Each reads a node into its slot or reports
 * what is wrong at the value's position; the compound kinds (strings, lists, env,
 * users, sections) and the schema walker are in config_kinds.c. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "parse.h"

struct octal_range {
	long max;
	const char *what;
};

static const struct octal_range mode_range = { 07777, "an octal mode like 0660" };
static const struct octal_range umask_range = { 0777, "an octal umask like 022" };

static int size_value(struct config_ctx *ctx, const struct cfg_node *v,
		      const struct config_range *r, long long *out)
{
	const char *s = config_scalar(ctx, v, "a size"), *why;

	if (!s)
		return -1;
	if (parse_size(s, out, &why) < 0)
		return config_error(ctx, v->mark, "invalid size '%s': %s", s, why);
	if (*out < r->min || *out > r->max)
		return config_error(ctx, v->mark, "'%s' is out of range (%lld..%lld bytes)", s,
				    r->min, r->max);
	return 0;
}

static int octal_value(struct config_ctx *ctx, const struct cfg_node *v,
		       const struct octal_range *r, long *out)
{
	const char *s = config_scalar(ctx, v, r->what), *digits;

	if (!s)
		return -1;
	digits = s + (s[0] == '0' && (s[1] == 'o' || s[1] == 'O') ? 2 : 0);
	if (!*digits || strspn(digits, "01234567") != strlen(digits))
		return config_expected(ctx, v, r->what);
	*out = strlen(digits) > 8 ? LONG_MAX : strtol(digits, NULL, 8);
	if (*out > r->max)
		return config_error(ctx, v->mark, "'%s' is out of range (0..0%lo)", s, r->max);
	return 0;
}

/* Kinds: numbers, names and flags */

static int read_int(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		    const struct config_field *f)
{
	long long value;

	if (config_int_value(ctx, v, f->arg, &value) < 0)
		return -1;
	*(int *)CONFIG_SLOT(obj, f) = (int)value;
	return 0;
}

static int read_llong(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		      const struct config_field *f)
{
	return config_int_value(ctx, v, f->arg, CONFIG_SLOT(obj, f));
}

static int read_size(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	long long value;

	if (size_value(ctx, v, f->arg, &value) < 0)
		return -1;
	*(size_t *)CONFIG_SLOT(obj, f) = (size_t)value;
	return 0;
}

static int read_size_llong(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			   const struct config_field *f)
{
	return size_value(ctx, v, f->arg, CONFIG_SLOT(obj, f));
}

/* "unlimited", else an integer; as and core also take sizes. */
static int rlimit_value(struct config_ctx *ctx, const struct cfg_node *v, long long *out,
			int (*finite_value)(struct config_ctx *, const struct cfg_node *,
					    const struct config_range *, long long *))
{
	static const struct config_range finite = { 0, CFG_LIMIT_UNLIMITED - 1 };

	if (v->kind == CFG_NODE_SCALAR &&
	    (!strcasecmp(v->text, "unlimited") || !strcasecmp(v->text, "infinity"))) {
		*out = CFG_LIMIT_UNLIMITED;
		return 0;
	}
	return finite_value(ctx, v, &finite, out);
}

static int read_rlimit(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		       const struct config_field *f)
{
	return rlimit_value(ctx, v, CONFIG_SLOT(obj, f), config_int_value);
}

static int read_rlimit_size(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			    const struct config_field *f)
{
	return rlimit_value(ctx, v, CONFIG_SLOT(obj, f), size_value);
}

static int read_mode(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	long value;

	if (octal_value(ctx, v, &mode_range, &value) < 0)
		return -1;
	*(mode_t *)CONFIG_SLOT(obj, f) = (mode_t)value;
	return 0;
}

static int read_umask(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		      const struct config_field *f)
{
	long value;

	if (octal_value(ctx, v, &umask_range, &value) < 0)
		return -1;
	*(int *)CONFIG_SLOT(obj, f) = (int)value;
	return 0;
}

static int read_bool(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	static const char *const words[] = { "false", "no", "off", "true", "yes", "on" };
	const char *s = config_scalar(ctx, v, "a boolean (true/false, yes/no, on/off)");
	size_t i;

	if (!s)
		return -1;
	for (i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strcasecmp(s, words[i]) == 0) {
			*(bool *)CONFIG_SLOT(obj, f) = i >= 3;
			return 0;
		}
	}
	return config_expected(ctx, v, "a boolean (true/false, yes/no, on/off)");
}

/* f->arg is a NULL-terminated list of names; the value stored is the index. */
static int read_enum(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	const char *const *names = f->arg;
	struct config_suggestion near = { 0 };
	char list[128] = "", hint[64];
	const char *s;
	size_t i;

	for (i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
			 i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
	s = config_scalar(ctx, v, list);
	if (!s)
		return -1;
	for (i = 0; names[i]; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*(int *)CONFIG_SLOT(obj, f) = (int)i;
			return 0;
		}
		config_consider(&near, s, names[i]);
	}
	return config_error(ctx, v->mark, "expected %s, got '%s'%s", list, s,
			    config_did_you_mean(&near, hint, sizeof hint));
}

static int read_duration(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			 const struct config_field *f)
{
	const struct config_dur_range *r = f->arg;
	const char *s = config_scalar(ctx, v, "a duration"), *why;
	double value;

	if (!s)
		return -1;
	if (parse_duration(s, &value, &why) < 0)
		return config_error(ctx, v->mark, "invalid duration '%s': %s", s, why);
	if (value < r->min || value > r->max)
		return config_error(ctx, v->mark, "'%s' is out of range (%s)", s, r->text);
	*(double *)CONFIG_SLOT(obj, f) = value;
	return 0;
}

static int read_signal(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		       const struct config_field *f)
{
	const char *s = config_scalar(ctx, v, "a signal"), *why;

	if (!s)
		return -1;
	if (parse_signal(s, CONFIG_SLOT(obj, f), &why) < 0)
		return config_error(ctx, v->mark, "invalid signal '%s': %s", s, why);
	return 0;
}

static int read_addr(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	const char *s = config_scalar(ctx, v, "an address"), *why;

	if (!s)
		return -1;
	if (parse_addr(s, CONFIG_SLOT(obj, f), &why) < 0)
		return config_error(ctx, v->mark, "invalid address '%s': %s", s, why);
	return 0;
}

/* cgroup v2 cpu.max: "max", "max PERIOD" or "QUOTA PERIOD", in microseconds; the
 * kernel takes a quota up to 2^44 - 1 and a period of 1ms..1s. */
static bool cpu_max_valid(const char *s)
{
	const char *space = strchr(s, ' ');
	unsigned long long quota, period;
	char head[24];

	if (strcmp(s, "max") == 0)
		return true;
	if (!space || (size_t)(space - s) >= sizeof head)
		return false;
	memcpy(head, s, (size_t)(space - s));
	head[space - s] = '\0';
	if (parse_uint(space + 1, 1000000, &period, NULL) < 0 || period < 1000)
		return false;
	if (strcmp(head, "max") == 0)
		return true;
	return parse_uint(head, (1ULL << 44) - 1, &quota, NULL) == 0 && quota >= 1000;
}

static int read_cpu_max(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			const struct config_field *f)
{
	static const char what[] =
		"\"max\" or \"QUOTA PERIOD\" in microseconds, like \"50000 100000\"";
	const char *s = config_scalar(ctx, v, what);
	char **slot = CONFIG_SLOT(obj, f);

	if (!s)
		return -1;
	if (!cpu_max_valid(s))
		return config_expected(ctx, v, what);
	free(*slot);
	*slot = config_xstrdup(s);
	return 0;
}

const struct config_kind config_kind_int = { read_int, NULL, NULL };
const struct config_kind config_kind_llong = { read_llong, NULL, NULL };
const struct config_kind config_kind_size = { read_size, NULL, NULL };
const struct config_kind config_kind_size_llong = { read_size_llong, NULL, NULL };
const struct config_kind config_kind_rlimit = { read_rlimit, NULL, NULL };
const struct config_kind config_kind_rlimit_size = { read_rlimit_size, NULL, NULL };
const struct config_kind config_kind_mode = { read_mode, NULL, NULL };
const struct config_kind config_kind_umask = { read_umask, NULL, NULL };
const struct config_kind config_kind_bool = { read_bool, NULL, NULL };
const struct config_kind config_kind_enum = { read_enum, NULL, NULL };
const struct config_kind config_kind_duration = { read_duration, NULL, NULL };
const struct config_kind config_kind_signal = { read_signal, NULL, NULL };
const struct config_kind config_kind_addr = { read_addr, NULL, NULL };
const struct config_kind config_kind_cpu_max = { read_cpu_max, NULL, config_release_string };
