/* config_schema.c — the schema tables of a vassal file, one per mapping, where a row
 * says a key's kind, where its value lands, its default and whether it is required:
 * adding a key is adding a row (and a line in docs/config.md). Defaults are strings
 * read by the same code as the file's values. Also the checks within one mapping
 * (socket, workers, gateway, cron). config.c loads a file with config_root_schema
 * and runs the checks that span mappings. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config_internal.h"
#include "cronexpr.h"

/* A row of table T: key, kind (config_kind_<kind>), member of T, then as needed .aux
 * (list length), .has (presence flag), .arg, .def (default) and .required. */
#define F(key_, kind_, member, ...) \
	{ .key = (key_), .kind = &config_kind_##kind_, .off = offsetof(T, member), __VA_ARGS__ }
#define LEN(member)   offsetof(T, member)
#define HAS(member)   (offsetof(T, member) + 1)
#define RANGE(lo, hi) (&(const struct config_range){ (lo), (hi) })

static const struct config_dur_range dur_any = { 0, 86400, "0s..24h" };
static const struct config_dur_range dur_positive = { 0.001, 86400, "1ms..24h" };
static const struct config_dur_range dur_lease = { 2, 3600, "2s..1h" };
static const struct config_dur_range dur_every = { 0, 31 * 86400, "1s..31d" };
static const struct config_dur_range dur_limit = { 0, 30 * 86400, "0s..720h" };
static const struct config_dur_range dur_scale = { 0.01, 86400, "10ms..24h" };

static const char *const ready_names[] = { "exec", "notify", NULL };
static const char *const reload_names[] = { "graceful", "workers", "chain", "overlap", NULL };
static const char *const start_prio_names[] = { "idle", "low", "normal", NULL };
static const char *const spool_stop_names[] = { "graceful", "kill", NULL };
static const char *const balance_names[] = { "round-robin", "least-conn", NULL };

static int socket_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);
static int workers_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);
static int gateway_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);
static int cron_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);
static int log_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj);

/* workers.count: "N", or a range "MIN..MAX" (MIN < MAX, both within .arg) that turns
 * scaling on. MIN lands at .off, MAX at .aux (an int; MAX = N for a plain number). */
static int read_count(struct config_ctx *ctx, const struct cfg_node *v, void *obj,
		      const struct config_field *f)
{
	const char *s = config_scalar(ctx, v, "a count or a range MIN..MAX"), *dots;
	struct cfg_node part = *v;
	long long lo, hi;
	char buf[64];

	if (!s)
		return -1;
	if (!(dots = strstr(s, ".."))) {
		if (config_int_value(ctx, v, f->arg, &lo) < 0)
			return -1;
		hi = lo;
	} else {
		snprintf(buf, sizeof buf, "%.*s", (int)(dots - s < 40 ? dots - s : 40), s);
		part.text = buf;
		if (config_int_value(ctx, &part, f->arg, &lo) < 0)
			return -1;
		part.text = (char *)dots + 2;
		if (config_int_value(ctx, &part, f->arg, &hi) < 0)
			return -1;
		if (lo >= hi)
			return config_error(ctx, v->mark, "range %.40s: MIN must be below MAX (a fixed "
					    "count is one number)", s);
	}
	*(int *)CONFIG_SLOT(obj, f) = (int)lo;
	*(int *)(void *)((char *)obj + f->aux) = (int)hi;
	return 0;
}

static const struct config_kind config_kind_count = { read_count, NULL, NULL };

/* What every exec'd kind shares (struct cfg_program). */
#define PROGRAM_FIELDS(mercy_key, mercy_def)                                       \
	F("exec", argv, prog.argv, .required = true),                              \
	F("env", env, prog.env),                                                   \
	F("env-file", env_file, prog.env_file),                                    \
	F("cwd", string, prog.cwd),                                                \
	F("stop-signal", signal, prog.stop_signal, .def = "TERM"),                 \
	F(mercy_key, duration, prog.reload_mercy, .arg = &dur_any, .def = mercy_def)

#define T struct cfg_socket
static const struct config_field socket_fields[] = {
	F("name", name, name, .required = true),
	F("listen", addr, addr, .required = true),
	F("backlog", int, backlog, .arg = RANGE(0, 65535), .def = "0"),
	F("mode", mode, mode, .def = "0666"),
	F("owner", string, owner),
	F("group", string, group),
	{ .key = NULL },
};
static const struct config_schema socket_schema = { socket_fields, sizeof(T), socket_check };
#undef T

