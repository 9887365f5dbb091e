/* config.c — loads a vassal file into struct config and frees it. config_yaml.c makes
 * a node tree of the YAML; config_kinds.c walks it with the schema tables of
 * config_schema.c, one per mapping. After the walk come the checks that span mappings
 * (socket and legion references, unique names and addresses, fd counts, something to
 * run). The loader never logs: every problem is a "file:line:col: message" in errs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

/* Checks across mappings: they run once the whole file has read cleanly, and find
 * the node to point at again in the tree. */

/* The node at a dotted path ("http.listen") under map, or NULL. */
static const struct cfg_node *node_at(const struct cfg_node *map, const char *path)
{
	const char *dot = strchr(path, '.');
	char key[64];

	if (!dot)
		return config_node_get(map, path);
	snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
	return node_at(config_node_get(map, key), dot + 1);
}

/* The node at path in item i of the list under list_key ("sockets", "gateways"...). */
static const struct cfg_node *item_node(const struct cfg_node *root, const char *list_key,
					size_t i, const char *path)
{
	return node_at(config_node_get(root, list_key)->kids[i], path);
}

/* Reports msg at list_key[i].path. */
static void item_error(struct config_ctx *ctx, const struct cfg_node *root, const char *list_key,
		       size_t i, const char *path, const char *msg)
{
	config_path_push_key(ctx, list_key);
	config_path_push_index(ctx, i);
	config_path_push_key(ctx, path);
	config_error(ctx, item_node(root, list_key, i, path)->mark, "%s", msg);
	config_path_pop(ctx, 0);
}

static void check_unique_names(struct config_ctx *ctx, const struct cfg_node *root,
			       const char *list_key, const char *what)
{
	const struct cfg_node *list = config_node_get(root, list_key);
	size_t i, j;
	char msg[160];

	for (i = 0; list && i < list->n; i++) {
		const struct cfg_node *name = item_node(root, list_key, i, "name");

		for (j = 0; j < i; j++) {
			const struct cfg_node *first = item_node(root, list_key, j, "name");

			if (strcmp(name->text, first->text) != 0)
				continue;
			snprintf(msg, sizeof msg, "duplicate %s name '%s' (first at %d:%d)", what,
				 name->text, first->mark.line, first->mark.col);
			item_error(ctx, root, list_key, i, "name", msg);
			break;
		}
	}
}

static bool same_addr(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Who among the first n_sockets sockets and n_gateways gateways listens on a, or NULL. */
static const char *addr_user(const struct config *cfg, const struct cfg_addr *a, size_t n_sockets,
			     size_t n_gateways, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < n_sockets; i++) {
		if (same_addr(a, &cfg->sockets[i].addr)) {
			snprintf(buf, size, "socket '%s'", cfg->sockets[i].name);
			return buf;
		}
	}
	for (i = 0; i < n_gateways; i++) {
		if (same_addr(a, &cfg->gateways[i].listen)) {
			snprintf(buf, size, "gateways[%zu]", i);
			return buf;
		}
	}
	return NULL;
}

/* Two listeners on one address would fail at bind time: say so now. */
static void check_addresses(struct config_ctx *ctx, const struct config *cfg,
			    const struct cfg_node *root)
{
	char who[64], msg[256];
	size_t i;

	for (i = 0; i < cfg->n_sockets; i++) {
		if (!addr_user(cfg, &cfg->sockets[i].addr, i, 0, who, sizeof who))
			continue;
		snprintf(msg, sizeof msg, "address '%s' is already used by %s",
			 cfg->sockets[i].addr.text, who);
		item_error(ctx, root, "sockets", i, "listen", msg);
	}
	for (i = 0; i < cfg->n_gateways; i++) {
		if (!addr_user(cfg, &cfg->gateways[i].listen, cfg->n_sockets, i, who, sizeof who))
			continue;
		snprintf(msg, sizeof msg, "address '%s' is already used by %s",
			 cfg->gateways[i].listen.text, who);
		item_error(ctx, root, "gateways", i, "http.listen", msg);
	}
}

/* "" if name is a socket, else the complaint, with a suggestion. */
static const char *socket_problem(const struct config *cfg, const char *name, char *buf,
				  size_t size)
{
	struct config_suggestion near = { 0 };
	char hint[64];
	size_t i;

	if (config_socket(cfg, name))
		return "";
	for (i = 0; i < cfg->n_sockets; i++)
		config_consider(&near, name, cfg->sockets[i].name);
	snprintf(buf, size, "no socket named '%.40s'%s", name,
		 config_did_you_mean(&near, hint, sizeof hint));
	return buf;
}

