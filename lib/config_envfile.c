/* config_envfile.c — the `env-file:` key of a program (workers, mules, spooler,
 * daemons): files of KEY=VALUE lines read when the config is loaded, as systemd's
 * EnvironmentFile= reads them: blank lines and lines starting with # or ; are skipped,
 * spaces around the key and the value are trimmed, a value in matching single or
 * double quotes loses them; a path starting with "-" may be missing. A relative path
 * is taken from the vassal file's directory. Their variables override the `env:`
 * mapping's (config_env_files_merge), and a later file's override an earlier's. A
 * line that is not KEY=VALUE is an error naming the YAML key's file:line:col and the
 * env file's path:line (never the line's text: the file may hold secrets). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"
#include "util.h"

#define ENV_FILE_MAX (256 * 1024)  /* a larger env file is refused */

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	*end = '\0';
	return s;
}

static bool valid_name(const char *k)
{
	if (!*k || (*k >= '0' && *k <= '9'))
		return false;
	for (; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	return true;
}

/* The lines of text (NUL-terminated, modified) as "K=V" appended to *env. */
static int parse_lines(struct config_ctx *ctx, const struct cfg_node *at, const char *path, char *text,
		       char ***env)
{
	size_t lineno = 0;

	for (char *line = text, *next; line; line = next) {
		char *nl = strchr(line, '\n'), *eq, *key, *value;
		size_t vlen;
		next = nl ? nl + 1 : NULL;
		lineno++;
		line = trim(line, nl ? nl : line + strlen(line));
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (!(eq = strchr(line, '=')))
			return config_error(ctx, at->mark, "%s:%zu: expected KEY=VALUE", path, lineno);
		*eq = '\0';
		key = trim(line, eq);
		value = trim(eq + 1, eq + 1 + strlen(eq + 1));
		if (!valid_name(key))
			return config_error(ctx, at->mark, "%s:%zu: '%.40s' is not a variable name",
					    path, lineno, key);
		vlen = strlen(value);
		if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
			value[vlen - 1] = '\0';
			value++;
		}
		if (!(*env = env_set(*env, key, value)))
			abort(); /* out of memory, as config_xcalloc */
	}
	return 0;
}

/* One env file (its name as written in node) into *env. */
static int read_one(struct config_ctx *ctx, const struct cfg_node *node, char ***env)
{
	const char *given = node->text;
	bool optional = given[0] == '-';
	char path[PATH_MAX], *text;
	struct stat st;
	ssize_t n;
	int fd, rc;

	given += optional;
	if (given[0] == '/' || !strchr(ctx->file, '/'))
		snprintf(path, sizeof path, "%s", given);
	else
		snprintf(path, sizeof path, "%.*s/%s", (int)(strrchr(ctx->file, '/') - ctx->file), ctx->file, given);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && optional && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ENV_FILE_MAX) {
		rc = config_error(ctx, node->mark, "env file %s: %s", path,
				  fd < 0 ? strerror(errno) : !S_ISREG(st.st_mode) ? "not a regular file"
				  : "larger than 256 KiB");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	text = config_xcalloc(1, (size_t)st.st_size + 1);
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n < 0) {
		free(text);
		return config_error(ctx, node->mark, "env file %s: %s", path, strerror(errno));
	}
	text[n] = '\0';
	rc = parse_lines(ctx, node, path, text, env);
	free(text);
	return rc;
}

/* A path, or a list of them: their variables, "K=V", in the field's strv. */
static int read_env_file(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
			 const struct config_field *f)
{
	char ***slot = (char ***)((char *)obj + f->off), **env = config_xcalloc(1, sizeof *env);
	struct cfg_node *const *items = v->kids;
	size_t n = v->n, before = ctx->failures;

	if (v->kind == CFG_NODE_SCALAR) {
		items = (struct cfg_node *const *)&v;
		n = 1;
	} else if (v->kind != CFG_NODE_SEQ) {
		strv_free(env);
		return config_error(ctx, v->mark, "expected a path or a list of paths");
	}
	for (size_t i = 0; i < n; i++) {
		if (items[i]->kind != CFG_NODE_SCALAR || items[i]->null || !items[i]->text[0])
			config_error(ctx, items[i]->mark, "expected a path");
		else
			read_one(ctx, items[i], &env);
	}
	if (ctx->failures > before) {
		strv_free(env);
		return -1;
	}
	strv_free(*slot);
	*slot = env;
	return 0;
}

static void init_env_file(void *obj, const struct config_field *f)
{
	*(char ***)((char *)obj + f->off) = NULL;
}

static void release_env_file(void *obj, const struct config_field *f)
{
	char ***slot = (char ***)((char *)obj + f->off);

	strv_free(*slot);
	*slot = NULL;
}

const struct config_kind config_kind_env_file = { read_env_file, init_env_file, release_env_file };

void config_env_files_merge(struct cfg_program *p)
{
	for (size_t i = 0; p->env_file && p->env_file[i]; i++) {
		char *eq = strchr(p->env_file[i], '=');
		*eq = '\0';
		p->env = env_set(p->env ? p->env : config_xcalloc(1, sizeof *p->env), p->env_file[i], eq + 1);
		*eq = '=';
		if (!p->env)
			abort();
	}
}
