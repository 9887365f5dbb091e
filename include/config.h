/* config.h — a vassal's configuration: the YAML file loaded by libyaml into one typed
 * struct (docs/config.md is the reference for every key). After config_load*()
 * returns, the struct is only read; config_free() releases it. Durations are in
 * seconds (double); unset optional values are NULL / 0 as documented per field. */
#ifndef EMPEROR_CONFIG_H
#define EMPEROR_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024) /* bytes: larger files are refused */
#define CONFIG_MAX_NODES     10000         /* YAML events: bounds alias bombs */
#define CONFIG_EX_CONFIG     78            /* EX_CONFIG: exit status for a bad config */
/* Listening fds a vassal may hold: sockets + gateway sockets + mule farms. */
#define CONFIG_MAX_LISTEN_FDS 1024
/* limits.nofile must leave a worker this many fds above its sockets' count. */
#define CONFIG_CHILD_FDS_MIN  64

/* A parsed listen address: "127.0.0.1:8000", "[::1]:8000", ":8000", "unix:/path". */
struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[128 + 16]; /* as written, ${VAR} expanded */
};

struct cfg_socket {
	char *name;            /* required, unique within the vassal */
	struct cfg_addr addr;  /* "listen", required */
	int backlog;           /* 0 = the system's somaxconn */
	mode_t mode;           /* unix sockets: file mode, default 0666 */
	char *owner, *group;   /* unix sockets: chown after bind; NULL = unchanged */
};

/* What every exec'd child kind shares: argv, env, cwd, stop signal, mercy. */
struct cfg_program {
	char **argv;           /* "exec", required, NULL-terminated, no shell */
	char **env;            /* "env" mapping as "KEY=VALUE", NULL-terminated; may be empty */
	char **env_file;       /* "env-file": their KEY=VALUE lines, read at load and merged
				* into env (they win, as systemd's EnvironmentFile=) */
	char *cwd;             /* NULL = the vassal's cwd */
	int stop_signal;       /* "stop-signal", default SIGTERM */
	double reload_mercy;   /* "reload-mercy" (daemons: "stop-mercy") */
};

enum cfg_ready { CFG_READY_EXEC, CFG_READY_NOTIFY };
enum cfg_reload { CFG_RELOAD_GRACEFUL, CFG_RELOAD_WORKERS, CFG_RELOAD_CHAIN, CFG_RELOAD_OVERLAP };
/* The CPU priority of a chain or overlap replacement until it is ready. */
enum cfg_start_prio { CFG_START_PRIO_IDLE, CFG_START_PRIO_LOW, CFG_START_PRIO_NORMAL };
enum cfg_spool_stop { CFG_SPOOL_STOP_GRACEFUL, CFG_SPOOL_STOP_KILL };
enum cfg_balance { CFG_BALANCE_ROUND_ROBIN, CFG_BALANCE_LEAST_CONN };

/* workers.scale (vassal/scale.c): used only with a range count MIN..MAX. */
struct cfg_scale {
	int up_when_backlog;      /* "up-when-backlog", 1..65535, default 1: queued connections */
	double up_after;          /* "up-after", default 200ms: backlog sustained this long */
	double down_after;        /* "down-after", default 30s: accept queues empty this long */
};

struct cfg_workers {
	struct cfg_program prog;  /* reload-mercy default 60s */
	int count;                /* 1..1024, default 1; a range "MIN..MAX": MIN */
	int count_max;            /* a range's MAX (> count); a plain number: == count */
	bool has_scale;           /* "scale" written (only with a range) */
	struct cfg_scale scale;
	enum cfg_ready ready;     /* default exec */
	double ready_timeout;     /* default 30s */
	double respawn_min;       /* "respawn-delay", default 100ms: first backoff step */
	double respawn_max;       /* "max-respawn-delay", default 30s */
	enum cfg_start_prio start_priority; /* "start-priority", default idle */
	bool preload;             /* "preload", default false: forked from a template (preload.c) */
	/* health limits (vassal/health.c), 0 = not checked */
	double watchdog;          /* WATCHDOG=1 expected this often */
	long long max_rss;        /* bytes, the RSS of the worker's process group */
	double max_lifetime;      /* recycled after this, +-10 % */
	double stall;             /* a request unanswered this long (X_BUSY=1): killed */
};