#define T struct cfg_scale
static const struct config_field scale_fields[] = {
	F("up-when-backlog", int, up_when_backlog, .arg = RANGE(1, 65535), .def = "1"),
	F("up-after", duration, up_after, .arg = &dur_scale, .def = "200ms"),
	F("down-after", duration, down_after, .arg = &dur_scale, .def = "30s"),
	{ .key = NULL },
};
static const struct config_schema scale_schema = { scale_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_workers
static const struct config_field workers_fields[] = {
	PROGRAM_FIELDS("reload-mercy", "60s"),
	F("count", count, count, .aux = LEN(count_max), .arg = RANGE(1, 1024), .def = "1"),
	/* the default "1" reads as {up-when-backlog: 1}: every key's default */
	F("scale", section_or_scalar, scale, .has = HAS(has_scale), .arg = &scale_schema, .def = "1"),
	F("ready", enum, ready, .arg = ready_names, .def = "exec"),
	F("ready-timeout", duration, ready_timeout, .arg = &dur_positive, .def = "30s"),
	F("respawn-delay", duration, respawn_min, .arg = &dur_positive, .def = "100ms"),
	F("max-respawn-delay", duration, respawn_max, .arg = &dur_positive, .def = "30s"),
	F("start-priority", enum, start_priority, .arg = start_prio_names, .def = "idle"),
	F("preload", bool, preload, .def = "false"),
	F("watchdog", duration, watchdog, .arg = &dur_any, .def = "0"),
	F("max-rss", size_llong, max_rss, .arg = RANGE(0, LLONG_MAX), .def = "0"),
	F("max-lifetime", duration, max_lifetime, .arg = &dur_limit, .def = "0"),
	F("stall", duration, stall, .arg = &dur_any, .def = "0"),
	{ .key = NULL },
};
static const struct config_schema workers_schema = { workers_fields, sizeof(T), workers_check };
#undef T

#define T struct cfg_mule
static const struct config_field mule_fields[] = {
	F("name", name, name, .required = true),
	PROGRAM_FIELDS("reload-mercy", "60s"),
	F("count", int, count, .arg = RANGE(1, 256), .def = "1"),
	{ .key = NULL },
};
static const struct config_schema mule_schema = { mule_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_spooler
static const struct config_field spooler_fields[] = {
	F("dir", string, dir, .required = true),
	PROGRAM_FIELDS("reload-mercy", "30s"),
	F("processes", int, processes, .arg = RANGE(1, 64), .def = "1"),
	F("retry-backoff", duration, retry_backoff, .arg = &dur_any, .def = "30s"),
	F("max-attempts", int, max_attempts, .arg = RANGE(1, 1000), .def = "5"),
	F("stop", enum, stop, .arg = spool_stop_names, .def = "graceful"),
	{ .key = NULL },
};
static const struct config_schema spooler_schema = { spooler_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_daemon
static const struct config_field daemon_fields[] = {
	F("name", name, name, .required = true),
	PROGRAM_FIELDS("stop-mercy", "3s"),
	F("pidfile", string, pidfile),
	F("survive-reload", bool, survive_reload, .def = "false"),
	F("touch", string_or_list, touch),
	F("legion", name, legion),
	{ .key = NULL },
};
static const struct config_schema daemon_schema = { daemon_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_gateway
static const struct config_field gateway_fields[] = {
	F("listen", addr, listen, .required = true),
	F("to", string_or_list, to),
	F("subscription-server", addr, subscription_server, .has = HAS(has_subscription_server)),
	F("subscribers", uids, subscribers, .aux = LEN(n_subscribers)),
	F("balance", enum, balance, .arg = balance_names, .def = "round-robin"),
	F("max-connections", int, max_connections, .arg = RANGE(1, 1000000), .def = "10000"),
	F("header-timeout", duration, header_timeout, .arg = &dur_positive, .def = "10s"),
	F("backend-timeout", duration, backend_timeout, .arg = &dur_positive, .def = "60s"),
	F("tunnel-timeout", duration, tunnel_timeout, .arg = &dur_positive, .def = "10m"),
	F("max-connections-per-client", int, max_connections_per_client,
	  .arg = RANGE(0, 1000000), .def = "0"),
	F("reload-mercy", duration, reload_mercy, .arg = &dur_any, .def = "30s"),
	F("max-header-size", size, max_header_size, .arg = RANGE(1024, 1048576), .def = "8K"),
	{ .key = NULL },
};
static const struct config_schema gateway_schema = { gateway_fields, sizeof(T), gateway_check };
#undef T

#define T struct cfg_subscribe
static const struct config_field subscribe_fields[] = {
	F("server", addr, server, .required = true),
	F("key", string, key, .required = true),
	F("socket", string, socket, .required = true),
	F("weight", int, weight, .arg = RANGE(1, 1000), .def = "1"),
	F("legion", name, legion),
	{ .key = NULL },
};
static const struct config_schema subscribe_schema = { subscribe_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_legion
static const struct config_field legion_fields[] = {
	F("name", name, name, .required = true),
	F("valor", int, valor, .arg = RANGE(0, 1000000), .def = "0"),
	F("ttl", duration, ttl, .arg = &dur_lease, .def = "10s"),
	F("etcd", string_or_list, etcd),
	{ .key = NULL },
};
static const struct config_schema legion_schema = { legion_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_cron
static const struct config_field cron_fields[] = {
	F("name", name, name, .required = true),
	PROGRAM_FIELDS("stop-mercy", "10s"),
	F("schedule", string, schedule),
	F("every", duration, every, .arg = &dur_every, .def = "0"),
	F("legion", name, legion),
	{ .key = NULL },
};
static const struct config_schema cron_schema = { cron_fields, sizeof(T), cron_check };
#undef T

#define T struct cfg_hooks
static const struct config_field hooks_fields[] = {
	F("on-lord", argv, on_lord),
	F("on-unlord", argv, on_unlord),
	{ .key = NULL },
};
static const struct config_schema hooks_schema = { hooks_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_emperor
static const struct config_field emperor_fields[] = {
	F("dir", string, dir, .required = true),
	F("args", strings, args),
	F("stop-mercy", duration, stop_mercy, .arg = &dur_any, .def = "60s"),
	{ .key = NULL },
};
static const struct config_schema emperor_schema = { emperor_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_limits
static const struct config_field limits_fields[] = {
	F("nofile", rlimit, nofile),
	F("nproc", rlimit, nproc),
	F("core", rlimit_size, core),
	F("as", rlimit_size, as),
	F("cpu", rlimit, cpu),
	{ .key = NULL },
};
static const struct config_schema limits_schema = { limits_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_cgroup
static const struct config_field cgroup_fields[] = {
	F("parent", string, parent),
	F("memory-max", size_llong, memory_max, .arg = RANGE(1, LLONG_MAX)),
	F("pids-max", llong, pids_max, .arg = RANGE(1, 4194304)),
	F("cpu-max", cpu_max, cpu_max),
	{ .key = NULL },
};
static const struct config_schema cgroup_schema = { cgroup_fields, sizeof(T), NULL };
#undef T

#define T struct cfg_log
static const char *const log_format_names[] = { "text", "json", NULL };
static const struct config_field log_fields[] = {
	F("file", string, file),
	F("format", enum, format, .arg = log_format_names, .def = "text"),
	F("max-size", size_llong, max_size, .arg = RANGE(0, LLONG_MAX), .def = "0"),
	F("keep", int, keep, .arg = RANGE(1, 100), .def = "5"),
	{ .key = NULL },
};
static const struct config_schema log_schema = { log_fields, sizeof(T), log_check };
#undef T

#define T struct config
static const struct config_field config_fields[] = {
	F("sockets", list, sockets, .aux = LEN(n_sockets), .arg = &socket_schema),
	F("workers", section, workers, .has = HAS(has_workers), .arg = &workers_schema),
	F("reload", enum, reload, .arg = reload_names, .def = "graceful"),
	F("touch-reload", string_or_list, touch_reload),
	F("mules", list, mules, .aux = LEN(n_mules), .arg = &mule_schema),
	F("spooler", section, spooler, .has = HAS(has_spooler), .arg = &spooler_schema),
	F("daemons", list, daemons, .aux = LEN(n_daemons), .arg = &daemon_schema),
	F("gateways", gateways, gateways, .aux = LEN(n_gateways), .arg = &gateway_schema),
	F("subscribe", list, subscribe, .aux = LEN(n_subscribe), .arg = &subscribe_schema),
	F("unsubscribe-on-reload", bool, unsubscribe_on_reload, .def = "false"),
	F("emperor", section, emperor, .has = HAS(has_emperor), .arg = &emperor_schema),
	F("user", string, user),
	F("group", string, group),
	F("clear-env", bool, clear_env, .def = "false"),
	F("umask", umask, umask),
	F("limits", section, limits, .arg = &limits_schema),
	F("cgroup", section, cgroup, .has = HAS(has_cgroup), .arg = &cgroup_schema),
	F("log", section_or_scalar, log, .arg = &log_schema),
	F("heartbeat", duration, heartbeat, .arg = &dur_any, .def = "0"),
	F("stop-mercy", duration, stop_mercy, .arg = &dur_any, .def = "90s"),
	F("chdir", string, cwd),
	F("on-demand", bool, on_demand, .def = "false"),
	F("idle", duration, idle, .arg = &dur_any, .def = "0"),
	F("legions", list, legions, .aux = LEN(n_legions), .arg = &legion_schema),
	F("crons", list, crons, .aux = LEN(n_crons), .arg = &cron_schema),
	F("hooks", section, hooks, .arg = &hooks_schema),
	{ .key = NULL },
};
const struct config_schema config_root_schema = { config_fields, sizeof(T), NULL };
#undef T

/* Checks within one mapping */

static int socket_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj)
{
	static const char *const unix_only[] = { "mode", "owner", "group" };
	const struct cfg_socket *sock = obj;
	size_t i, saved;

	if (sock->addr.ss.ss_family == AF_UNIX)
		return 0;
	for (i = 0; i < sizeof unix_only / sizeof unix_only[0]; i++) {
		const struct cfg_node *v = config_node_get(map, unix_only[i]);

		if (!v)
			continue;
		saved = config_path_push_key(ctx, unix_only[i]);
		config_error(ctx, v->mark, "applies to unix sockets only");
		config_path_pop(ctx, saved);
		return -1;
	}
	return 0;
}

/* Without a file (the lines go to the emperor) there is nothing to rotate. */
static int log_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj)
{
	static const char *const file_only[] = { "max-size", "keep" };
	const struct cfg_log *log = obj;

	if (log->file)
		return 0;
	for (size_t i = 0; i < sizeof file_only / sizeof file_only[0]; i++) {
		const struct cfg_node *v = config_node_get(map, file_only[i]);
		if (!v)
			continue;
		size_t saved = config_path_push_key(ctx, file_only[i]);
		config_error(ctx, v->mark, "applies to a log file only: set 'file' too");
		config_path_pop(ctx, saved);
		return -1;
	}
	return 0;
}

static int workers_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj)
{
	const struct cfg_workers *w = obj;
	const struct cfg_node *at = config_node_get(map, "max-respawn-delay");

	if (w->has_scale && w->count_max == w->count) {
		size_t saved = config_path_push_key(ctx, "scale");
		config_error(ctx, config_node_get(map, "scale")->mark, "applies to a range count "
			     "only (count: MIN..MAX); count is %d", w->count);
		config_path_pop(ctx, saved);
		return -1;
	}
	if (w->preload && (at = config_node_get(map, "start-priority"))) {
		size_t saved = config_path_push_key(ctx, "start-priority");
		config_error(ctx, at->mark, "does not apply with preload: true (a preloaded "
			     "worker is forked from its template, already loaded; nothing starts "
			     "at a lower priority)");
		config_path_pop(ctx, saved);
		return -1;
	}
	at = config_node_get(map, "max-respawn-delay");
	if (w->respawn_max >= w->respawn_min)
		return 0;
	return config_error(ctx, (at ? at : config_node_get(map, "respawn-delay"))->mark,
			    "max-respawn-delay (%gs) is shorter than respawn-delay (%gs)",
			    w->respawn_max, w->respawn_min);
}

static int gateway_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj)
{
	const struct cfg_gateway *gw = obj;

	if (gw->to[0] || gw->has_subscription_server)
		return 0;
	return config_error(ctx, map->mark, "nowhere to route: give 'to' (socket names) or "
					    "'subscription-server'");
}

/* Exactly one of schedule and every; a schedule that parses and runs some day. */
static int cron_check(struct config_ctx *ctx, const struct cfg_node *map, const void *obj)
{
	const struct cfg_cron *c = obj;
	const struct cfg_node *at = config_node_get(map, "schedule");
	struct cronexpr e;
	char why[128];

	if (!c->schedule == (c->every == 0))
		return config_error(ctx, map->mark, c->schedule ? "give 'schedule' or 'every', not both"
								: "give 'schedule' (cron fields) or 'every' (a duration of 1s or more)");
	if (!c->schedule && c->every < 1)
		return config_error(ctx, config_node_get(map, "every")->mark,
				    "'every' must be 1s or more, got %gs", c->every);
	if (c->schedule && cronexpr_parse(c->schedule, &e, why, sizeof why) < 0) {
		size_t saved = config_path_push_key(ctx, "schedule");
		config_error(ctx, at->mark, "%s", why);
		config_path_pop(ctx, saved);
		return -1;
	}
	return 0;
}

