/* main.c — the emperor command line. */
#include <ctype.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "emperor.h"
#include "log.h"
#include "parse.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: emperor [OPTIONS] [DIR]\n"
		"Watches DIR (default: vassals.d) and runs one vassal per *.yaml / *.yml file.\n"
		"\n"
		"  --throttle DURATION          first respawn delay of a crashing vassal (1s)\n"
		"  --max-throttle DURATION      respawn delay cap (3m)\n"
		"  --throttle-reset DURATION    a vassal up this long respawns at once and its\n"
		"                               throttle starts over (10s)\n"
		"  --reload-concurrency N       vassals reloading at once on SIGHUP (2 per CPU)\n"
		"  --vassal PATH                the vassal binary (beside this one)\n"
		"  --control PATH               the control socket for emperorctl\n"
		"                               (default /run/emperor/<dir>.sock; see emperorctl)\n"
		"  --metrics ADDR               serve Prometheus metrics over HTTP on ADDR\n"
		"  --tyrant                     run each vassal as the owner of its file (root only)\n"
		"  --tyrant-allow-root          tyrant mode: accept root-owned files\n"
		"  --tyrant-nofollow            tyrant mode: refuse symlinked files\n"
		"  --etcd URL[,URL...]          also run the vassals of etcd keys\n"
		"                               PREFIX/vassals/{all,NODE}/NAME.yaml (docs/cluster.md)\n"
		"  --etcd-prefix PREFIX         (/emperor)\n"
		"  --node NAME                  this node's name (the host name)\n"
		"  --etcd-cache DIR             the mirror of the keys (beside the control socket)\n"
		"  --etcd-cacert/--etcd-cert/--etcd-key FILE   TLS to etcd\n"
		"  --etcd-user USER, --etcd-password PASSWORD | --etcd-password-file FILE\n"
		"  --log-format text|json       json: every line on stderr one JSON object\n"
		"                               (time, ident, vassal, pid, level, message)\n"
		"  --debug                      log every vassal state transition (also\n"
		"                               EMPEROR_DEBUG=1)\n"
		"  -h, --help                   this text\n"
		"  --version                    the version\n"
		"\n"
		"Signals: HUP rescan and reload every vassal, TERM/INT stop every vassal\n"
		"gracefully (a second INT: at once), USR1 status lines, USR2 re-exec in place.\n");
}

static const char *default_vassal_bin(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n < 0)
		return "vassal";
	self[n] = '\0';
	snprintf(path, sizeof path, "%s/vassal", dirname(self));
	return path;
}

enum { O_THROTTLE = 1, O_MAX_THROTTLE, O_CONCURRENCY, O_VASSAL, O_VERSION, O_CONTROL,
       O_METRICS, O_TYRANT, O_TYRANT_ROOT, O_TYRANT_NOFOLLOW, O_THROTTLE_RESET, O_DEBUG,
       O_ETCD, O_ETCD_PREFIX, O_NODE, O_ETCD_CACHE, O_ETCD_CACERT, O_ETCD_CERT, O_ETCD_KEY,
       O_ETCD_USER, O_ETCD_PASSWORD, O_ETCD_PASSWORD_FILE, O_LOG_FORMAT };
static const struct option longopts[] = {
	{ "throttle", required_argument, NULL, O_THROTTLE },
	{ "max-throttle", required_argument, NULL, O_MAX_THROTTLE },
	{ "throttle-reset", required_argument, NULL, O_THROTTLE_RESET },
	{ "reload-concurrency", required_argument, NULL, O_CONCURRENCY },
	{ "vassal", required_argument, NULL, O_VASSAL },
	{ "control", required_argument, NULL, O_CONTROL },
	{ "metrics", required_argument, NULL, O_METRICS },
	{ "tyrant", no_argument, NULL, O_TYRANT },
	{ "tyrant-allow-root", no_argument, NULL, O_TYRANT_ROOT },
	{ "tyrant-nofollow", no_argument, NULL, O_TYRANT_NOFOLLOW },
	{ "debug", no_argument, NULL, O_DEBUG },
	{ "log-format", required_argument, NULL, O_LOG_FORMAT },
	{ "etcd", required_argument, NULL, O_ETCD },
	{ "etcd-prefix", required_argument, NULL, O_ETCD_PREFIX },
	{ "node", required_argument, NULL, O_NODE },
	{ "etcd-cache", required_argument, NULL, O_ETCD_CACHE },
	{ "etcd-cacert", required_argument, NULL, O_ETCD_CACERT },
	{ "etcd-cert", required_argument, NULL, O_ETCD_CERT },
	{ "etcd-key", required_argument, NULL, O_ETCD_KEY },
	{ "etcd-user", required_argument, NULL, O_ETCD_USER },
	{ "etcd-password", required_argument, NULL, O_ETCD_PASSWORD },
	{ "etcd-password-file", required_argument, NULL, O_ETCD_PASSWORD_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* The --etcd... options, in the order of their enum values from O_ETCD. */
static const char **etcd_field(struct etcd_feed_opts *e, int i)
{
	const char **fields[] = { &e->endpoints, &e->prefix, &e->node, &e->cache_dir, &e->cacert,
				  &e->cert, &e->key, &e->user, &e->password, &e->password_file };

	return fields[i];
}

static int parse_args(int argc, char **argv, struct emperor_opts *o)
{
	const char *why = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case O_THROTTLE:
			if (parse_duration(optarg, &o->throttle, &why) < 0)
				goto bad;
			break;
		case O_MAX_THROTTLE:
			if (parse_duration(optarg, &o->max_throttle, &why) < 0)
				goto bad;
			break;
		case O_THROTTLE_RESET:
			if (parse_duration(optarg, &o->throttle_reset, &why) < 0)
				goto bad;
			break;
		case O_CONCURRENCY:
			o->reload_concurrency = atoi(optarg);
			if (o->reload_concurrency < 1 || o->reload_concurrency > 10000) {
				why = "expected a number from 1 to 10000";
				goto bad;
			}
			break;
		case O_VASSAL: o->vassal_bin = optarg; break;
		case O_CONTROL: o->control_path = optarg; break;
		case O_METRICS: o->metrics_addr = optarg; break;
		case O_TYRANT: o->tyrant = true; break;
		case O_TYRANT_ROOT: o->tyrant_allow_root = true; break;
		case O_TYRANT_NOFOLLOW: o->tyrant_nofollow = true; break;
		case O_DEBUG: o->debug = true; break;
		case O_LOG_FORMAT:
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
				why = "expected text or json";
				goto bad;
			}
			log_set_format(strcmp(optarg, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
			break;
		case 'h': usage(stdout); exit(0);
		case O_VERSION: printf("emperor %s\nfeatures: %s\n", EMPEROR_VERSION, EMPEROR_FEATURES); exit(0);
		default:
			if (opt >= O_ETCD && opt <= O_ETCD_PASSWORD_FILE) {
				*etcd_field(&o->etcd, opt - O_ETCD) = optarg;
				break;
			}
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc)
		o->dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "emperor: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "emperor: %s '%s': %s\n", argv[optind - 1], optarg, why);
	return -1;
}

/* A node's name is one component of a key: [A-Za-z0-9._-]+, not "." or "..". */
static int etcd_node_ok(const char *node, const char **why)
{
	size_t n = strlen(node);

	*why = "a node name is made of A-Z a-z 0-9 . _ - (at most 200 bytes)";
	if (n == 0 || n > 200 || strcmp(node, ".") == 0 || strcmp(node, "..") == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)node[i]) && !strchr("._-", node[i]))
			return -1;
	return 0;
}