struct cfg_mule {
	char *name;               /* required, unique; [A-Za-z0-9_-] */
	struct cfg_program prog;  /* reload-mercy default 60s */
	int count;                /* 1..256, default 1 */
};

struct cfg_spooler {
	char *dir;                /* required */
	struct cfg_program prog;  /* exec required; reload-mercy default 30s */
	int processes;            /* 1..64, default 1 */
	double retry_backoff;     /* default 30s */
	int max_attempts;         /* 1..1000, default 5 */
	enum cfg_spool_stop stop; /* default graceful */
};

struct cfg_daemon {
	char *name;               /* required, unique */
	struct cfg_program prog;  /* "stop-mercy" stored in prog.reload_mercy, default 3s */
	char *pidfile;            /* adopt the pid named there if alive */
	bool survive_reload;      /* default false */
	char **touch;             /* paths, NULL-terminated; may be empty */
	char *legion;             /* runs only while lord of this legion; NULL = always */
};

struct cfg_gateway {
	struct cfg_addr listen;       /* required */
	char **to;                    /* names of the vassal's sockets; NULL-terminated */
	bool has_subscription_server;
	struct cfg_addr subscription_server; /* unix datagram socket */
	uid_t *subscribers;           /* uids allowed to subscribe; n_subscribers entries */
	size_t n_subscribers;         /* 0 = the router's own uid and root */
	enum cfg_balance balance;     /* default round-robin */
	int max_connections;          /* default 10000 */
	double header_timeout;        /* default 10s */
	double backend_timeout;       /* default 60s */
	double tunnel_timeout;        /* default 10m: an idle upgraded connection is closed */
	int max_connections_per_client; /* default 0: max_connections / 10, at least 1 */
	double reload_mercy;          /* default 30s */
	size_t max_header_size;       /* default 8K */
};

struct cfg_subscribe {
	struct cfg_addr server;   /* required */
	char *key;                /* required, a host name or *.domain */
	char *socket;             /* required, names one of sockets[] */
	int weight;               /* 1..1000, default 1 */
	char *legion;             /* announced only while lord of this legion; NULL = always */
};

/* A legion this vassal is a member of (docs/cluster.md): etcd elects one lord. */
struct cfg_legion {
	char *name;               /* required, unique; [A-Za-z0-9_-] */
	int valor;                /* 0..1000000, default 0: the highest ready valor leads */
	double ttl;               /* lease TTL, 2s..1h, default 10s (whole seconds, rounded up) */
	char **etcd;              /* endpoints; empty = $EMPEROR_ETCD (comma-separated) */
};

/* A program run on a schedule (vassal/cron.c): exactly one of schedule and every. */
struct cfg_cron {
	char *name;               /* required, unique */
	struct cfg_program prog;  /* "stop-mercy" in prog.reload_mercy, default 10s */
	char *schedule;           /* five cron fields or @hourly...; NULL with every */
	double every;             /* seconds, 0 = schedule */
	char *legion;             /* runs only on the lord of this legion; NULL = always */
};

/* Programs run when this vassal becomes lord of a legion / stops being lord. */
struct cfg_hooks {
	char **on_lord, **on_unlord; /* argv, NULL = none */
};

struct cfg_emperor {
	char *dir;                /* required */
	char **args;              /* extra emperor arguments, NULL-terminated */
	double stop_mercy;        /* default 60s */
};

/* A limit written "unlimited": the master passes RLIM_INFINITY. (RLIM_INFINITY itself,
 * cast to long long, is -1 on Linux, which already means unset.) */
