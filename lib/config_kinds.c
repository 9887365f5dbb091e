/* config_kinds.c — the compound config kinds (strings, lists, argv, env, users,
 * sections, lists of sections, gateways), the "expected ..., got ..." and "did you
 * mean" messages every kind uses, and the walker that fills a struct from a mapping
 * with a schema table (defaults, then each key; unknown, duplicate and missing keys
 * are reported). The one-scalar kinds are in config_scalars.c. A kind never logs: it
 * reports at the value's position and keeps going so one pass finds several mistakes. */
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

/* Messages */

/* "a mapping", "a list", "an empty value" or the quoted scalar, for "got ..." */
static const char *got(const struct cfg_node *v, char *buf, size_t size)
{
	if (v->kind == CFG_NODE_MAP)
		return "a mapping";
	if (v->kind == CFG_NODE_SEQ)
		return "a list";
	if (v->null)
		return "an empty value";
	snprintf(buf, size, strlen(v->text) > 40 ? "'%.40s...'" : "'%s'", v->text);
	return buf;
}

int config_expected(struct config_ctx *ctx, const struct cfg_node *v, const char *what)
{
	char buf[64];

	return config_error(ctx, v->mark, "expected %s, got %s", what, got(v, buf, sizeof buf));
}

/* Damerau-Levenshtein (optimal string alignment), ignoring case. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, best;
	unsigned char d[41][41];

	if (la > 40 || lb > 40)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);

			best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1u < best)
				best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)best;
		}
	}
	return d[la][lb];
}

/* Keeps the candidate nearest to word, if it is within two edits. */
void config_consider(struct config_suggestion *s, const char *word, const char *candidate)
{
	size_t d = edit_distance(word, candidate);

	if (d <= 2 && (!s->best || d < s->distance)) {
		s->best = candidate;
		s->distance = d;
	}
}

/* ", did you mean 'x'?" or "" */
const char *config_did_you_mean(const struct config_suggestion *s, char *buf, size_t size)
{
	if (!s->best)
		return "";
	snprintf(buf, size, ", did you mean '%s'?", s->best);
	return buf;
}

/* Scalars */

/* The text of a non-empty scalar, or NULL after "expected <what>, got ...". */
const char *config_scalar(struct config_ctx *ctx, const struct cfg_node *v, const char *what)
{
	if (v->kind != CFG_NODE_SCALAR || v->null) {
		config_expected(ctx, v, what);
		return NULL;
	}
	return v->text;
}

/* Decimal only ("010" is ten); a number too large to hold is out of range. */
int config_int_value(struct config_ctx *ctx, const struct cfg_node *v,
		     const struct config_range *r, long long *out)
{
	const char *s = config_scalar(ctx, v, "an integer"), *digits;
	long long value;

	if (!s)
		return -1;
	digits = s + (*s == '-' || *s == '+');
	if (!*digits || strspn(digits, "0123456789") != strlen(digits))
		return config_expected(ctx, v, "an integer");
	errno = 0;
	value = strtoll(s, NULL, 10);
	if (errno == ERANGE || value < r->min || value > r->max)
		return config_error(ctx, v->mark, "%.40s is out of range (%lld..%lld)", s, r->min,
				    r->max);
	*out = value;
	return 0;
}

/* Kinds: strings */

static int read_string(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		       const struct config_field *f)
{
	const char *s = config_scalar(ctx, v, "a string");
	char **slot = CONFIG_SLOT(obj, f);

	if (!s)
		return -1;
	if (!*s)
		return config_error(ctx, v->mark, "expected a non-empty string");
	free(*slot);
	*slot = config_xstrdup(s);
	return 0;
}

/* Mule, daemon and socket names end up in log prefixes and LISTEN_FDNAMES. */
static int read_name(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_-";
	const char *s = config_scalar(ctx, v, "a name");
	size_t len;

	if (!s)
		return -1;
	len = strlen(s);
	if (len < 1 || len > 32 || strspn(s, allowed) != len)
		return config_error(ctx, v->mark, "invalid name '%.40s': use 1 to 32 letters, "
						  "digits, '_' or '-'", s);
	return read_string(ctx, v, obj, f);
}

void config_release_string(void *obj, const struct config_field *f)
{
	char **slot = CONFIG_SLOT(obj, f);

	free(*slot);
	*slot = NULL;
}

static void strv_free(char **strv)
{
	char **p;

	for (p = strv; p && *p; p++)
		free(*p);
	free(strv);
}

static void init_strv(void *obj, const struct config_field *f)
{
	char ***slot = CONFIG_SLOT(obj, f);

	strv_free(*slot);
	*slot = config_xcalloc(1, sizeof **slot);
}

