/* config_internal.h — private to the config loader, shared by its files:
 * config_yaml.c turns libyaml's events into a small tree of nodes (expanding ${VAR} in
 * values on the way); config_scalars.c and config_kinds.c know how each kind of value
 * is read from a node and released, and the latter walks a mapping with a schema
 * table; config_schema.c holds the tables and the checks within one mapping; config.c
 * the checks that span mappings, and the public API. All of them report into one
 * error context that formats every message as "file:line:col: key.path: message". */
#ifndef EMPEROR_CONFIG_INTERNAL_H
#define EMPEROR_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CONFIG_MAX_DEPTH  64 /* nesting levels a vassal file may use */
#define CONFIG_MAX_ERRORS 20 /* messages collected before the rest are dropped */

struct cfg_mark {
	int line, col; /* 1-based; line 0 = no position (file-level or built-in) */
};

enum cfg_node_kind { CFG_NODE_SCALAR, CFG_NODE_MAP, CFG_NODE_SEQ };

struct cfg_node {
	enum cfg_node_kind kind;
	struct cfg_mark mark;    /* where the node starts */
	char *text;              /* scalar: a value has ${VAR} expanded, a key is as written */
	bool null;               /* scalar: plain empty, "~" or "null" */
	struct cfg_node **kids;  /* map: key, value, key, value...; seq: the items */
	size_t n;
};

struct config_ctx {
	const char *file;               /* the name messages start with */
	struct config_errors *errs;     /* the first CONFIG_MAX_ERRORS messages */
	size_t failures;                /* every problem reported, kept or dropped */
	char path[256];                 /* key path being read, e.g. "sockets[0].listen" */
	size_t path_len;
};

/* Appends "file:line:col: path: message" (no line:col when at.line is 0, no path
 * when ctx->path is empty). Always returns -1, so callers can `return config_error()`. */