static void check_gateway_routes(struct config_ctx *ctx, const struct config *cfg,
				 const struct cfg_node *root, size_t i)
{
	const struct cfg_node *to = item_node(root, "gateways", i, "http.to");
	char msg[160];
	size_t j;

	for (j = 0; cfg->gateways[i].to[j]; j++) {
		const struct cfg_node *at = to->kind == CFG_NODE_SEQ ? to->kids[j] : to;

		if (!*socket_problem(cfg, cfg->gateways[i].to[j], msg, sizeof msg))
			continue;
		config_path_push_key(ctx, "gateways");
		config_path_push_index(ctx, i);
		config_path_push_key(ctx, "http.to");
		if (at != to)
			config_path_push_index(ctx, j);
		config_error(ctx, at->mark, "%s", msg);
		config_path_pop(ctx, 0);
	}
}

static void check_socket_refs(struct config_ctx *ctx, const struct config *cfg,
			      const struct cfg_node *root)
{
	char msg[160];
	size_t i;

	for (i = 0; i < cfg->n_subscribe; i++)
		if (*socket_problem(cfg, cfg->subscribe[i].socket, msg, sizeof msg))
			item_error(ctx, root, "subscribe", i, "socket", msg);
	for (i = 0; i < cfg->n_gateways; i++)
		check_gateway_routes(ctx, cfg, root, i);
}

/* "" if name is one of the legions, else the complaint, with a suggestion. */
static const char *legion_problem(const struct config *cfg, const char *name, char *buf,
				  size_t size)
{
	struct config_suggestion near = { 0 };
	char hint[64];

	for (size_t i = 0; i < cfg->n_legions; i++) {
		if (strcmp(cfg->legions[i].name, name) == 0)
			return "";
		config_consider(&near, name, cfg->legions[i].name);
	}
	snprintf(buf, size, "no legion named '%.40s' in legions:%s", name,
		 config_did_you_mean(&near, hint, sizeof hint));
	return buf;
}

static void check_legion_refs(struct config_ctx *ctx, const struct config *cfg,
			      const struct cfg_node *root)
{
	char msg[160];
	size_t i;

	for (i = 0; i < cfg->n_daemons; i++)
		if (cfg->daemons[i].legion && *legion_problem(cfg, cfg->daemons[i].legion, msg, sizeof msg))
			item_error(ctx, root, "daemons", i, "legion", msg);
	for (i = 0; i < cfg->n_crons; i++)
		if (cfg->crons[i].legion && *legion_problem(cfg, cfg->crons[i].legion, msg, sizeof msg))
			item_error(ctx, root, "crons", i, "legion", msg);
	for (i = 0; i < cfg->n_subscribe; i++)
		if (cfg->subscribe[i].legion && *legion_problem(cfg, cfg->subscribe[i].legion, msg, sizeof msg))
			item_error(ctx, root, "subscribe", i, "legion", msg);
}

/* Where the listening fds pass CONFIG_MAX_LISTEN_FDS: the list and item, or NULL. */
static const char *listen_fds_over(const struct config *cfg, size_t *item)
{
	size_t used = cfg->n_sockets;

	if (used > CONFIG_MAX_LISTEN_FDS) {
		*item = CONFIG_MAX_LISTEN_FDS;
		return "sockets";
	}
	for (size_t i = 0; i < cfg->n_gateways; i++) {
		used += 1 + cfg->gateways[i].has_subscription_server;
		if (used > CONFIG_MAX_LISTEN_FDS) {
			*item = i;
			return "gateways";
		}
	}
	if (used + cfg->n_mules > CONFIG_MAX_LISTEN_FDS) {
		*item = CONFIG_MAX_LISTEN_FDS - used;
		return "mules";
	}
	return NULL;
}

/* Every socket, gateway socket and mule farm is an fd the master holds and hands over
 * at its re-exec: a bounded number, so a file past it is refused here, not at exec. */