static void release_strv(void *obj, const struct config_field *f)
{
	char ***slot = CONFIG_SLOT(obj, f);

	strv_free(*slot);
	*slot = NULL;
}

enum list_form { LIST_ONLY, LIST_OR_ONE };

/* A list of strings (or, with LIST_OR_ONE, a single string) as a new strv. */
static char **string_list(struct config_ctx *ctx, const struct cfg_node *v, enum list_form form)
{
	const char *what =
		form == LIST_OR_ONE ? "a string or a list of strings" : "a list of strings";
	struct cfg_node *const *items = v->kids;
	size_t n = v->n, i, k = 0, before = ctx->failures;
	char **strv;

	if (v->kind == CFG_NODE_SCALAR && !v->null && form == LIST_OR_ONE) {
		items = (struct cfg_node *const *)&v;
		n = 1;
	} else if (v->kind != CFG_NODE_SEQ) {
		config_expected(ctx, v, what);
		return NULL;
	}
	strv = config_xcalloc(n + 1, sizeof *strv);
	for (i = 0; i < n; i++) {
		size_t saved =
			v->kind == CFG_NODE_SEQ ? config_path_push_index(ctx, i) : ctx->path_len;
		const char *s = config_scalar(ctx, items[i], "a string");

		if (s)
			strv[k++] = config_xstrdup(s);
		config_path_pop(ctx, saved);
	}
	if (ctx->failures > before) {
		strv_free(strv);
		return NULL;
	}
	return strv;
}

static int store_strv(void *obj, const struct config_field *f, char **strv)
{
	char ***slot = CONFIG_SLOT(obj, f);

	if (!strv)
		return -1;
	strv_free(*slot);
	*slot = strv;
	return 0;
}

static int read_strings(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			const struct config_field *f)
{
	return store_strv(obj, f, string_list(ctx, v, LIST_ONLY));
}

static int read_string_or_list(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			       const struct config_field *f)
{
	return store_strv(obj, f, string_list(ctx, v, LIST_OR_ONE));
}

/* argv: a non-empty list, no shell, so a single string is refused. */
static int read_argv(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	char **argv;

	if (v->kind == CFG_NODE_SEQ && v->n == 0)
		return config_error(ctx, v->mark, "expected a non-empty list of strings (program "
						  "and arguments), got an empty list");
	argv = string_list(ctx, v, LIST_ONLY);
	if (argv && !argv[0][0]) {
		strv_free(argv);
		return config_error(ctx, v->kids[0]->mark, "the program name must not be empty");
	}
	return store_strv(obj, f, argv);
}

/* Kinds: env, users */

static int duplicate_key(struct config_ctx *ctx, const struct cfg_node *map, size_t i)
{
	const struct cfg_node *key = map->kids[i];
	size_t j;

	for (j = 0; j < i; j += 2) {
		const struct cfg_node *first = map->kids[j];

		if (strcmp(first->text, key->text) == 0)
			return config_error(ctx, key->mark, "duplicate key '%s' (first at %d:%d)",
					    key->text, first->mark.line, first->mark.col);
	}
	return 0;
}

static char *env_entry(struct config_ctx *ctx, const struct cfg_node *map, size_t i)
{
	const struct cfg_node *key = map->kids[i];
	size_t saved;
	const char *value;

	if (duplicate_key(ctx, map, i) < 0)
		return NULL;
	if (!key->text[0] || strchr(key->text, '=')) {
		config_error(ctx, key->mark, "invalid variable name '%s'", key->text);
		return NULL;
	}
	saved = config_path_push_key(ctx, key->text);
	value = config_scalar(ctx, map->kids[i + 1], "a string");
	config_path_pop(ctx, saved);
	return value ? config_xasprintf("%s=%s", key->text, value) : NULL;
}

/* A mapping NAME: value becomes a strv of "NAME=value". */
static int read_env(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		    const struct config_field *f)
{
	size_t i, k = 0, before = ctx->failures;
	char **env;

	if (v->kind != CFG_NODE_MAP)
		return config_expected(ctx, v, "a mapping of NAME: value");
	env = config_xcalloc(v->n / 2 + 1, sizeof *env);
	for (i = 0; i < v->n; i += 2) {
		char *entry = env_entry(ctx, v, i);

		if (entry)
			env[k++] = entry;
	}
	if (ctx->failures > before) {
		strv_free(env);
		return -1;
	}
	return store_strv(obj, f, env);
}