int config_error(struct config_ctx *ctx, struct cfg_mark at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
size_t config_path_push_key(struct config_ctx *ctx, const char *key);
size_t config_path_push_index(struct config_ctx *ctx, size_t index);
void config_path_pop(struct config_ctx *ctx, size_t saved);

/* Parses buf into a tree whose root is a mapping. NULL after reporting an error
 * (syntax, alias, second document, too many nodes, ${VAR}, empty or non-mapping). */
struct cfg_node *config_yaml_parse(struct config_ctx *ctx, const char *buf, size_t len);
void config_node_free(struct cfg_node *node);
/* The value of key in map, or NULL. */
const struct cfg_node *config_node_get(const struct cfg_node *map, const char *key);

/* Allocation that cannot fail: a vassal file is at most 1 MiB, so running out of
 * memory here means the machine is already lost; these abort rather than return. */
void *config_xcalloc(size_t n, size_t size);
char *config_xstrdup(const char *s);
char *config_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Schemas */

struct config_field;

struct config_kind { /* how a value of one type is read and released */
	int (*read)(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		    const struct config_field *f);
	void (*init)(void *obj, const struct config_field *f);    /* before the mapping is read */
	void (*release)(void *obj, const struct config_field *f); /* in config_free */
};

struct config_field { /* one key of a mapping */
	const char *key;
	const struct config_kind *kind;
	size_t off;      /* where the value lands in the struct */
	size_t aux;      /* lists: where their length lands */
	size_t has;      /* 1 + offset of a bool set when the key is present; 0 = none */
	const void *arg; /* per kind: a range, a NULL-terminated list of names, a schema */
	const char *def; /* the default, read as if it were written in the file */
	bool required;
};

struct config_schema { /* one mapping: its keys, then a check over the whole */
	const struct config_field *fields; /* ends with a NULL key; fewer than 64 */
	size_t size;                       /* of the struct it fills (list items) */
	int (*check)(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);
};

struct config_range { /* arg of int, llong, size and size_llong */
	long long min, max;
};

/* Where field f's value (and a list's length) lands in obj. */
#define CONFIG_SLOT(obj, f) ((void *)((char *)(obj) + (f)->off))
#define CONFIG_AUX(obj, f)  ((size_t *)(void *)((char *)(obj) + (f)->aux))

/* Shared by the kinds (config_kinds.c): each reports "expected <what>, got ..." at v
 * and returns -1 (config_scalar returns NULL) when v is not what it wants. */
int config_expected(struct config_ctx *ctx, const struct cfg_node *v, const char *what);
/* The text of a non-empty scalar. */
const char *config_scalar(struct config_ctx *ctx, const struct cfg_node *v, const char *what);
/* Frees a char * slot (string, name, cpu.max). */
void config_release_string(void *obj, const struct config_field *f);
/* A decimal integer within r ("010" is ten). */
int config_int_value(struct config_ctx *ctx, const struct cfg_node *v,
		     const struct config_range *r, long long *out);

struct config_dur_range { /* arg of duration */
	double min, max;
	const char *text; /* "0s..24h" */
};

/* config_envfile.c: the env-file kind (a path or a list; char ** of "K=V"), and the
 * merge of what it read into the program's env, once the whole file is read. */
extern const struct config_kind config_kind_env_file;
struct cfg_program;
void config_env_files_merge(struct cfg_program *p);

/* The kinds; arg and the other field members each one uses are noted. */
extern const struct config_kind
	config_kind_int,         /* int, arg range */
	config_kind_llong,       /* long long, arg range */
	config_kind_size,        /* size_t from "64K", arg range */
	config_kind_size_llong,  /* long long from "512M", arg range */
	config_kind_rlimit,      /* long long, "unlimited" or >= 0 */
	config_kind_rlimit_size, /* the same, also sizes */
	config_kind_mode,        /* mode_t, octal 0..07777 */
	config_kind_umask,       /* int, octal 0..0777 */
	config_kind_bool,        /* bool */
	config_kind_enum,        /* int index into arg, a NULL-terminated list of names */
	config_kind_duration,    /* double seconds, arg dur_range */
	config_kind_signal,      /* int */
	config_kind_addr,        /* struct cfg_addr */
	config_kind_cpu_max,     /* char *, cgroup cpu.max syntax */
	config_kind_string,      /* char *, non-empty */
	config_kind_name,        /* char *, [A-Za-z0-9_-]{1,32} */
	config_kind_strings,     /* char **, a list */
	config_kind_string_or_list, /* char **, a list or one string */
	config_kind_argv,        /* char **, a non-empty list */
	config_kind_env,         /* char ** "NAME=value", from a mapping */
	config_kind_uids,        /* uid_t *, count at aux; uids or user names */
	config_kind_section,     /* an embedded struct, arg its schema */
	config_kind_section_or_scalar, /* the same, or a scalar: its first key's value */
	config_kind_list,        /* an array of structs, count at aux, arg their schema */
	config_kind_gateways;    /* the same, each item a one-key {http: ...} mapping */

/* The whole file's mapping (config_schema.c), filling struct config. */
extern const struct config_schema config_root_schema;

/* Fills obj from map: defaults first, then every key; reports unknown, duplicate
 * and missing keys. Returns 0, or -1 when it reported something. */
int config_read_map(struct config_ctx *ctx, const struct cfg_node *map,
		    const struct config_schema *sc, void *obj);
/* Frees what config_read_map allocated in obj (not obj itself). */
void config_schema_release(const struct config_schema *sc, void *obj);

/* "Did you mean": keeps the candidate nearest to a word, within two edits. */
struct config_suggestion {
	const char *best;
	size_t distance;
};
void config_consider(struct config_suggestion *s, const char *word, const char *candidate);
/* ", did you mean 'x'?" in buf, or "" when there is nothing near. */
const char *config_did_you_mean(const struct config_suggestion *s, char *buf, size_t size);

#endif
