/* config_yaml.c — the YAML half of the config loader: drives libyaml's event parser
 * over a buffer and builds a tree of scalars, mappings and sequences, refusing what a
 * vassal file must not contain (aliases, a second document, more than
 * CONFIG_MAX_NODES nodes, NUL bytes). Scalar values (not keys) get ${VAR},
 * ${VAR:-default} and $$ expanded here, before anything types them. Also home to the
 * error context every config message goes through. */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
	struct config_ctx *ctx;
	const char *buf;              /* the input, to place reader errors */
	size_t len;
	struct cfg_node *root;
	struct cfg_node *open[CONFIG_MAX_DEPTH]; /* mappings and sequences not yet ended */
	size_t depth;
	size_t nodes;
	int documents;
};

void *config_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		abort();
	return p;
}

char *config_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

char *config_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		abort();
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Printable text */

/* The length of the valid UTF-8 sequence at s (1..4), or 0 if there is none. The
 * first continuation byte has a narrower range after E0 and F0 (no overlong form), ED
 * (no UTF-16 surrogate) and F4 (nothing above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] < 0xC2 ? 0 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 :
		   s[0] < 0xF5 ? 4 : 0;
	unsigned char lo = s[0] == 0xE0 ? 0xA0 : s[0] == 0xF0 ? 0x90 : 0x80;
	unsigned char hi = s[0] == 0xED ? 0x9F : s[0] == 0xF4 ? 0x8F : 0xBF;
	size_t i;

	for (i = 1; i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			return 0; /* also at the terminating NUL: nothing is read beyond it */
		lo = 0x80;
		hi = 0xBF;
	}
	return n;
}

char *config_printable(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(strlen(s) * 4 + 1), *o = out;

	if (!out)
		return NULL;
	while (*p) {
		size_t n = utf8_sequence(p);
		bool c1 = n == 2 && p[0] == 0xC2 && p[1] < 0xA0; /* U+0080..U+009F */

		if (n && *p >= 0x20 && *p != 0x7F && !c1) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			*o++ = '\\';
			*o++ = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
			p++;
		} else {
			o += sprintf(o, "\\x%02X", *p++);
		}
	}
	*o = '\0';
	return out;
}

/* Errors and key paths */

int config_error(struct config_ctx *ctx, struct cfg_mark at, const char *fmt, ...)
{
	struct config_errors *errs = ctx->errs;
	char where[64] = "", msg[1024];
	va_list ap;
	char **msgs, *raw, *line;

	if (ctx->failures++ >= CONFIG_MAX_ERRORS)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (at.line > 0)
		snprintf(where, sizeof where, ":%d:%d", at.line, at.col);
	msgs = realloc(errs->msgs, (errs->n + 1) * sizeof *msgs);
	if (!msgs)
		abort();
	errs->msgs = msgs;
	raw = config_xasprintf("%s%s: %s%s%s", ctx->file, where, ctx->path,
			       ctx->path_len ? ": " : "", msg);
	line = config_printable(raw); /* one log line, whatever the file holds */
	free(raw);
	if (!line)
		abort();
	errs->msgs[errs->n++] = line;
	return -1;
}

static size_t path_append(struct config_ctx *ctx, const char *fmt, const char *key, size_t index)
{
	size_t saved = ctx->path_len, room = sizeof ctx->path - saved;
	int n = key ? snprintf(ctx->path + saved, room, fmt, key)
		    : snprintf(ctx->path + saved, room, fmt, index);

	if (n > 0)
		ctx->path_len += (size_t)n < room ? (size_t)n : room - 1;
	return saved;
}

size_t config_path_push_key(struct config_ctx *ctx, const char *key)
{
	return path_append(ctx, ctx->path_len ? ".%s" : "%s", key, 0);
}

size_t config_path_push_index(struct config_ctx *ctx, size_t index)
{
	return path_append(ctx, "[%zu]", NULL, index);
}

void config_path_pop(struct config_ctx *ctx, size_t saved)
{
	ctx->path_len = saved;
	ctx->path[saved] = '\0';
}

/* Nodes */

void config_node_free(struct cfg_node *node)
{
	size_t i;

	if (!node)
		return;
	for (i = 0; i < node->n; i++)
		config_node_free(node->kids[i]);
	free(node->kids);
	free(node->text);
	free(node);
}