/* A uid, or a user name looked up in the passwd database. */
static int uid_value(struct config_ctx *ctx, const struct cfg_node *v, uid_t *out)
{
	static const struct config_range uids = { 0, (uid_t)-2 };
	const char *s = config_scalar(ctx, v, "a user name or uid");
	struct passwd pw, *found = NULL;
	char buf[16384];
	long long uid;

	if (!s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s)) {
		if (config_int_value(ctx, v, &uids, &uid) < 0)
			return -1;
		*out = (uid_t)uid;
		return 0;
	}
	getpwnam_r(s, &pw, buf, sizeof buf, &found);
	if (!found)
		return config_error(ctx, v->mark, "unknown user '%.40s'", s);
	*out = pw.pw_uid;
	return 0;
}

static int read_uids(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	size_t i, before = ctx->failures;
	uid_t **slot = CONFIG_SLOT(obj, f);

	if (v->kind != CFG_NODE_SEQ)
		return config_expected(ctx, v, "a list of user names or uids");
	free(*slot);
	*slot = v->n ? config_xcalloc(v->n, sizeof **slot) : NULL;
	*CONFIG_AUX(obj, f) = v->n;
	for (i = 0; i < v->n; i++) {
		size_t saved = config_path_push_index(ctx, i);

		uid_value(ctx, v->kids[i], &(*slot)[i]);
		config_path_pop(ctx, saved);
	}
	return ctx->failures == before ? 0 : -1;
}

static void release_pointer(void *obj, const struct config_field *f)
{
	void **slot = CONFIG_SLOT(obj, f);

	free(*slot);
	*slot = NULL;
}

/* Kinds: nested mappings and lists of them */

static int read_section(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			const struct config_field *f)
{
	return config_read_map(ctx, v, f->arg, CONFIG_SLOT(obj, f));
}

/* A scalar stands for the section's first key: `log: ./a.log` = `log: {file: ./a.log}`. */
static int read_section_or_scalar(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
				  const struct config_field *f)
{
	const struct config_schema *sc = f->arg;
	struct cfg_node key = { .kind = CFG_NODE_SCALAR, .mark = v->mark,
				.text = (char *)sc->fields[0].key };
	struct cfg_node *kids[2] = { &key, (struct cfg_node *)v };
	struct cfg_node map = { .kind = CFG_NODE_MAP, .mark = v->mark, .kids = kids, .n = 2 };

	if (v->kind != CFG_NODE_SCALAR)
		return config_read_map(ctx, v, sc, CONFIG_SLOT(obj, f));
	return config_read_map(ctx, &map, sc, CONFIG_SLOT(obj, f));
}

static void release_section(void *obj, const struct config_field *f)
{
	config_schema_release(f->arg, CONFIG_SLOT(obj, f));
}

typedef int item_reader(struct config_ctx *ctx, const struct cfg_node *item,
			const struct config_schema *sc, void *dst);

/* f->arg is the items' schema; the array lands at f->off, its length at f->aux. */
static int read_items(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		      const struct config_field *f, item_reader *read_item)
{
	const struct config_schema *sc = f->arg;
	size_t i, before = ctx->failures;
	char *items;

	if (v->kind != CFG_NODE_SEQ)
		return config_expected(ctx, v, "a list of mappings");
	items = v->n ? config_xcalloc(v->n, sc->size) : NULL;
	memcpy(CONFIG_SLOT(obj, f), &items, sizeof items);
	*CONFIG_AUX(obj, f) = v->n;
	for (i = 0; i < v->n; i++) {
		size_t saved = config_path_push_index(ctx, i);

		read_item(ctx, v->kids[i], sc, items + i * sc->size);
		config_path_pop(ctx, saved);
	}
	return ctx->failures == before ? 0 : -1;
}

static int read_list(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		     const struct config_field *f)
{
	return read_items(ctx, v, obj, f, config_read_map);
}

/* A gateway is a one-key mapping naming its type: {http: {listen: ...}}. */
static int read_gateway(struct config_ctx *ctx, const struct cfg_node *item,
			const struct config_schema *sc, void *gateway)
{
	struct config_suggestion near = { 0 };
	const struct cfg_node *type;
	char hint[64];
	size_t saved;
	int rc;

	if (item->kind != CFG_NODE_MAP || item->n != 2)
		return config_expected(ctx, item, "a mapping with one key, like http: {listen: ...}");
	type = item->kids[0];
	if (strcmp(type->text, "http") != 0) {
		config_consider(&near, type->text, "http");
		return config_error(ctx, type->mark, "unknown gateway type '%s'%s", type->text,
				    config_did_you_mean(&near, hint, sizeof hint));
	}
	saved = config_path_push_key(ctx, "http");
	rc = config_read_map(ctx, item->kids[1], sc, gateway);
	config_path_pop(ctx, saved);
	return rc;
}

