/* reload_config.c — a reload's look at the vassal file: read it (a FIFO never
 * blocks the loop), parse and validate it with every error logged as file:line:col,
 * and tell what in the new config only a new master image can apply (sockets,
 * identity, limits, log, chdir, the non-worker children, a new vassal binary), which
 * turns a `workers` or `chain` reload into a graceful one. */
#include "reload_config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static char *read_text(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	struct stat st;
	char *buf;

	if (fd < 0) {
		log_errno("%s: cannot open", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	buf = fd_read_all(fd, CONFIG_MAX_FILE_SIZE, len);
	if (!buf)
		log_errno("%s: read", path);
	close(fd);
	return buf;
}

struct config *reload_config_load(const char *path, char **text, size_t *len)
{
	struct config_errors errs = { 0 };
	struct config *cfg;

	*text = read_text(path, len);
	if (!*text)
		return NULL;
	cfg = config_load_buffer(path, *text, *len, &errs);
	for (size_t i = 0; i < errs.n; i++)
		log_warn("%s", errs.msgs[i]);
	config_errors_fini(&errs);
	if (!cfg) {
		free(*text);
		*text = NULL;
	}
	return cfg;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(char *const *a, char *const *b)
{
	size_t n = strv_len(a);

	if (n != strv_len(b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool prog_eq(const struct cfg_program *a, const struct cfg_program *b)
{
	return strv_eq(a->argv, b->argv) && strv_eq(a->env, b->env) && str_eq(a->cwd, b->cwd) &&
	       a->stop_signal == b->stop_signal && a->reload_mercy == b->reload_mercy;
}

/* Mules, spooler, daemons, nested emperor: changed ones need a graceful reload. */
static const char *children_change(const struct config *a, const struct config *b)
{
	if (a->n_mules != b->n_mules)
		return "mules";
	for (size_t i = 0; i < a->n_mules; i++)
		if (strcmp(a->mules[i].name, b->mules[i].name) || a->mules[i].count != b->mules[i].count ||
		    !prog_eq(&a->mules[i].prog, &b->mules[i].prog))
			return "mules";
	if (a->has_spooler != b->has_spooler ||
	    (a->has_spooler && (!str_eq(a->spooler.dir, b->spooler.dir) ||
				!prog_eq(&a->spooler.prog, &b->spooler.prog) ||
				a->spooler.processes != b->spooler.processes)))
		return "spooler";
	if (a->n_daemons != b->n_daemons)
		return "daemons";
	for (size_t i = 0; i < a->n_daemons; i++)
		if (strcmp(a->daemons[i].name, b->daemons[i].name) ||
		    !prog_eq(&a->daemons[i].prog, &b->daemons[i].prog) ||
		    !str_eq(a->daemons[i].pidfile, b->daemons[i].pidfile))
			return "daemons";
	if (a->has_emperor != b->has_emperor ||
	    (a->has_emperor && (!str_eq(a->emperor.dir, b->emperor.dir) ||
				!strv_eq(a->emperor.args, b->emperor.args))))
		return "nested emperor";
	if (a->n_gateways != b->n_gateways || a->n_subscribe != b->n_subscribe)
		return "gateways/subscriptions";
	return NULL;
}

/* Legions, crons, hooks and what names a legion: legion.c and cron.c read their
 * entries by index in whatever config the master holds, so a workers or chain reload
 * may swap the config only if these are equal. */
static const char *legion_change(const struct config *a, const struct config *b)
{
	if (a->n_legions != b->n_legions || a->n_crons != b->n_crons)
		return "legions/crons";
	for (size_t i = 0; i < a->n_legions; i++) {
		const struct cfg_legion *x = &a->legions[i], *y = &b->legions[i];
		if (strcmp(x->name, y->name) || x->valor != y->valor || x->ttl != y->ttl ||
		    !strv_eq(x->etcd, y->etcd))
			return "legions";
	}
	for (size_t i = 0; i < a->n_crons; i++) {
		const struct cfg_cron *x = &a->crons[i], *y = &b->crons[i];
		if (strcmp(x->name, y->name) || !str_eq(x->schedule, y->schedule) ||
		    x->every != y->every || !str_eq(x->legion, y->legion) || !prog_eq(&x->prog, &y->prog))
			return "crons";
	}
	if (!strv_eq(a->hooks.on_lord, b->hooks.on_lord) ||
	    !strv_eq(a->hooks.on_unlord, b->hooks.on_unlord))
		return "hooks";
	for (size_t i = 0; i < a->n_daemons && i < b->n_daemons; i++)
		if (!str_eq(a->daemons[i].legion, b->daemons[i].legion))
			return "daemons";
	for (size_t i = 0; i < a->n_subscribe && i < b->n_subscribe; i++)
		if (!str_eq(a->subscribe[i].legion, b->subscribe[i].legion))
			return "gateways/subscriptions";
	return NULL;
}

/* What in next only a new master image can apply, or NULL. */
const char *reload_config_master_change(const struct master *m, const struct config *next)
{
	const struct config *cur = m->cfg;
	struct stat st;

	if (cur->n_sockets != next->n_sockets)
		return "sockets";
	for (size_t i = 0; i < cur->n_sockets; i++) {
		const struct cfg_socket *a = &cur->sockets[i], *b = &next->sockets[i];
		if (!str_eq(a->name, b->name) || strcmp(a->addr.text, b->addr.text) ||
		    a->backlog != b->backlog || a->mode != b->mode ||
		    !str_eq(a->owner, b->owner) || !str_eq(a->group, b->group))
			return "sockets";
	}
	if (cur->idle != next->idle || cur->on_demand != next->on_demand)
		return "idle/on-demand"; /* the idle timer is set up at the master's start */
	if (!str_eq(cur->user, next->user) || !str_eq(cur->group, next->group))
		return "user/group";
	if (memcmp(&cur->limits, &next->limits, sizeof cur->limits) != 0)
		return "limits";
	if (!str_eq(cur->log.file, next->log.file) || cur->log.max_size != next->log.max_size ||
	    cur->log.keep != next->log.keep || cur->log.format != next->log.format ||
	    !str_eq(cur->cwd, next->cwd))
		return "log/chdir";
	const char *kids = children_change(cur, next);
	if (kids || (kids = legion_change(cur, next)))
		return kids;
	if (stat(m->exe, &st) == 0 &&
	    (st.st_ino != m->exe_st.st_ino || st.st_mtim.tv_sec != m->exe_st.st_mtim.tv_sec ||
	     st.st_mtim.tv_nsec != m->exe_st.st_mtim.tv_nsec))
		return "the vassal binary";
	return NULL;
}