const struct cfg_node *config_node_get(const struct cfg_node *map, const char *key)
{
	size_t i;

	if (!map || map->kind != CFG_NODE_MAP)
		return NULL;
	for (i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->kids[i]->text, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

static struct cfg_mark mark_of(yaml_mark_t m)
{
	return (struct cfg_mark){ .line = (int)m.line + 1, .col = (int)m.column + 1 };
}

static void node_append(struct cfg_node *parent, struct cfg_node *kid)
{
	struct cfg_node **kids = realloc(parent->kids, (parent->n + 1) * sizeof *kids);

	if (!kids)
		abort();
	parent->kids = kids;
	parent->kids[parent->n++] = kid;
}

/* The next node attached to the innermost open mapping is a key when that mapping
 * holds an even number of nodes. */
static bool next_is_key(const struct builder *b)
{
	const struct cfg_node *parent = b->depth ? b->open[b->depth - 1] : NULL;

	return parent && parent->kind == CFG_NODE_MAP && parent->n % 2 == 0;
}

/* Counts the node, then hangs it under the innermost open container (or as root). */
static int attach(struct builder *b, struct cfg_node *node)
{
	struct cfg_mark at = node->mark;

	if (++b->nodes > CONFIG_MAX_NODES) {
		config_node_free(node);
		return config_error(b->ctx, at,
				    "document too large or alias bomb (more than %d nodes)",
				    CONFIG_MAX_NODES);
	}
	if (b->depth == 0)
		b->root = node;
	else
		node_append(b->open[b->depth - 1], node);
	return 0;
}

/* ${VAR} expansion */

static bool is_var_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 ||
	    !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (i = 1; i < len; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* Writes the value of one "${...}" reference (ref points after "${", close at "}"). */
static int expand_ref(struct config_ctx *ctx, struct cfg_mark at, const char *ref,
		      const char *close, FILE *out)
{
	const char *dflt = strstr(ref, ":-");
	size_t name_len = (size_t)((dflt && dflt < close ? dflt : close) - ref);
	char name[256];
	const char *value;

	if (!is_var_name(ref, name_len) || name_len >= sizeof name)
		return config_error(ctx, at, "invalid reference '${%.*s}': expected ${NAME} or "
					     "${NAME:-default}", (int)(close - ref), ref);
	memcpy(name, ref, name_len);
	name[name_len] = '\0';
	value = getenv(name);
	if (ref[name_len] != ':') {
		if (!value)
			return config_error(ctx, at,
					    "environment variable '%s' is not set "
					    "(write ${%s:-default} to give a default)",
					    name, name);
		fputs(value, out);
	} else if (value && *value) {
		fputs(value, out);
	} else {
		fwrite(ref + name_len + 2, 1, (size_t)(close - ref) - name_len - 2, out);
	}
	return 0;
}

static int expand_into(struct config_ctx *ctx, struct cfg_mark at, const char *s, FILE *out)
{
	const char *close;

	while (*s) {
		if (s[0] != '$' || (s[1] != '$' && s[1] != '{')) {
			fputc(*s++, out);
		} else if (s[1] == '$') {
			fputc('$', out);
			s += 2;
		} else if (!(close = strchr(s + 2, '}'))) {
			return config_error(ctx, at, "unterminated '${' (expected '}')");
		} else {
			if (expand_ref(ctx, at, s + 2, close, out) < 0)
				return -1;
			s = close + 1;
		}
	}
	return 0;
}

/* Returns s with ${VAR}, ${VAR:-default} and $$ expanded, or NULL after reporting. */
static char *expand(struct config_ctx *ctx, struct cfg_mark at, const char *s)
{
	char *text = NULL;
	size_t len;
	FILE *out;
	int rc;

	if (!strchr(s, '$'))
		return config_xstrdup(s);
	out = open_memstream(&text, &len);
	if (!out)
		abort();
	rc = expand_into(ctx, at, s, out);
	if (fclose(out) != 0)
		abort();
	if (rc < 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Sets ctx->path to the key path of the node last attached, from the open containers. */
static void path_from_stack(const struct builder *b)
{
	size_t i;

	config_path_pop(b->ctx, 0);
	for (i = 0; i < b->depth; i++) {
		const struct cfg_node *c = b->open[i];

		if (c->kind == CFG_NODE_MAP)
			config_path_push_key(b->ctx, c->kids[c->n - 2]->text);
		else
			config_path_push_index(b->ctx, c->n - 1);
	}
}

/* Events */

static bool is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
		!strcmp(v, "NULL"));
}

static int add_scalar(struct builder *b, const yaml_event_t *ev, struct cfg_mark at)
{
	const char *raw = (const char *)ev->data.scalar.value;
	bool key = next_is_key(b);
	struct cfg_node *node;
	char *text;

	if (strlen(raw) != ev->data.scalar.length)
		return config_error(b->ctx, at, "NUL characters are not allowed");
	node = config_xcalloc(1, sizeof *node);
	*node = (struct cfg_node){ .kind = CFG_NODE_SCALAR,
				   .mark = at,
				   .null = is_null(ev),
				   .text = config_xstrdup(raw) };
	if (attach(b, node) < 0)
		return -1;
	if (key)
		return 0;
	path_from_stack(b);
	text = expand(b->ctx, at, raw);
	config_path_pop(b->ctx, 0);
	if (text) {
		free(node->text);
		node->text = text;
	}
	return 0; /* an expansion error is reported; keep parsing to find more */
}

static int open_container(struct builder *b, enum cfg_node_kind kind, struct cfg_mark at)
{
	struct cfg_node *node;

	if (next_is_key(b))
		return config_error(b->ctx, at, "a key must be a plain string, not a %s",
				    kind == CFG_NODE_MAP ? "mapping" : "list");
	if (b->depth == CONFIG_MAX_DEPTH)
		return config_error(b->ctx, at, "nesting too deep (more than %d levels)",
				    CONFIG_MAX_DEPTH);
	node = config_xcalloc(1, sizeof *node);
	*node = (struct cfg_node){ .kind = kind, .mark = at };
	if (attach(b, node) < 0)
		return -1;
	b->open[b->depth++] = node;
	return 0;
}

/* Returns 1 at the end of the stream, 0 to go on, -1 to stop after an error. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
	struct cfg_mark at = mark_of(ev->start_mark);

	switch (ev->type) {
	case YAML_STREAM_END_EVENT:
		return 1;
	case YAML_DOCUMENT_START_EVENT:
		if (b->documents++ == 0)
			return 0;
		return config_error(b->ctx, at,
				    "a second document is not allowed (one vassal per file)");
	case YAML_ALIAS_EVENT:
		return config_error(b->ctx, at, "aliases are not supported");
	case YAML_SCALAR_EVENT:
		return add_scalar(b, ev, at);
	case YAML_SEQUENCE_START_EVENT:
		return open_container(b, CFG_NODE_SEQ, at);
	case YAML_MAPPING_START_EVENT:
		return open_container(b, CFG_NODE_MAP, at);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	default:
		return 0;
	}
}

/* Syntax errors */

/* libyaml's reader gives a byte offset, not a mark: count lines and characters. */
static struct cfg_mark mark_at_offset(const char *buf, size_t len, size_t offset)
{
	struct cfg_mark m = { 1, 1 };
	size_t i;

	for (i = 0; i < offset && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.col = 1;
		} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
			m.col++;
		}
	}
	return m;
}

static void reader_error(const struct builder *b, const yaml_parser_t *p)
{
	struct cfg_mark at = mark_at_offset(b->buf, b->len, p->problem_offset);
	const char *problem = p->problem ? p->problem : "cannot decode the input";

	if (strstr(problem, "UTF-8") || strstr(problem, "Unicode"))
		config_error(b->ctx, at, "invalid UTF-8: %s (byte 0x%02X)", problem,
			     p->problem_offset < b->len ? (unsigned char)b->buf[p->problem_offset]
							: 0);
	else if (p->problem_value >= 0)
		config_error(b->ctx, at, "%s (U+%04X)", problem, (unsigned)p->problem_value);
	else
		config_error(b->ctx, at, "%s", problem);
}

static void syntax_error(const struct builder *b, const yaml_parser_t *p)
{
	struct cfg_mark at = mark_of(p->problem_mark), ctx_at = mark_of(p->context_mark);
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		abort();
	if (p->error == YAML_READER_ERROR)
		reader_error(b, p);
	else if (p->context)
		config_error(b->ctx, at, "%s (%s at %d:%d)", problem, p->context, ctx_at.line,
			     ctx_at.col);
	else
		config_error(b->ctx, at, "%s", problem);
}

/* The parse loop */

static void parse_events(struct builder *b)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)b->buf, b->len);
	while (rc == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			syntax_error(b, &parser);
			break;
		}
		rc = on_event(b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
}

struct cfg_node *config_yaml_parse(struct config_ctx *ctx, const char *buf, size_t len)
{
	struct builder b = { .ctx = ctx, .buf = buf, .len = len };
	size_t before = ctx->failures;

	parse_events(&b);
	if (ctx->failures > before) {
		config_node_free(b.root);
		return NULL;
	}
	if (!b.root || (b.root->kind == CFG_NODE_SCALAR && b.root->null)) {
		config_node_free(b.root);
		config_error(ctx, (struct cfg_mark){ 1, 1 },
			     "empty file: expected a mapping of vassal settings");
		return NULL;
	}
	if (b.root->kind != CFG_NODE_MAP) {
		if (b.root->kind == CFG_NODE_SEQ)
			config_error(ctx, b.root->mark,
				     "expected a mapping of vassal settings, got a list");
		else
			config_error(ctx, b.root->mark,
				     "expected a mapping of vassal settings, got '%.40s'",
				     b.root->text);
		config_node_free(b.root);
		return NULL;
	}
	return b.root;
}