static int read_gateways(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			 const struct config_field *f)
{
	return read_items(ctx, v, obj, f, read_gateway);
}

static void release_list(void *obj, const struct config_field *f)
{
	const struct config_schema *sc = f->arg;
	size_t i, n = *CONFIG_AUX(obj, f);
	char *items;

	memcpy(&items, CONFIG_SLOT(obj, f), sizeof items);
	for (i = 0; i < n; i++)
		config_schema_release(sc, items + i * sc->size);
	free(items);
	memset(CONFIG_SLOT(obj, f), 0, sizeof items);
	*CONFIG_AUX(obj, f) = 0;
}

const struct config_kind config_kind_string = { read_string, NULL, config_release_string };
const struct config_kind config_kind_name = { read_name, NULL, config_release_string };
const struct config_kind config_kind_strings = { read_strings, init_strv, release_strv };
const struct config_kind config_kind_string_or_list = { read_string_or_list, init_strv,
							 release_strv };
const struct config_kind config_kind_argv = { read_argv, init_strv, release_strv };
const struct config_kind config_kind_env = { read_env, init_strv, release_strv };
const struct config_kind config_kind_uids = { read_uids, NULL, release_pointer };
const struct config_kind config_kind_section = { read_section, NULL, release_section };
const struct config_kind config_kind_section_or_scalar = { read_section_or_scalar, NULL,
							   release_section };
const struct config_kind config_kind_list = { read_list, NULL, release_list };
const struct config_kind config_kind_gateways = { read_gateways, NULL, release_list };

/* The walker */

static const struct config_field *field_find(const struct config_schema *sc, const char *key)
{
	const struct config_field *f;

	for (f = sc->fields; f->key; f++)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

static void unknown_key(struct config_ctx *ctx, const struct cfg_node *key,
			const struct config_schema *sc)
{
	struct config_suggestion near = { 0 };
	const struct config_field *f;
	char hint[64];

	for (f = sc->fields; f->key; f++)
		config_consider(&near, key->text, f->key);
	config_error(ctx, key->mark, "unknown key '%.40s'%s", key->text,
		     config_did_you_mean(&near, hint, sizeof hint));
}

/* Every field's initial value (an empty list for strvs), then its default. */
static void apply_defaults(struct config_ctx *ctx, const struct config_schema *sc, void *obj)
{
	const struct config_field *f;

	for (f = sc->fields; f->key; f++) {
		struct cfg_node def = { .kind = CFG_NODE_SCALAR, .text = (char *)f->def };

		if (f->kind->init)
			f->kind->init(obj, f);
		if (f->def)
			f->kind->read(ctx, &def, obj, f);
	}
}

static void read_pair(struct config_ctx *ctx, const struct cfg_node *map, size_t i,
		      const struct config_schema *sc, void *obj, uint64_t *seen)
{
	const struct cfg_node *key = map->kids[i];
	const struct config_field *f;
	size_t saved;

	if (duplicate_key(ctx, map, i) < 0)
		return;
	f = field_find(sc, key->text);
	if (!f) {
		unknown_key(ctx, key, sc);
		return;
	}
	*seen |= 1ULL << (f - sc->fields);
	saved = config_path_push_key(ctx, f->key);
	if (f->kind->read(ctx, map->kids[i + 1], obj, f) == 0 && f->has)
		*(bool *)((char *)obj + f->has - 1) = true;
	config_path_pop(ctx, saved);
}

int config_read_map(struct config_ctx *ctx, const struct cfg_node *map,
		    const struct config_schema *sc, void *obj)
{
	size_t i, before = ctx->failures;
	const struct config_field *f;
	uint64_t seen = 0;

	if (map->kind != CFG_NODE_MAP)
		return config_expected(ctx, map, "a mapping");
	apply_defaults(ctx, sc, obj);
	for (i = 0; i + 1 < map->n && ctx->failures < CONFIG_MAX_ERRORS; i += 2)
		read_pair(ctx, map, i, sc, obj, &seen);
	for (f = sc->fields; f->key; f++)
		if (f->required && !(seen & (1ULL << (f - sc->fields))))
			config_error(ctx, map->mark, "missing required key '%s'", f->key);
	if (ctx->failures == before && sc->check)
		sc->check(ctx, map, obj);
	return ctx->failures == before ? 0 : -1;
}

void config_schema_release(const struct config_schema *sc, void *obj)
{
	const struct config_field *f;

	for (f = sc->fields; f->key; f++)
		if (f->kind->release)
			f->kind->release(obj, f);
}