static void check_fd_counts(struct config_ctx *ctx, const struct config *cfg,
			    const struct cfg_node *root)
{
	size_t total = cfg->n_sockets + cfg->n_mules, item = 0;
	const char *list = listen_fds_over(cfg, &item);
	const struct cfg_node *nofile = node_at(root, "limits.nofile");

	for (size_t i = 0; i < cfg->n_gateways; i++)
		total += 1 + cfg->gateways[i].has_subscription_server;
	if (list) {
		config_path_push_key(ctx, list);
		config_path_push_index(ctx, item);
		config_error(ctx, config_node_get(root, list)->kids[item]->mark,
			     "too many listening sockets: sockets, gateways and mule farms need %zu, "
			     "at most %d", total, CONFIG_MAX_LISTEN_FDS);
		config_path_pop(ctx, 0);
	}
	/* A worker gets the sockets on fds 3.. and needs some of its own besides. */
	if (nofile && cfg->limits.nofile < (long long)cfg->n_sockets + CONFIG_CHILD_FDS_MIN) {
		config_path_push_key(ctx, "limits.nofile");
		config_error(ctx, nofile->mark, "%lld is too low for %zu sockets: a worker gets them "
			     "on fds 3..%zu and needs room of its own; at least %lld", cfg->limits.nofile,
			     cfg->n_sockets, cfg->n_sockets + 2,
			     (long long)cfg->n_sockets + CONFIG_CHILD_FDS_MIN);
		config_path_pop(ctx, 0);
	}
}

/* on-demand and idle are about the sockets' connections: without a socket they have
 * nothing to watch. */
static void check_demand(struct config_ctx *ctx, const struct config *cfg,
			 const struct cfg_node *root)
{
	static const char *const keys[] = { "on-demand", "idle" };

	if (cfg->n_sockets || (!cfg->on_demand && cfg->idle <= 0))
		return;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct cfg_node *at = config_node_get(root, keys[i]);
		if (!at || (i == 0 && !cfg->on_demand) || (i == 1 && cfg->idle <= 0))
			continue;
		config_path_push_key(ctx, keys[i]);
		config_error(ctx, at->mark, "needs a socket to watch: define 'sockets'");
		config_path_pop(ctx, 0);
		return;
	}
}

static void check_config(struct config_ctx *ctx, const struct config *cfg,
			 const struct cfg_node *root)
{
	if (!cfg->has_workers && !cfg->n_mules && !cfg->has_spooler && !cfg->n_daemons &&
	    !cfg->n_gateways && !cfg->has_emperor && !cfg->n_crons)
		config_error(ctx, root->mark, "nothing to run: define workers, mules, spooler, "
					      "daemons, gateways, emperor or crons");
	check_unique_names(ctx, root, "legions", "legion");
	check_unique_names(ctx, root, "crons", "cron");
	check_legion_refs(ctx, cfg, root);
	check_unique_names(ctx, root, "sockets", "socket");
	check_unique_names(ctx, root, "mules", "mule");
	check_unique_names(ctx, root, "daemons", "daemon");
	check_addresses(ctx, cfg, root);
	check_socket_refs(ctx, cfg, root);
	check_fd_counts(ctx, cfg, root);
	check_demand(ctx, cfg, root);
}

/* Loading */

/* Each program's env-file variables over its env mapping's. */
static void merge_env_files(struct config *cfg)
{
	config_env_files_merge(&cfg->workers.prog);
	config_env_files_merge(&cfg->spooler.prog);
	for (size_t i = 0; i < cfg->n_mules; i++)
		config_env_files_merge(&cfg->mules[i].prog);
	for (size_t i = 0; i < cfg->n_daemons; i++)
		config_env_files_merge(&cfg->daemons[i].prog);
}

/* "hello" for "vassals.d/hello.yaml" */
char *config_vassal_name(const char *path)
{
	static const char *const exts[] = { ".yaml", ".yml" };
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t len = strlen(base), i;
	char *raw, *name;

	for (i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		size_t ext = strlen(exts[i]);

		if (len > ext && strcmp(base + len - ext, exts[i]) == 0) {
			len -= ext;
			break;
		}
	}
	raw = strndup(base, len);
	name = raw ? config_printable(raw) : NULL;
	free(raw);
	return name;
}

static struct config *config_from_tree(struct config_ctx *ctx, const struct cfg_node *root)
{
	struct config *cfg = config_xcalloc(1, sizeof *cfg);

	cfg->path = config_xstrdup(ctx->file);
	cfg->name = config_vassal_name(ctx->file);
	if (!cfg->name)
		abort();
	cfg->umask = -1;
	cfg->limits = (struct cfg_limits){ -1, -1, -1, -1, -1 };
	cfg->cgroup.memory_max = -1;
	cfg->cgroup.pids_max = -1;
	if (config_read_map(ctx, root, &config_root_schema, cfg) == 0)
		check_config(ctx, cfg, root);
	if (ctx->failures == 0)
		merge_env_files(cfg);
	if (ctx->failures == 0)
		return cfg;
	config_free(cfg);
	return NULL;
}