/* The --etcd options checked, the prefix without its trailing '/', the node named. */
static int etcd_args(struct etcd_feed_opts *o, bool tyrant)
{
	static char prefix[512], host[256];
	const char *why;
	size_t n;

	bool any = o->prefix || o->node || o->cache_dir || o->cacert || o->cert || o->key ||
		   o->user || o->password || o->password_file;

	if (!o->endpoints && any)
		fprintf(stderr, "emperor: the --etcd-... and --node options go with --etcd\n");
	if (!o->endpoints)
		return any ? -1 : 0;
	if (tyrant) {
		fprintf(stderr, "emperor: --etcd does not go with --tyrant (the mirror's files are "
			"the emperor's own)\n");
		return -1;
	}
	snprintf(prefix, sizeof prefix, "%s", o->prefix ? o->prefix : "/emperor");
	for (n = strlen(prefix); n > 0 && prefix[n - 1] == '/'; n--)
		prefix[n - 1] = '\0';
	o->prefix = prefix;
	if (!o->node && gethostname(host, sizeof host) == 0)
		o->node = host;
	if (!o->node || etcd_node_ok(o->node, &why) < 0) {
		fprintf(stderr, "emperor: --node '%s': %s\n", o->node ? o->node : "",
			o->node ? why : "no host name");
		return -1;
	}
	if (strcmp(o->node, "all") == 0) {
		fprintf(stderr, "emperor: --node 'all': the name of the keys every node runs\n");
		return -1;
	}
	if (o->password && o->password_file) {
		fprintf(stderr, "emperor: --etcd-password or --etcd-password-file, not both\n");
		return -1;
	}
	return 0;
}

/* SIGHUP reloads this many vassals at once, the next one starting as one of them is
 * ready again: two per CPU we may run on. A new image's start is mostly CPU (exec, an
 * app's imports): one per CPU keeps every CPU busy, the second covers the waits (the old
 * workers' exit, READY=1); more would only share the CPUs among more starting apps, so
 * that each vassal's own reload (its gap, in graceful mode) lasts longer for no
 * shorter total. */
static int default_reload_concurrency(void)
{
	cpu_set_t cpus;
	long n = 0;

	if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
		n = CPU_COUNT(&cpus);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > 32 ? 64 : 2 * (int)n;
}

/* Each vassal holds two fds in the emperor (its channel and its output pipe): take
 * the whole hard limit, so a host with thousands of vassals is not cut at 1,024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			perror("emperor: setrlimit(RLIMIT_NOFILE)");
	}
}

int main(int argc, char **argv)
{
	struct emperor_opts o = {
		.dir = "vassals.d", .vassal_bin = default_vassal_bin(),
		.throttle = 1, .max_throttle = 180, .throttle_reset = 10,
		.reload_concurrency = default_reload_concurrency(),
	};

	if (parse_args(argc, argv, &o) < 0)
		return 2;
	if (o.max_throttle < o.throttle)
		o.max_throttle = o.throttle;
	if ((o.tyrant_allow_root || o.tyrant_nofollow) && !o.tyrant) {
		fprintf(stderr, "emperor: --tyrant-allow-root and --tyrant-nofollow go with --tyrant\n");
		return 2;
	}
	if (o.tyrant && geteuid() != 0) {
		fprintf(stderr, "emperor: --tyrant needs root (it runs each vassal as its file's owner)\n");
		return 2;
	}
	if (etcd_args(&o.etcd, o.tyrant) < 0)
		return 2;
	if (access(o.vassal_bin, X_OK) < 0) {
		fprintf(stderr, "emperor: vassal binary %s: not executable (use --vassal)\n",
			o.vassal_bin);
		return 2;
	}
	o.argv = argv;
	raise_nofile();
	return emperor_main(&o);
}