#define CFG_LIMIT_UNLIMITED LLONG_MAX

struct cfg_limits {           /* -1 = unset, CFG_LIMIT_UNLIMITED, else the rlimit value */
	long long nofile, nproc, core, as, cpu;
};

struct cfg_cgroup {
	char *parent;             /* NULL = unset */
	long long memory_max;     /* bytes, -1 unset */
	long long pids_max;       /* -1 unset */
	char *cpu_max;            /* "QUOTA PERIOD" or "max", NULL unset */
};

struct cfg_log {              /* "log": a path, or this mapping */
	char *file;               /* NULL = no log file (stderr, to the emperor) */
	long long max_size;       /* "max-size": rotate past this many bytes, 0 = never */
	int keep;                 /* rotated files kept, .1 ... .keep; default 5 */
	int format;               /* "format": CFG_LOG_TEXT (default) or CFG_LOG_JSON */
};
enum { CFG_LOG_TEXT, CFG_LOG_JSON };

struct config {
	char *path;               /* the file the config was loaded from */
	char *name;               /* vassal name: file name without .yaml/.yml */

	struct cfg_socket *sockets; size_t n_sockets;
	bool has_workers;
	struct cfg_workers workers;
	enum cfg_reload reload;   /* default graceful */
	char **touch_reload;      /* NULL-terminated; may be empty */
	struct cfg_mule *mules; size_t n_mules;
	bool has_spooler;
	struct cfg_spooler spooler;
	struct cfg_daemon *daemons; size_t n_daemons;
	struct cfg_gateway *gateways; size_t n_gateways;
	struct cfg_subscribe *subscribe; size_t n_subscribe;
	bool unsubscribe_on_reload;    /* default false */
	bool has_emperor;
	struct cfg_emperor emperor;
	char *user, *group;            /* NULL = unchanged */
	bool clear_env;                /* default false */
	int umask;                     /* -1 = unchanged */
	struct cfg_limits limits;
	bool has_cgroup;
	struct cfg_cgroup cgroup;
	struct cfg_log log;            /* log.file NULL = stderr */
	double heartbeat;              /* 0 = no heartbeat required */
	double stop_mercy;             /* "stop-mercy": emperor waits this long after SIGTERM, default 90s */
	char *cwd;                     /* "chdir": NULL = the directory of the file */
	bool on_demand;                /* "on-demand": the emperor holds the sockets and
					* starts the master at the first connection */
	double idle;                   /* "idle": stop after this long without an open
					* connection on the sockets; 0 = never */
	struct cfg_legion *legions; size_t n_legions;
	struct cfg_cron *crons; size_t n_crons;
	struct cfg_hooks hooks;
};

/* Errors: each is one line "file:line:col: message" (no trailing newline). */
struct config_errors {
	char **msgs;
	size_t n;
};

/* Loads and validates path. Returns a new config, or NULL with errs filled (one or
 * more messages, each naming file:line:col). errs may be NULL. */
struct config *config_load_file(const char *path, struct config_errors *errs);
/* The same from a file already opened (and checked) by the caller; fd stays open.
 * path names the file in messages. */
struct config *config_load_fd(const char *path, int fd, struct config_errors *errs);
/* The same from a buffer; name is the path used in messages and for the vassal name. */
struct config *config_load_buffer(const char *name, const char *buf, size_t len,
				  struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_fini(struct config_errors *errs);

/* s as one printable log line: control characters and bytes that are not UTF-8 are
 * written as escapes (\n, \t, \r, \xNN). malloc'd; NULL if out of memory. */
char *config_printable(const char *s);
/* The vassal name of a file: its base name less .yaml / .yml, printable as above (a
 * file name may hold a newline). malloc'd; NULL if out of memory. */
char *config_vassal_name(const char *path);

/* Looks a socket up by name; NULL if absent. */
const struct cfg_socket *config_socket(const struct config *cfg, const char *name);

#endif