static int too_large(struct config_ctx *ctx, long long size)
{
	struct cfg_mark start = { 1, 1 };

	if (size < 0)
		return config_error(ctx, start, "file too large: more than %d bytes",
				    CONFIG_MAX_FILE_SIZE);
	return config_error(ctx, start, "file too large: %lld bytes (the limit is %d)", size,
			    CONFIG_MAX_FILE_SIZE);
}

struct config *config_load_buffer(const char *name, const char *buf, size_t len,
				  struct config_errors *errs)
{
	struct config_errors local = { 0 };
	struct config_ctx ctx = { .file = name, .errs = errs ? errs : &local };
	struct config *cfg = NULL;
	struct cfg_node *root;

	*ctx.errs = (struct config_errors){ 0 };
	if (len > CONFIG_MAX_FILE_SIZE) {
		too_large(&ctx, (long long)len);
	} else if ((root = config_yaml_parse(&ctx, buf, len))) {
		cfg = config_from_tree(&ctx, root);
		config_node_free(root);
	}
	config_errors_fini(&local);
	return cfg;
}

/* Reads fd to its end, or until it passed CONFIG_MAX_FILE_SIZE; NULL with errno. */
static char *read_fd(int fd, size_t *len)
{
	size_t cap = 0;
	char *buf = NULL;
	ssize_t n;

	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		*len += (size_t)n;
		if (n == 0 || *len > CONFIG_MAX_FILE_SIZE)
			return buf;
	}
}

static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "of an unknown type";
}

/* The opened file's bytes, or NULL after reporting; the size is checked before
 * reading. Only a regular file is read: opening a FIFO would wait for a writer
 * (O_NONBLOCK keeps that open from blocking), and a device could be read forever. */
static char *read_opened(struct config_ctx *ctx, int fd, size_t *len)
{
	struct cfg_mark nowhere = { 0, 0 };
	struct stat st;
	char *buf;
	int err;

	if (fstat(fd, &st) < 0) {
		config_error(ctx, nowhere, "cannot stat: %s", strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_FILE_SIZE) {
		if (!S_ISREG(st.st_mode))
			config_error(ctx, nowhere, "not a regular file: %s", file_kind(st.st_mode));
		else
			too_large(ctx, (long long)st.st_size);
		return NULL;
	}
	buf = read_fd(fd, len);
	err = errno;
	if (!buf)
		config_error(ctx, nowhere, "cannot read: %s", strerror(err));
	else if (*len > CONFIG_MAX_FILE_SIZE)
		too_large(ctx, -1);
	if (!buf || *len > CONFIG_MAX_FILE_SIZE) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct config *config_load_fd(const char *path, int fd, struct config_errors *errs)
{
	struct config_errors local = { 0 };
	struct config_ctx ctx = { .file = path, .errs = errs ? errs : &local };
	struct config *cfg = NULL;
	size_t len;
	char *buf;

	*ctx.errs = (struct config_errors){ 0 };
	buf = read_opened(&ctx, fd, &len);
	if (buf)
		cfg = config_load_buffer(path, buf, len, errs);
	free(buf);
	config_errors_fini(&local);
	return cfg;
}

struct config *config_load_file(const char *path, struct config_errors *errs)
{
	struct config_errors local = { 0 };
	struct config_ctx ctx = { .file = path, .errs = errs ? errs : &local };
	struct config *cfg = NULL;
	struct cfg_mark nowhere = { 0, 0 };
	size_t len;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*ctx.errs = (struct config_errors){ 0 };
	if (fd < 0) {
		config_error(&ctx, nowhere, "cannot open: %s", strerror(errno));
	} else {
		buf = read_opened(&ctx, fd, &len);
		close(fd);
	}
	if (buf)
		cfg = config_load_buffer(path, buf, len, errs);
	free(buf);
	config_errors_fini(&local);
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	config_schema_release(&config_root_schema, cfg);
	free(cfg->path);
	free(cfg->name);
	free(cfg);
}

void config_errors_fini(struct config_errors *errs)
{
	size_t i;

	if (!errs)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

const struct cfg_socket *config_socket(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_sockets; i++)
		if (strcmp(cfg->sockets[i].name, name) == 0)
			return &cfg->sockets[i];
	return NULL;
}
