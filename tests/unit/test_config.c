/* test_config.c — unit tests of the config loader (lib/config*.c): the canonical
 * vassal file of DESIGN.md lands field by field, every documented default is applied,
 * and each class of mistake is refused with its exact "file:line:col: message". Most
 * fixtures are inline strings through config_load_buffer; a few are real files in a
 * temporary directory, through config_load_file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define MINIMAL "workers: {exec: [./w]}\n"

static const char design_example[] =
	"# vassals.d/hello.yaml  — the vassal's name is the file name: \"hello\"\n"
	"sockets:\n"
	"  - name: http\n"
	"    listen: 127.0.0.1:8001        # [::1]:8001, :8001, unix:/run/hello.sock\n"
	"workers:\n"
	"  count: 4\n"
	"  exec: [./build/examples/hello-worker, --greeting, hi]   # argv, no shell\n"
	"  env: {GREETING: hi}\n"
	"  ready: notify                   # or: exec\n"
	"  stop-signal: TERM\n"
	"  reload-mercy: 30s\n"
	"reload: graceful                  # or: workers | chain\n"
	"touch-reload: [./app.version]\n"
	"mules:\n"
	"  - name: mailer\n"
	"    exec: [./mailer]\n"
	"    count: 2\n"
	"spooler:\n"
	"  dir: ./spool/hello\n"
	"  exec: [./run-task]\n"
	"daemons:\n"
	"  - name: cache\n"
	"    exec: [memcached, -p, \"11211\", -l, 127.0.0.1]\n"
	"gateways:\n"
	"  - http:\n"
	"      listen: 127.0.0.1:8080\n"
	"      subscription-server: unix:./run/router.sock\n"
	"subscribe:\n"
	"  - server: unix:./run/router.sock\n"
	"    key: hello.localhost\n"
	"    socket: http\n"
	"emperor:\n"
	"  dir: ./more-vassals.d\n"
	"heartbeat: 10s\n"
	"log: ./log/hello.log\n";

/* Helpers */

static struct config *load(const char *yaml, struct config_errors *errs)
{
	return config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static struct config *load_ok(const char *yaml)
{
	struct config_errors errs;
	struct config *cfg = load(yaml, &errs);

	if (!cfg)
		fail_msg("refused: %s\n--- for:\n%s", errs.n ? errs.msgs[0] : "(no message)", yaml);
	assert_int_equal(errs.n, 0);
	return cfg;
}

/* yaml must be refused, with want as its first message. */
static void assert_refused(const char *yaml, size_t len, const char *want)
{
	struct config_errors errs;
	struct config *cfg = config_load_buffer("t.yaml", yaml, len, &errs);

	if (cfg) {
		config_free(cfg);
		fail_msg("accepted, expected: %s\n--- for:\n%s", want, yaml);
	}
	assert_true(errs.n >= 1);
	assert_string_equal(errs.msgs[0], want);
	config_errors_fini(&errs);
}

#define assert_error(yaml, want) assert_refused((yaml), strlen(yaml), (want))

static double port_of(const struct cfg_addr *a)
{
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static const char *unix_path(const struct cfg_addr *a)
{
	assert_int_equal(a->ss.ss_family, AF_UNIX);
	return ((const struct sockaddr_un *)&a->ss)->sun_path;
}

/* Writes content to dir/name and returns the path (static buffer). */
static const char *write_file(const char *dir, const char *name, const char *content, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int make_dir(void **state)
{
	char *dir = strdup("/tmp/test_config.XXXXXX");

	if (!dir || !mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int remove_dir(void **state)
{
	char *dir = *state;

	rmdir(dir);
	free(dir);
	return 0;
}

/* env-file: KEY=VALUE lines as systemd reads them, over env:, relative to the file's
 * directory; a bad line names the YAML key and the env file's path:line. */
static void test_env_file(void **state)
{
	const char *dir = *state;
	char yaml_path[256], env_path[256], env2_path[256], want[1024];
	struct config_errors errs;
	struct config *cfg;
	char *yaml;

	const char *text = "# comment\n; another\n\nDB_URL = postgres://x\nQUOTED=\"a b\"\nSINGLE='c d'\nKEEP=1\n";

	snprintf(env_path, sizeof env_path, "%s", write_file(dir, "app.env", text, strlen(text)));
	snprintf(env2_path, sizeof env2_path, "%s", write_file(dir, "more.env", "KEEP=2\n", 7));
	yaml = "workers:\n  exec: [w]\n  env: {KEEP: yaml, OTHER: o}\n"
	       "  env-file: [app.env, more.env, -missing.env]\n";
	snprintf(yaml_path, sizeof yaml_path, "%s", write_file(dir, "v.yaml", yaml, strlen(yaml)));
	cfg = config_load_file(yaml_path, &errs);
	if (!cfg)
		fail_msg("refused: %s", errs.msgs[0]);
	char *const *env = cfg->workers.prog.env;
	const char *want_env[] = { "KEEP=2", "OTHER=o", "DB_URL=postgres://x", "QUOTED=a b", "SINGLE=c d" };
	for (size_t i = 0; i < sizeof want_env / sizeof want_env[0]; i++) {
		bool found = false;
		for (size_t k = 0; env[k]; k++)
			found |= strcmp(env[k], want_env[i]) == 0;
		if (!found)
			fail_msg("no %s in the workers' env", want_env[i]);
	}
	assert_int_equal(strv_len(env), 5);
	config_free(cfg);

	write_file(dir, "app.env", "GOOD=1\nthis line has no equals sign\n", 35);
	cfg = config_load_file(yaml_path, &errs);
	assert_null(cfg);
	snprintf(want, sizeof want, "%s:4:14: workers.env-file: %s:2: expected KEY=VALUE", yaml_path, env_path);
	assert_string_equal(errs.msgs[0], want);
	config_errors_fini(&errs);

	write_file(dir, "app.env", "1BAD=x\n", 7);
	cfg = config_load_file(yaml_path, &errs);
	assert_null(cfg);
	assert_non_null(strstr(errs.msgs[0], "app.env:1: '1BAD' is not a variable name"));
	config_errors_fini(&errs);

	unlink(env_path), unlink(env2_path);
	cfg = config_load_file(yaml_path, &errs); /* app.env is not optional */
	assert_null(cfg);
	assert_non_null(strstr(errs.msgs[0], "app.env: No such file or directory"));
	config_errors_fini(&errs);
	unlink(yaml_path);
}

/* The canonical file and the defaults */

static void test_design_example_fields(void **state)
{
	struct config_errors errs;
	struct config *cfg;

	(void)state;
	cfg = config_load_buffer("vassals.d/hello.yaml", design_example, strlen(design_example),
				 &errs);
	assert_non_null(cfg);
	assert_int_equal(errs.n, 0);
	assert_string_equal(cfg->path, "vassals.d/hello.yaml");
	assert_string_equal(cfg->name, "hello");

	assert_int_equal(cfg->n_sockets, 1);
	assert_string_equal(cfg->sockets[0].name, "http");
	assert_string_equal(cfg->sockets[0].addr.text, "127.0.0.1:8001");
	assert_int_equal(cfg->sockets[0].addr.ss.ss_family, AF_INET);
	assert_int_equal(port_of(&cfg->sockets[0].addr), 8001);

	assert_true(cfg->has_workers);
	assert_int_equal(cfg->workers.count, 4);
	assert_string_equal(cfg->workers.prog.argv[0], "./build/examples/hello-worker");
	assert_string_equal(cfg->workers.prog.argv[1], "--greeting");
	assert_string_equal(cfg->workers.prog.argv[2], "hi");
	assert_null(cfg->workers.prog.argv[3]);
	assert_string_equal(cfg->workers.prog.env[0], "GREETING=hi");
	assert_null(cfg->workers.prog.env[1]);
	assert_int_equal(cfg->workers.ready, CFG_READY_NOTIFY);
	assert_int_equal(cfg->workers.prog.stop_signal, SIGTERM);
	assert_true(cfg->workers.prog.reload_mercy == 30);

	assert_int_equal(cfg->reload, CFG_RELOAD_GRACEFUL);
	assert_string_equal(cfg->touch_reload[0], "./app.version");
	assert_null(cfg->touch_reload[1]);

	assert_int_equal(cfg->n_mules, 1);
	assert_string_equal(cfg->mules[0].name, "mailer");
	assert_string_equal(cfg->mules[0].prog.argv[0], "./mailer");
	assert_int_equal(cfg->mules[0].count, 2);

	assert_true(cfg->has_spooler);
	assert_string_equal(cfg->spooler.dir, "./spool/hello");
	assert_string_equal(cfg->spooler.prog.argv[0], "./run-task");

	assert_int_equal(cfg->n_daemons, 1);
	assert_string_equal(cfg->daemons[0].name, "cache");
	assert_string_equal(cfg->daemons[0].prog.argv[2], "11211");
	assert_string_equal(cfg->daemons[0].prog.argv[4], "127.0.0.1");
	assert_null(cfg->daemons[0].prog.argv[5]);

	assert_int_equal(cfg->n_gateways, 1);
	assert_string_equal(cfg->gateways[0].listen.text, "127.0.0.1:8080");
	assert_int_equal(port_of(&cfg->gateways[0].listen), 8080);
	assert_true(cfg->gateways[0].has_subscription_server);
	assert_string_equal(unix_path(&cfg->gateways[0].subscription_server), "./run/router.sock");

	assert_int_equal(cfg->n_subscribe, 1);
	assert_string_equal(unix_path(&cfg->subscribe[0].server), "./run/router.sock");
	assert_string_equal(cfg->subscribe[0].key, "hello.localhost");
	assert_string_equal(cfg->subscribe[0].socket, "http");

	assert_true(cfg->has_emperor);
	assert_string_equal(cfg->emperor.dir, "./more-vassals.d");
	assert_true(cfg->heartbeat == 10);
	assert_string_equal(cfg->log.file, "./log/hello.log");
	assert_ptr_equal(config_socket(cfg, "http"), &cfg->sockets[0]);
	assert_null(config_socket(cfg, "https"));
	config_free(cfg);
}

/* The keys the canonical file leaves out get their documented defaults. */
static void test_design_example_defaults(void **state)
{
	struct config *cfg = load_ok(design_example);

	(void)state;
	assert_int_equal(cfg->sockets[0].backlog, 0);
	assert_int_equal(cfg->sockets[0].mode, 0666);
	assert_null(cfg->sockets[0].owner);
	assert_null(cfg->sockets[0].group);
	assert_true(cfg->mules[0].prog.reload_mercy == 60);
	assert_int_equal(cfg->mules[0].prog.stop_signal, SIGTERM);
	assert_null(cfg->mules[0].prog.env[0]);
	assert_null(cfg->mules[0].prog.cwd);
	assert_int_equal(cfg->spooler.processes, 1);
	assert_true(cfg->spooler.retry_backoff == 30);
	assert_int_equal(cfg->spooler.max_attempts, 5);
	assert_int_equal(cfg->spooler.stop, CFG_SPOOL_STOP_GRACEFUL);
	assert_true(cfg->spooler.prog.reload_mercy == 30);
	assert_true(cfg->daemons[0].prog.reload_mercy == 3);
	assert_false(cfg->daemons[0].survive_reload);
	assert_null(cfg->daemons[0].pidfile);
	assert_null(cfg->daemons[0].touch[0]);
	assert_null(cfg->gateways[0].to[0]);
	assert_int_equal(cfg->gateways[0].n_subscribers, 0);
	assert_int_equal(cfg->gateways[0].balance, CFG_BALANCE_ROUND_ROBIN);
	assert_int_equal(cfg->gateways[0].max_connections, 10000);
	assert_true(cfg->gateways[0].header_timeout == 10);
	assert_true(cfg->gateways[0].backend_timeout == 60);
	assert_true(cfg->gateways[0].reload_mercy == 30);
	assert_int_equal(cfg->gateways[0].max_header_size, 8192);
	assert_int_equal(cfg->subscribe[0].weight, 1);
	assert_null(cfg->emperor.args[0]);
	assert_true(cfg->emperor.stop_mercy == 60);
	assert_false(cfg->unsubscribe_on_reload);
	assert_true(cfg->stop_mercy == 90);
	config_free(cfg);
}

static void test_minimal_defaults(void **state)
{
	struct config *cfg = load_ok(MINIMAL);

	(void)state;
	assert_string_equal(cfg->name, "t");
	assert_int_equal(cfg->n_sockets, 0);
	assert_null(cfg->sockets);
	assert_true(cfg->has_workers);
	assert_int_equal(cfg->workers.count, 1);
	assert_int_equal(cfg->workers.ready, CFG_READY_EXEC);
	assert_true(cfg->workers.ready_timeout == 30);
	assert_true(cfg->workers.respawn_min == 0.1);
	assert_true(cfg->workers.respawn_max == 30);
	assert_true(cfg->workers.prog.reload_mercy == 60);
	assert_int_equal(cfg->workers.prog.stop_signal, SIGTERM);
	assert_null(cfg->workers.prog.env[0]);
	assert_null(cfg->workers.prog.cwd);
	assert_int_equal(cfg->reload, CFG_RELOAD_GRACEFUL);
	assert_null(cfg->touch_reload[0]);
	assert_int_equal(cfg->n_mules + cfg->n_daemons + cfg->n_gateways + cfg->n_subscribe, 0);
	assert_false(cfg->has_spooler);
	assert_false(cfg->has_emperor);
	assert_false(cfg->has_cgroup);
	assert_false(cfg->unsubscribe_on_reload);
	assert_null(cfg->user);
	assert_null(cfg->group);
	assert_false(cfg->clear_env);
	assert_int_equal(cfg->umask, -1);
	assert_int_equal(cfg->limits.nofile, -1);
	assert_int_equal(cfg->limits.nproc, -1);
	assert_int_equal(cfg->limits.core, -1);
	assert_int_equal(cfg->limits.as, -1);
	assert_int_equal(cfg->limits.cpu, -1);
	assert_int_equal(cfg->cgroup.memory_max, -1);
	assert_int_equal(cfg->cgroup.pids_max, -1);
	assert_null(cfg->cgroup.cpu_max);
	assert_null(cfg->log.file);
	assert_true(cfg->heartbeat == 0);
	assert_true(cfg->stop_mercy == 90);
	assert_null(cfg->cwd);
	config_free(cfg);
}

static void test_every_key_set(void **state)
{
	static const char yaml[] =
		"sockets:\n"
		"  - {name: api, listen: \"[::1]:9000\", backlog: 512}\n"
		"  - {name: sock, listen: unix:/run/x.sock, mode: 0600, owner: www, group: www}\n"
		"workers:\n"
		"  exec: [w]\n"
		"  cwd: ./app\n"
		"  ready-timeout: 1m\n"
		"  respawn-delay: 250ms\n"
		"  max-respawn-delay: 1m\n"
		"  stop-signal: SIGQUIT\n"
		"reload: chain\n"
		"mules: [{name: m1, exec: [m], env: {A: 1}, cwd: /tmp, stop-signal: INT,\n"
		"         reload-mercy: 5s}]\n"
		"spooler: {dir: s, exec: [t], processes: 4, retry-backoff: 2m, max-attempts: 9,\n"
		"          stop: kill, stop-signal: USR1, reload-mercy: 0}\n"
		"daemons:\n"
		"  - {name: d, exec: [d], pidfile: /run/d.pid, survive-reload: yes,\n"
		"     touch: [a, b],\n"
		"     stop-mercy: 10s}\n"
		"gateways:\n"
		"  - http: {listen: ':8080', to: [api, sock], subscribers: [root, 4242],\n"
		"           balance: least-conn, max-connections: 50, header-timeout: 2s,\n"
		"           backend-timeout: 5s, reload-mercy: 1s, max-header-size: 16KiB}\n"
		"subscribe: [{server: '127.0.0.1:7000', key: '*.example.com', socket: api,\n"
		"             weight: 7}]\n"
		"unsubscribe-on-reload: on\n"
		"emperor: {dir: more, args: [--x, y], stop-mercy: 2m}\n"
		"user: nobody\n"
		"group: nogroup\n"
		"clear-env: TRUE\n"
		"umask: 027\n"
		"limits: {nofile: 4096, nproc: 64, core: unlimited, as: 2G, cpu: 60}\n"
		"cgroup: {parent: app.slice, memory-max: 512M, pids-max: 100,\n"
		"         cpu-max: 50000 100000}\n"
		"log: /var/log/v.log\n"
		"heartbeat: 1.5s\n"
		"stop-mercy: 2m\n"
		"chdir: /srv/app\n";
	struct config *cfg = load_ok(yaml);

	(void)state;
	assert_int_equal(cfg->sockets[0].addr.ss.ss_family, AF_INET6);
	assert_int_equal(cfg->sockets[0].backlog, 512);
	assert_int_equal(cfg->sockets[1].mode, 0600);
	assert_string_equal(cfg->sockets[1].owner, "www");
	assert_string_equal(cfg->sockets[1].group, "www");
	assert_string_equal(cfg->workers.prog.cwd, "./app");
	assert_true(cfg->workers.ready_timeout == 60);
	assert_true(cfg->workers.respawn_min == 0.25);
	assert_true(cfg->workers.respawn_max == 60);
	assert_int_equal(cfg->workers.prog.stop_signal, SIGQUIT);
	assert_int_equal(cfg->reload, CFG_RELOAD_CHAIN);
	assert_string_equal(cfg->mules[0].prog.env[0], "A=1");
	assert_string_equal(cfg->mules[0].prog.cwd, "/tmp");
	assert_int_equal(cfg->mules[0].prog.stop_signal, SIGINT);
	assert_true(cfg->mules[0].prog.reload_mercy == 5);
	assert_int_equal(cfg->spooler.processes, 4);
	assert_true(cfg->spooler.retry_backoff == 120);
	assert_int_equal(cfg->spooler.max_attempts, 9);
	assert_int_equal(cfg->spooler.stop, CFG_SPOOL_STOP_KILL);
	assert_int_equal(cfg->spooler.prog.stop_signal, SIGUSR1);
	assert_true(cfg->spooler.prog.reload_mercy == 0);
	assert_string_equal(cfg->daemons[0].pidfile, "/run/d.pid");
	assert_true(cfg->daemons[0].survive_reload);
	assert_string_equal(cfg->daemons[0].touch[1], "b");
	assert_null(cfg->daemons[0].touch[2]);
	assert_true(cfg->daemons[0].prog.reload_mercy == 10);
	assert_string_equal(cfg->gateways[0].to[0], "api");
	assert_string_equal(cfg->gateways[0].to[1], "sock");
	assert_false(cfg->gateways[0].has_subscription_server);
	assert_int_equal(cfg->gateways[0].n_subscribers, 2);
	assert_int_equal(cfg->gateways[0].subscribers[0], 0);
	assert_int_equal(cfg->gateways[0].subscribers[1], 4242);
	assert_int_equal(cfg->gateways[0].balance, CFG_BALANCE_LEAST_CONN);
	assert_int_equal(cfg->gateways[0].max_connections, 50);
	assert_true(cfg->gateways[0].header_timeout == 2);
	assert_true(cfg->gateways[0].backend_timeout == 5);
	assert_true(cfg->gateways[0].reload_mercy == 1);
	assert_int_equal(cfg->gateways[0].max_header_size, 16384);
	assert_int_equal(cfg->subscribe[0].weight, 7);
	assert_string_equal(cfg->subscribe[0].key, "*.example.com");
	assert_true(cfg->unsubscribe_on_reload);
	assert_string_equal(cfg->emperor.args[1], "y");
	assert_true(cfg->emperor.stop_mercy == 120);
	assert_string_equal(cfg->user, "nobody");
	assert_string_equal(cfg->group, "nogroup");
	assert_true(cfg->clear_env);
	assert_int_equal(cfg->umask, 027);
	assert_int_equal(cfg->limits.nofile, 4096);
	assert_int_equal(cfg->limits.nproc, 64);
	assert_true(cfg->limits.core == CFG_LIMIT_UNLIMITED);
	assert_int_equal(cfg->limits.as, 2LL << 30);
	assert_int_equal(cfg->limits.cpu, 60);
	assert_true(cfg->has_cgroup);
	assert_string_equal(cfg->cgroup.parent, "app.slice");
	assert_int_equal(cfg->cgroup.memory_max, 512LL << 20);
	assert_int_equal(cfg->cgroup.pids_max, 100);
	assert_string_equal(cfg->cgroup.cpu_max, "50000 100000");
	assert_string_equal(cfg->log.file, "/var/log/v.log");
	assert_true(cfg->heartbeat == 1.5);
	assert_true(cfg->stop_mercy == 120);
	assert_string_equal(cfg->cwd, "/srv/app");
	config_free(cfg);
}

/* log: a path, or {file, max-size, keep, format}; format text (default) or json, also
 * without a file (the lines then go to the emperor as JSON). */
static void test_log_format(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(MINIMAL "log: ./v.log\n");
	assert_int_equal(cfg->log.format, CFG_LOG_TEXT);
	config_free(cfg);
	cfg = load_ok(MINIMAL "log: {file: ./v.log, format: json}\n");
	assert_string_equal(cfg->log.file, "./v.log");
	assert_int_equal(cfg->log.format, CFG_LOG_JSON);
	config_free(cfg);
	cfg = load_ok(MINIMAL "log: {format: json}\n");
	assert_null(cfg->log.file);
	assert_int_equal(cfg->log.format, CFG_LOG_JSON);
	config_free(cfg);
	assert_error(MINIMAL "log: {format: xml}\n",
		     "t.yaml:2:15: log.format: expected text or json, got 'xml'");
}

/* Scalars */

static void test_booleans(void **state)
{
	static const char *const yes[] = { "true", "True", "yes", "YES", "on", "On" };
	static const char *const no[] = { "false", "FALSE", "no", "No", "off", "OFF" };
	char yaml[128];
	size_t i;

	(void)state;
	for (i = 0; i < 6; i++) {
		struct config *cfg;

		snprintf(yaml, sizeof yaml, MINIMAL "clear-env: %s\nunsubscribe-on-reload: %s\n",
			 yes[i], no[i]);
		cfg = load_ok(yaml);
		assert_true(cfg->clear_env);
		assert_false(cfg->unsubscribe_on_reload);
		config_free(cfg);
	}
	assert_error(MINIMAL "clear-env: maybe\n",
		     "t.yaml:2:12: clear-env: expected a boolean (true/false, yes/no, on/off), "
		     "got 'maybe'");
}

static void test_octal_mode_and_umask(void **state)
{
	struct config *cfg = load_ok(MINIMAL "umask: \"0022\"\nsockets:\n"
					     "  - {name: a, listen: 'unix:/a', mode: \"0660\"}\n"
					     "  - {name: b, listen: 'unix:/b', mode: 0640}\n"
					     "  - {name: c, listen: 'unix:/c', mode: 0o750}\n");

	(void)state;
	assert_int_equal(cfg->umask, 022);
	assert_int_equal(cfg->sockets[0].mode, 0660);
	assert_int_equal(cfg->sockets[1].mode, 0640);
	assert_int_equal(cfg->sockets[2].mode, 0750);
	config_free(cfg);
	assert_error(MINIMAL "umask: 0968\n",
		     "t.yaml:2:8: umask: expected an octal umask like 022, got '0968'");
	assert_error(MINIMAL "umask: 01777\n",
		     "t.yaml:2:8: umask: '01777' is out of range (0..0777)");
}

static void test_limits_and_cgroup(void **state)
{
	struct config *cfg = load_ok(MINIMAL "limits: {nofile: unlimited, core: 0, as: 64K}\n"
					     "cgroup: {cpu-max: max, memory-max: 1G}\n");

	(void)state;
	assert_true(cfg->limits.nofile == CFG_LIMIT_UNLIMITED);
	assert_int_equal(cfg->limits.core, 0);
	assert_int_equal(cfg->limits.as, 65536);
	assert_int_equal(cfg->limits.nproc, -1);
	assert_int_equal(cfg->limits.cpu, -1);
	assert_string_equal(cfg->cgroup.cpu_max, "max");
	assert_int_equal(cfg->cgroup.memory_max, 1LL << 30);
	assert_int_equal(cfg->cgroup.pids_max, -1);
	config_free(cfg);
	assert_error(MINIMAL "limits: {nofile: 64K}\n",
		     "t.yaml:2:18: limits.nofile: expected an integer, got '64K'");
	assert_error(MINIMAL "limits: {nproc: -1}\n",
		     "t.yaml:2:17: limits.nproc: -1 is out of range (0..9223372036854775806)");
	assert_error(MINIMAL "cgroup: {cpu-max: 50000}\n",
		     "t.yaml:2:19: cgroup.cpu-max: expected \"max\" or \"QUOTA PERIOD\" in "
		     "microseconds, like \"50000 100000\", got '50000'");
}

static void test_string_or_list(void **state)
{
	struct config *cfg = load_ok("sockets: [{name: a, listen: ':1'}]\n"
				     "touch-reload: ./app.version\n"
				     "gateways: [{http: {listen: ':2', to: a}}]\n");

	(void)state;
	assert_string_equal(cfg->touch_reload[0], "./app.version");
	assert_null(cfg->touch_reload[1]);
	assert_string_equal(cfg->gateways[0].to[0], "a");
	assert_null(cfg->gateways[0].to[1]);
	config_free(cfg);
}

static void test_vassal_name_from_path(void **state)
{
	static const struct {
		const char *path, *name;
	} cases[] = {
		{ "vassals.d/hello.yaml", "hello" },
		{ "/etc/v/app.yml", "app" },
		{ "plain", "plain" },
		{ "dir.yaml/x.conf", "x.conf" },
		{ "a.b.yaml", "a.b" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config *cfg =
			config_load_buffer(cases[i].path, MINIMAL, strlen(MINIMAL), NULL);

		assert_non_null(cfg);
		assert_string_equal(cfg->name, cases[i].name);
		assert_string_equal(cfg->path, cases[i].path);
		config_free(cfg);
	}
}

static void test_something_to_run_each_kind(void **state)
{
	static const char *const files[] = {
		"mules: [{name: m, exec: [m]}]\n",
		"spooler: {dir: d, exec: [t]}\n",
		"daemons: [{name: d, exec: [d]}]\n",
		"gateways: [{http: {listen: ':1', subscription-server: 'unix:@r'}}]\n",
		"emperor: {dir: more}\n",
		"workers: {exec: [any-program]}\n", /* workers need no socket */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof files / sizeof files[0]; i++)
		config_free(load_ok(files[i]));
}

/* ${VAR} expansion */

static void test_env_expansion(void **state)
{
	struct config *cfg;

	(void)state;
	setenv("TEST_CONFIG_PORT", "8123", 1);
	setenv("TEST_CONFIG_EMPTY", "", 1);
	unsetenv("TEST_CONFIG_UNSET");
	cfg = load_ok(
		"sockets: [{name: a, listen: \"127.0.0.1:${TEST_CONFIG_PORT}\"}]\n"
		"workers:\n"
		"  count: ${TEST_CONFIG_UNSET:-3}\n"
		"  exec: [w, \"--port=${TEST_CONFIG_PORT}\", \"$$HOME\", \"a$b\"]\n"
		"  env: {P: \"${TEST_CONFIG_EMPTY:-fallback}\", Q: \"${TEST_CONFIG_EMPTY}\"}\n");
	assert_string_equal(cfg->sockets[0].addr.text, "127.0.0.1:8123");
	assert_int_equal(port_of(&cfg->sockets[0].addr), 8123);
	assert_int_equal(cfg->workers.count, 3);
	assert_string_equal(cfg->workers.prog.argv[1], "--port=8123");
	assert_string_equal(cfg->workers.prog.argv[2], "$HOME");
	assert_string_equal(cfg->workers.prog.argv[3], "a$b");
	assert_string_equal(cfg->workers.prog.env[0], "P=fallback");
	assert_string_equal(cfg->workers.prog.env[1], "Q=");
	config_free(cfg);
}

static void test_env_unset_variable(void **state)
{
	(void)state;
	unsetenv("TEST_CONFIG_UNSET");
	assert_error(
		"workers:\n  exec: [w, \"${TEST_CONFIG_UNSET}\"]\n",
		"t.yaml:2:13: workers.exec[1]: environment variable 'TEST_CONFIG_UNSET' is not "
		"set (write ${TEST_CONFIG_UNSET:-default} to give a default)");
}

static void test_env_unterminated_and_invalid(void **state)
{
	(void)state;
	assert_error(MINIMAL "log: ${HOME\n", "t.yaml:2:6: log: unterminated '${' (expected '}')");
	assert_error(MINIMAL "log: ${1X}\n",
		     "t.yaml:2:6: log: invalid reference '${1X}': expected ${NAME} or "
		     "${NAME:-default}");
}

static void test_env_not_expanded_in_keys(void **state)
{
	(void)state;
	setenv("TEST_CONFIG_KEY", "log", 1);
	assert_error(MINIMAL "${TEST_CONFIG_KEY}: x\n",
		     "t.yaml:2:1: unknown key '${TEST_CONFIG_KEY}'");
}

/* Keys */

static void test_unknown_key_did_you_mean(void **state)
{
	(void)state;
	assert_error("wokers:\n  exec: [w]\n",
		     "t.yaml:1:1: unknown key 'wokers', did you mean 'workers'?");
	assert_error("workers: {exec: [w], cont: 2}\n",
		     "t.yaml:1:22: workers: unknown key 'cont', did you mean 'count'?");
	assert_error(
		"workers:\n  exec: [w]\n  reload_mercy: 5s\n",
		"t.yaml:3:3: workers: unknown key 'reload_mercy', did you mean 'reload-mercy'?");
	assert_error(MINIMAL "Log: x\n", "t.yaml:2:1: unknown key 'Log', did you mean 'log'?");
}

static void test_unknown_key_without_suggestion(void **state)
{
	(void)state;
	assert_error(MINIMAL "processes: 4\n", "t.yaml:2:1: unknown key 'processes'");
}

static void test_several_errors_collected(void **state)
{
	struct config_errors errs;

	(void)state;
	assert_null(load(MINIMAL "aaa: 1\nbbbbbbbb: 2\nworkers2: 3\n", &errs));
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.msgs[0], "t.yaml:2:1: unknown key 'aaa'");
	assert_string_equal(errs.msgs[1], "t.yaml:3:1: unknown key 'bbbbbbbb'");
	assert_string_equal(errs.msgs[2],
			    "t.yaml:4:1: unknown key 'workers2', did you mean 'workers'?");
	config_errors_fini(&errs);
	assert_int_equal(errs.n, 0);
	assert_null(errs.msgs);
}

/* Past 20 messages the rest are dropped, and the walk stops early. */
static void test_error_count_is_capped(void **state)
{
	struct config_errors errs;
	char yaml[2048] = MINIMAL;
	int i;

	(void)state;
	for (i = 0; i < 50; i++)
		snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml), "unknown%d: x\n", i);
	assert_null(load(yaml, &errs));
	assert_int_equal(errs.n, 20);
	assert_string_equal(errs.msgs[19], "t.yaml:21:1: unknown key 'unknown19'");
	config_errors_fini(&errs);
}

static void test_duplicate_key(void **state)
{
	(void)state;
	assert_error("workers:\n  exec: [w]\n  count: 2\n  count: 3\n",
		     "t.yaml:4:3: workers: duplicate key 'count' (first at 3:3)");
	assert_error(MINIMAL "log: a\nlog: b\n", "t.yaml:3:1: duplicate key 'log' (first at 2:1)");
	assert_error("workers: {exec: [w], env: {A: 1, A: 2}}\n",
		     "t.yaml:1:34: workers.env: duplicate key 'A' (first at 1:28)");
}

static void test_missing_required_key(void **state)
{
	(void)state;
	assert_error("workers:\n  count: 2\n", "t.yaml:2:3: workers: missing required key 'exec'");
	assert_error("workers: {count: 2}\n", "t.yaml:1:10: workers: missing required key 'exec'");
	assert_error(MINIMAL "sockets:\n  - name: a\n",
		     "t.yaml:3:5: sockets[0]: missing required key 'listen'");
	assert_error("spooler: {exec: [t]}\n", "t.yaml:1:10: spooler: missing required key 'dir'");
	assert_error("emperor: {}\n", "t.yaml:1:10: emperor: missing required key 'dir'");
	assert_error("gateways: [{http: {to: a}}]\n",
		     "t.yaml:1:19: gateways[0].http: missing required key 'listen'");
}

/* Types */

static void test_expected_mapping(void **state)
{
	(void)state;
	assert_error("workers: [w]\n", "t.yaml:1:10: workers: expected a mapping, got a list");
	assert_error("workers: ./w\n", "t.yaml:1:10: workers: expected a mapping, got './w'");
	assert_error(MINIMAL "sockets: [a]\n",
		     "t.yaml:2:11: sockets[0]: expected a mapping, got 'a'");
	assert_error(MINIMAL "sockets: {name: a}\n",
		     "t.yaml:2:10: sockets: expected a list of mappings, got a mapping");
}

static void test_expected_list_of_strings(void **state)
{
	(void)state;
	assert_error("workers: {exec: ./w --flag}\n",
		     "t.yaml:1:17: workers.exec: expected a list of strings, got './w --flag'");
	assert_error("workers: {exec: [w, [x]]}\n",
		     "t.yaml:1:21: workers.exec[1]: expected a string, got a list");
	assert_error("workers: {exec: []}\n",
		     "t.yaml:1:17: workers.exec: expected a non-empty list of strings (program and "
		     "arguments), got an empty list");
	assert_error(MINIMAL "emperor: {dir: d, args: x}\n",
		     "t.yaml:2:25: emperor.args: expected a list of strings, got 'x'");
}

static void test_expected_integer(void **state)
{
	(void)state;
	assert_error("workers: {exec: [w], count: abc}\n",
		     "t.yaml:1:29: workers.count: expected an integer, got 'abc'");
	assert_error("workers: {exec: [w], count: 1.5}\n",
		     "t.yaml:1:29: workers.count: expected an integer, got '1.5'");
	assert_error("workers: {exec: [w], count: 0x10}\n",
		     "t.yaml:1:29: workers.count: expected an integer, got '0x10'");
}

static void test_empty_value(void **state)
{
	(void)state;
	assert_error(MINIMAL "user:\n", "t.yaml:2:6: user: expected a string, got an empty value");
	assert_error(MINIMAL "user: ''\n", "t.yaml:2:7: user: expected a non-empty string");
	assert_error(MINIMAL "heartbeat: ~\n",
		     "t.yaml:2:12: heartbeat: expected a duration, got an empty value");
}

/* on-demand and idle: off by default; either one needs a socket to watch. */
static void test_on_demand_and_idle(void **state)
{
	struct config *cfg = load_ok(MINIMAL);

	(void)state;
	assert_false(cfg->on_demand);
	assert_true(cfg->idle == 0);
	config_free(cfg);
	cfg = load_ok(MINIMAL "sockets: [{name: http, listen: 127.0.0.1:8001}]\n"
		      "on-demand: true\nidle: 5m\n");
	assert_true(cfg->on_demand);
	assert_true(cfg->idle == 300);
	config_free(cfg);
	assert_error(MINIMAL "on-demand: true\n",
		     "t.yaml:2:12: on-demand: needs a socket to watch: define 'sockets'");
	assert_error(MINIMAL "idle: 1s\n", "t.yaml:2:7: idle: needs a socket to watch: define 'sockets'");
	assert_error(MINIMAL "idle: forever\n",
		     "t.yaml:2:7: idle: invalid duration 'forever': expected a duration like 500ms, 30s, 2m or 1h");
	cfg = load_ok(MINIMAL "on-demand: false\nidle: 0\n"); /* both off: no socket needed */
	config_free(cfg);
}

static void test_env_mapping_errors(void **state)
{
	(void)state;
	assert_error("workers: {exec: [w], env: [A=1]}\n",
		     "t.yaml:1:27: workers.env: expected a mapping of NAME: value, got a list");
	assert_error("workers: {exec: [w], env: {A: [1]}}\n",
		     "t.yaml:1:31: workers.env.A: expected a string, got a list");
}

/* Ranges */

static void test_count_ranges(void **state)
{
	(void)state;
	assert_error("workers: {exec: [w], count: 0}\n",
		     "t.yaml:1:29: workers.count: 0 is out of range (1..1024)");
	assert_error("workers: {exec: [w], count: 1025}\n",
		     "t.yaml:1:29: workers.count: 1025 is out of range (1..1024)");
	assert_error("mules: [{name: m, exec: [m], count: 257}]\n",
		     "t.yaml:1:37: mules[0].count: 257 is out of range (1..256)");
	assert_error("spooler: {dir: d, exec: [t], processes: 65}\n",
		     "t.yaml:1:41: spooler.processes: 65 is out of range (1..64)");
	assert_error("spooler: {dir: d, exec: [t], max-attempts: 0}\n",
		     "t.yaml:1:44: spooler.max-attempts: 0 is out of range (1..1000)");
	assert_error("workers: {exec: [w], count: 99999999999999999999}\n",
		     "t.yaml:1:29: workers.count: 99999999999999999999 is out of range (1..1024)");
}

static void test_backlog_and_weight_ranges(void **state)
{
	(void)state;
	assert_error(MINIMAL "sockets: [{name: a, listen: ':1', backlog: 65536}]\n",
		     "t.yaml:2:44: sockets[0].backlog: 65536 is out of range (0..65535)");
	assert_error(MINIMAL "sockets: [{name: a, listen: ':1'}]\n"
			     "subscribe: [{server: 'unix:@s', key: k, socket: a, weight: 1001}]\n",
		     "t.yaml:3:60: subscribe[0].weight: 1001 is out of range (1..1000)");
	assert_error(MINIMAL "sockets: [{name: a, listen: ':1'}]\n"
			     "subscribe: [{server: 'unix:@s', key: k, socket: a, weight: 0}]\n",
		     "t.yaml:3:60: subscribe[0].weight: 0 is out of range (1..1000)");
}

static void test_duration_errors(void **state)
{
	(void)state;
	assert_error(
		"workers: {exec: [w], reload-mercy: 5x}\n",
		"t.yaml:1:36: workers.reload-mercy: invalid duration '5x': expected a duration "
		"like 500ms, 30s, 2m or 1h");
	assert_error(
		"workers: {exec: [w], reload-mercy: -1s}\n",
		"t.yaml:1:36: workers.reload-mercy: invalid duration '-1s': a duration cannot be "
		"negative");
	assert_error(MINIMAL "stop-mercy: 25h\n",
		     "t.yaml:2:13: stop-mercy: '25h' is out of range (0s..24h)");
	assert_error("workers: {exec: [w], ready-timeout: 0}\n",
		     "t.yaml:1:37: workers.ready-timeout: '0' is out of range (1ms..24h)");
	assert_error("workers: {exec: [w], respawn-delay: 1m, max-respawn-delay: 10s}\n",
		     "t.yaml:1:60: workers: max-respawn-delay (10s) is shorter than respawn-delay "
		     "(60s)");
	assert_error("workers: {exec: [w], preload: yes please}\n",
		     "t.yaml:1:31: workers.preload: expected a boolean (true/false, yes/no, on/off), got "
		     "'yes please'");
	assert_error("workers: {exec: [w], preload: true, start-priority: low}\n",
		     "t.yaml:1:53: workers.start-priority: does not apply with preload: true (a "
		     "preloaded worker is forked from its template, already loaded; nothing "
		     "starts at a lower priority)");
}

/* workers.preload: off by default; on, with the other worker options. */
static void test_workers_preload(void **state)
{
	struct config *cfg = load_ok("workers: {exec: [w]}\n");

	(void)state;
	assert_false(cfg->workers.preload);
	config_free(cfg);
	cfg = load_ok("workers: {exec: [w], preload: true, ready: notify, count: 4}\n");
	assert_true(cfg->workers.preload);
	assert_int_equal(cfg->workers.count, 4);
	config_free(cfg);
}

static void test_zero_mercy_allowed(void **state)
{
	struct config *cfg = load_ok("workers: {exec: [w], reload-mercy: 0}\nstop-mercy: 0s\n");

	(void)state;
	assert_true(cfg->workers.prog.reload_mercy == 0);
	assert_true(cfg->stop_mercy == 0);
	config_free(cfg);
}

static void test_signal_size_enum_errors(void **state)
{
	(void)state;
	assert_error(
		"workers: {exec: [w], stop-signal: TERMINATE}\n",
		"t.yaml:1:35: workers.stop-signal: invalid signal 'TERMINATE': expected a signal "
		"like TERM, HUP, KILL or a number 1..64");
	assert_error(
		MINIMAL "limits: {as: 12X}\n",
		"t.yaml:2:14: limits.as: invalid size '12X': expected a size like 4096, 64K, 512M "
		"or 2G");
	assert_error(
		MINIMAL "reload: gracefull\n",
		"t.yaml:2:9: reload: expected graceful, workers, chain or overlap, got 'gracefull', did "
		"you mean 'graceful'?");
	assert_error("workers: {exec: [w], ready: systemd}\n",
		     "t.yaml:1:29: workers.ready: expected exec or notify, got 'systemd'");
	assert_error("gateways: [{http: {listen: ':1', subscription-server: 'unix:@r', "
		     "max-header-size: 512}}]\n",
		     "t.yaml:1:83: gateways[0].http.max-header-size: '512' is out of range "
		     "(1024..1048576 bytes)");
}

static void test_address_errors(void **state)
{
	(void)state;
	assert_error(
		MINIMAL "sockets: [{name: a, listen: 'localhost:80'}]\n",
		"t.yaml:2:29: sockets[0].listen: invalid address 'localhost:80': host names are "
		"not resolved: use a numeric address like 127.0.0.1:8000");
	assert_error(
		MINIMAL "sockets:\n  - name: a\n    listen: 127.0.0.1:70000\n",
		"t.yaml:4:13: sockets[0].listen: invalid address '127.0.0.1:70000': expected a "
		"port 0..65535 after ':'");
	assert_error(MINIMAL "sockets: [{name: a, listen: ':1', mode: 0600}]\n",
		     "t.yaml:2:41: sockets[0].mode: applies to unix sockets only");
}

/* Checks across the file */

static void test_names(void **state)
{
	(void)state;
	assert_error(
		"mules: [{name: 'a b', exec: [m]}]\n",
		"t.yaml:1:16: mules[0].name: invalid name 'a b': use 1 to 32 letters, digits, '_' "
		"or '-'");
	assert_error(
		"daemons: [{name: abcdefghijabcdefghijabcdefghijabc, exec: [d]}]\n",
		"t.yaml:1:18: daemons[0].name: invalid name 'abcdefghijabcdefghijabcdefghijabc': "
		"use 1 to 32 letters, digits, '_' or '-'");
	assert_error("mules:\n  - {name: m, exec: [a]}\n  - {name: m, exec: [b]}\n",
		     "t.yaml:3:12: mules[1].name: duplicate mule name 'm' (first at 2:12)");
	assert_error("daemons:\n  - {name: d, exec: [a]}\n  - {name: d, exec: [b]}\n",
		     "t.yaml:3:12: daemons[1].name: duplicate daemon name 'd' (first at 2:12)");
	/* a mule and a daemon may share a name */
	config_free(load_ok("mules: [{name: x, exec: [a]}]\ndaemons: [{name: x, exec: [b]}]\n"));
}

static void test_duplicate_socket_name_and_address(void **state)
{
	(void)state;
	assert_error(MINIMAL "sockets:\n  - {name: a, listen: ':1'}\n  - {name: a, listen: ':2'}\n",
		     "t.yaml:4:12: sockets[1].name: duplicate socket name 'a' (first at 3:12)");
	assert_error(MINIMAL
		     "sockets:\n  - {name: a, listen: ':1'}\n  - {name: b, listen: 0.0.0.0:1}\n",
		     "t.yaml:4:23: sockets[1].listen: address '0.0.0.0:1' is already used by "
		     "socket 'a'");
	assert_error("sockets: [{name: a, listen: 'unix:/s'}]\n"
		     "gateways: [{http: {listen: 'unix:/s', to: a}}]\n",
		     "t.yaml:2:28: gateways[0].http.listen: address 'unix:/s' is already used by "
		     "socket 'a'");
}

static void test_socket_references(void **state)
{
	(void)state;
	assert_error(
		MINIMAL "sockets: [{name: http, listen: ':1'}]\n"
			"subscribe: [{server: 'unix:@s', key: k, socket: htp}]\n",
		"t.yaml:3:49: subscribe[0].socket: no socket named 'htp', did you mean 'http'?");
	assert_error("sockets: [{name: api, listen: ':1'}]\n"
		     "gateways: [{http: {listen: ':2', to: [api, web]}}]\n",
		     "t.yaml:2:44: gateways[0].http.to[1]: no socket named 'web'");
	assert_error("gateways: [{http: {listen: ':2', to: web}}]\n",
		     "t.yaml:1:38: gateways[0].http.to: no socket named 'web'");
}

static void test_gateway_shape(void **state)
{
	(void)state;
	assert_error("gateways: [{htp: {listen: ':1'}}]\n",
		     "t.yaml:1:13: gateways[0]: unknown gateway type 'htp', did you mean 'http'?");
	assert_error(
		"gateways: [{listen: ':1', to: a}]\n",
		"t.yaml:1:12: gateways[0]: expected a mapping with one key, like http: {listen: "
		"...}, got a mapping");
	assert_error("gateways: [{http: {listen: ':1'}}]\n",
		     "t.yaml:1:19: gateways[0].http: nowhere to route: give 'to' (socket names) or "
		     "'subscription-server'");
	assert_error(
		"gateways: [{http: {listen: ':1', subscription-server: 'unix:@r', "
		"subscribers: [no-such-user-xyz]}}]\n",
		"t.yaml:1:80: gateways[0].http.subscribers[0]: unknown user 'no-such-user-xyz'");
}

static void test_nothing_to_run(void **state)
{
	(void)state;
	assert_error(
		"sockets: [{name: a, listen: ':1'}]\nlog: x\n",
		"t.yaml:1:1: nothing to run: define workers, mules, spooler, daemons, gateways, "
		"emperor or crons");
	assert_error("mules: []\n", "t.yaml:1:1: nothing to run: define workers, mules, spooler, "
				    "daemons, gateways, emperor or crons");
}

/* The document */

static void test_empty_file(void **state)
{
	(void)state;
	assert_error("", "t.yaml:1:1: empty file: expected a mapping of vassal settings");
	assert_error("# only a comment\n\n",
		     "t.yaml:1:1: empty file: expected a mapping of vassal settings");
	assert_error("---\n", "t.yaml:1:1: empty file: expected a mapping of vassal settings");
}

static void test_top_level_not_a_mapping(void **state)
{
	(void)state;
	assert_error("- a\n- b\n", "t.yaml:1:1: expected a mapping of vassal settings, got a list");
	assert_error("hello\n", "t.yaml:1:1: expected a mapping of vassal settings, got 'hello'");
}

static void test_second_document(void **state)
{
	(void)state;
	assert_error(MINIMAL "---\nlog: x\n",
		     "t.yaml:2:1: a second document is not allowed (one vassal per file)");
}

static void test_alias_refused(void **state)
{
	(void)state;
	assert_error("workers: &w {exec: [w]}\nmules: [{name: m, exec: *w}]\n",
		     "t.yaml:2:25: aliases are not supported");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	assert_error(
		"workers:\n  exec: [w\n  count: 2\n",
		"t.yaml:3:8: did not find expected ',' or ']' (while parsing a flow sequence at "
		"2:9)");
	assert_error(
		"workers:\n  exec: [w]\n count: 2\n",
		"t.yaml:3:2: did not find expected key (while parsing a block mapping at 1:1)");
	assert_error(
		"a: \"unterminated\n",
		"t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at "
		"1:4)");
	assert_error(
		"workers: {exec: [w]}\n\tlog: x\n",
		"t.yaml:2:1: found character that cannot start any token (while scanning for the "
		"next token at 2:1)");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	assert_error("workers:\n  exec: [caf\xc3\xa9, x\xff]\n",
		     "t.yaml:2:17: invalid UTF-8: invalid leading UTF-8 octet (byte 0xFF)");
	assert_error(MINIMAL "log: \x01\n",
		     "t.yaml:2:6: control characters are not allowed (U+0001)");
}

static void test_nul_byte(void **state)
{
	(void)state;
	assert_error(MINIMAL "log: \"a\\0b\"\n", "t.yaml:2:6: NUL characters are not allowed");
}

/* Overflow: every numeric kind refuses a number past 2^64 with the value in the
 * message, instead of wrapping it into range (2e19 bytes used to be 1.5e18). */
static void test_numbers_never_wrap(void **state)
{
	(void)state;
	assert_error("gateways: [{http: {listen: ':1', subscription-server: 'unix:@r', "
		     "max-header-size: 20000000000000000000}}]\n",
		     "t.yaml:1:83: gateways[0].http.max-header-size: invalid size "
		     "'20000000000000000000': size too large (at most 9223372036854775807 bytes, "
		     "8E - 1)");
	assert_error(MINIMAL "cgroup: {memory-max: 20000000000000000000}\n",
		     "t.yaml:2:22: cgroup.memory-max: invalid size '20000000000000000000': size "
		     "too large (at most 9223372036854775807 bytes, 8E - 1)");
	assert_error(MINIMAL "limits: {as: 18446744073709551617K}\n",
		     "t.yaml:2:14: limits.as: invalid size '18446744073709551617K': size too "
		     "large (at most 9223372036854775807 bytes, 8E - 1)");
	assert_error(MINIMAL "limits: {nofile: 18446744073709551616}\n",
		     "t.yaml:2:18: limits.nofile: 18446744073709551616 is out of range "
		     "(0..9223372036854775806)");
	assert_error(MINIMAL "cgroup: {pids-max: 18446744073709551617}\n",
		     "t.yaml:2:20: cgroup.pids-max: 18446744073709551617 is out of range "
		     "(1..4194304)");
	assert_error(MINIMAL "sockets: [{name: a, listen: ':18446744073709559617'}]\n",
		     "t.yaml:2:29: sockets[0].listen: invalid address ':18446744073709559617': "
		     "expected a port 0..65535 after ':'");
	assert_error("workers: {exec: [w], stop-signal: 18446744073709551631}\n",
		     "t.yaml:1:35: workers.stop-signal: invalid signal '18446744073709551631': "
		     "expected a signal like TERM, HUP, KILL or a number 1..64");
	assert_error("workers: {exec: [w], reload-mercy: 99999999999999999999999h}\n",
		     "t.yaml:1:36: workers.reload-mercy: invalid duration "
		     "'99999999999999999999999h': duration too large (at most 1000000000s, about "
		     "31 years)");
	assert_error(MINIMAL "sockets: [{name: a, listen: 'unix:@a', mode: 01000000000000000000666}]\n",
		     "t.yaml:2:46: sockets[0].mode: '01000000000000000000666' is out of range "
		     "(0..07777)");
	assert_error(MINIMAL "umask: 01000000000000000000022\n",
		     "t.yaml:2:8: umask: '01000000000000000000022' is out of range (0..0777)");
	assert_error("gateways: [{http: {listen: ':1', subscription-server: 'unix:@r', "
		     "subscribers: [4294967296]}}]\n",
		     "t.yaml:1:80: gateways[0].http.subscribers[0]: 4294967296 is out of range "
		     "(0..4294967294)");
	assert_error(MINIMAL "cgroup: {cpu-max: 18446744073709551617 100000}\n",
		     "t.yaml:2:19: cgroup.cpu-max: expected \"max\" or \"QUOTA PERIOD\" in "
		     "microseconds, like \"50000 100000\", got '18446744073709551617 100000'");
	assert_error(MINIMAL "cgroup: {cpu-max: max 18446744073709551617}\n",
		     "t.yaml:2:19: cgroup.cpu-max: expected \"max\" or \"QUOTA PERIOD\" in "
		     "microseconds, like \"50000 100000\", got 'max 18446744073709551617'");
	config_free(load_ok(MINIMAL "cgroup: {cpu-max: max 100000}\n"));
	config_free(load_ok(MINIMAL "cgroup: {cpu-max: 17592186044415 1000000}\n"));
}

/* A file with n sockets on 127.0.0.1 ports 1.. (in flow style, one per line), then tail. */
static char *many_sockets(size_t n, const char *tail)
{
	char *yaml = malloc(64 + n * 64 + strlen(tail)), *p = yaml;

	assert_non_null(yaml);
	p += sprintf(p, MINIMAL "sockets:\n");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "  - {name: s%zu, listen: '127.0.0.1:%zu'}\n", i, i + 1);
	strcpy(p, tail);
	return yaml;
}

/* CONFIG_MAX_LISTEN_FDS: the item past it is named with its line and column. */
static void test_listen_fd_cap(void **state)
{
	char *yaml, want[256];
	struct config *cfg;

	(void)state;
	yaml = many_sockets(CONFIG_MAX_LISTEN_FDS, "");
	cfg = load_ok(yaml);
	assert_int_equal(cfg->n_sockets, CONFIG_MAX_LISTEN_FDS);
	config_free(cfg);
	free(yaml);
	yaml = many_sockets(CONFIG_MAX_LISTEN_FDS + 1, "");
	snprintf(want, sizeof want, "t.yaml:%d:5: sockets[%d]: too many listening sockets: "
		 "sockets, gateways and mule farms need %d, at most %d", CONFIG_MAX_LISTEN_FDS + 3,
		 CONFIG_MAX_LISTEN_FDS, CONFIG_MAX_LISTEN_FDS + 1, CONFIG_MAX_LISTEN_FDS);
	assert_error(yaml, want);
	free(yaml);
	/* the gateway's two sockets are what passes it */
	yaml = many_sockets(CONFIG_MAX_LISTEN_FDS - 1,
			    "gateways: [{http: {listen: ':1', subscription-server: 'unix:@r'}}]\n");
	snprintf(want, sizeof want, "t.yaml:%d:12: gateways[0]: too many listening sockets: "
		 "sockets, gateways and mule farms need %d, at most %d", CONFIG_MAX_LISTEN_FDS + 2,
		 CONFIG_MAX_LISTEN_FDS + 1, CONFIG_MAX_LISTEN_FDS);
	assert_error(yaml, want);
	free(yaml);
	yaml = many_sockets(CONFIG_MAX_LISTEN_FDS - 1,
			    "mules: [{name: a, exec: [m]}, {name: b, exec: [m]}]\n");
	snprintf(want, sizeof want, "t.yaml:%d:31: mules[1]: too many listening sockets: "
		 "sockets, gateways and mule farms need %d, at most %d", CONFIG_MAX_LISTEN_FDS + 2,
		 CONFIG_MAX_LISTEN_FDS + 1, CONFIG_MAX_LISTEN_FDS);
	assert_error(yaml, want);
	free(yaml);
}

/* limits.nofile must hold the sockets a worker gets on fds 3.. and some of its own. */
static void test_nofile_below_sockets(void **state)
{
	char *yaml;

	(void)state;
	yaml = many_sockets(100, "limits: {nofile: 150}\n");
	assert_error(yaml, "t.yaml:103:18: limits.nofile: 150 is too low for 100 sockets: a "
			   "worker gets them on fds 3..102 and needs room of its own; at least 164");
	free(yaml);
	yaml = many_sockets(100, "limits: {nofile: 164}\n");
	config_free(load_ok(yaml));
	free(yaml);
}

/* One node past CONFIG_MAX_NODES: the item on its own line is where the message points. */
static void test_too_many_nodes(void **state)
{
	/* root, workers, {}, exec, [], ./w, touch-reload, [] = 8 nodes, then one per item */
	size_t items = CONFIG_MAX_NODES - 8 + 1, i, len = 0;
	char *yaml = malloc(64 + items * 4);
	char want[128];

	(void)state;
	assert_non_null(yaml);
	len += (size_t)sprintf(yaml, MINIMAL "touch-reload:\n");
	for (i = 0; i < items; i++)
		len += (size_t)sprintf(yaml + len, "- a\n");
	snprintf(want, sizeof want,
		 "t.yaml:%zu:3: document too large or alias bomb (more than %d nodes)", items + 2,
		 CONFIG_MAX_NODES);
	assert_refused(yaml, len, want);
	/* one item fewer fits exactly */
	len -= 4;
	config_free(load_ok((yaml[len] = '\0', yaml)));
	free(yaml);
}

static void test_buffer_too_large(void **state)
{
	size_t len = CONFIG_MAX_FILE_SIZE + 1;
	char *yaml = malloc(len);

	(void)state;
	assert_non_null(yaml);
	memset(yaml, '#', len);
	assert_refused(yaml, len,
		       "t.yaml:1:1: file too large: 1048577 bytes (the limit is 1048576)");
	free(yaml);
}

static void test_errs_null_and_reset(void **state)
{
	struct config_errors errs = { (char **)0x1, 42 }; /* garbage: the loader initializes it */
	struct config *cfg;

	(void)state;
	assert_null(config_load_buffer("t.yaml", "x: 1\n", 5, NULL));
	cfg = load(MINIMAL, &errs);
	assert_non_null(cfg);
	assert_int_equal(errs.n, 0);
	assert_null(errs.msgs);
	config_free(cfg);
	config_free(NULL);
}

/* Real files */

static void test_file_loads(void **state)
{
	const char *dir = *state;
	const char *path = write_file(dir, "hello.yaml", design_example, strlen(design_example));
	struct config_errors errs;
	struct config *cfg = config_load_file(path, &errs);

	assert_non_null(cfg);
	assert_string_equal(cfg->name, "hello");
	assert_string_equal(cfg->path, path);
	assert_int_equal(cfg->workers.count, 4);
	config_free(cfg);
	unlink(path);
}

static void test_file_errors_name_the_path(void **state)
{
	const char *dir = *state;
	const char *path = write_file(dir, "bad.yml", "wokers: {}\n", 11);
	struct config_errors errs;
	char want[512];

	assert_null(config_load_file(path, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof want, "%s:1:1: unknown key 'wokers', did you mean 'workers'?", path);
	assert_string_equal(errs.msgs[0], want);
	config_errors_fini(&errs);
	unlink(path);
}

static void test_file_cannot_open(void **state)
{
	struct config_errors errs;
	char path[512];

	snprintf(path, sizeof path, "%s/absent.yaml", (const char *)*state);
	assert_null(config_load_file(path, &errs));
	assert_int_equal(errs.n, 1);
	assert_true(strncmp(errs.msgs[0], path, strlen(path)) == 0);
	assert_string_equal(errs.msgs[0] + strlen(path),
			    ": cannot open: No such file or directory");
	config_errors_fini(&errs);
}

static void test_file_size_limit(void **state)
{
	const char *dir = *state;
	size_t len = CONFIG_MAX_FILE_SIZE;
	char *content = malloc(len + 1);
	struct config_errors errs;
	struct config *cfg;
	const char *path;
	char want[512];

	assert_non_null(content);
	memset(content, '#', len + 1);
	memcpy(content, MINIMAL, strlen(MINIMAL));
	/* exactly the limit loads */
	path = write_file(dir, "big.yaml", content, len);
	cfg = config_load_file(path, &errs);
	assert_non_null(cfg);
	config_free(cfg);
	/* one byte more is refused before reading */
	path = write_file(dir, "big.yaml", content, len + 1);
	assert_null(config_load_file(path, &errs));
	snprintf(want, sizeof want, "%s:1:1: file too large: 1048577 bytes (the limit is 1048576)",
		 path);
	assert_string_equal(errs.msgs[0], want);
	config_errors_fini(&errs);
	unlink(path);
	free(content);
}

/* Hostile input (issue 8): what tests/fuzz/ found, kept as regressions (its input is
 * also in tests/fuzz/regressions/fuzz_config/). */

/* A value quoted in a message may hold a newline (a plain scalar with empty lines, a
 * quoted "\n") or any control character: every message stays one line of the log. */
static void test_messages_are_one_line(void **state)
{
	(void)state;
	assert_error("WW\n\n\n_", "t.yaml:1:1: expected a mapping of vassal settings, got 'WW\\n\\n_'");
	assert_error("workers: {exec: [./w], count: \"1\\n2\\t\\x01\"}\n",
		     "t.yaml:1:31: workers.count: expected an integer, got '1\\n2\\t\\x01'");
	assert_error("workers: {exec: [./w], ready: \"a\\u0085b\\u00e9\"}\n",
		     "t.yaml:1:31: workers.ready: expected exec or notify, got 'a\\xC2\\x85b\xc3\xa9'");
}

static void assert_name(const char *path, const char *want)
{
	char *name = config_vassal_name(path);

	assert_non_null(name);
	assert_string_equal(name, want);
	free(name);
}

/* A file name may hold any byte but '/' and NUL: the vassal name shown in every log
 * line escapes control characters and bytes that are not UTF-8. */
static void test_vassal_name_printable(void **state)
{
	struct config_errors errs;
	struct config *cfg;

	(void)state;
	assert_name("vassals.d/hello.yaml", "hello");
	assert_name("with space.yml", "with space");
	assert_name("d/new\nline.yaml", "new\\nline");
	assert_name("tab\tcr\r.yaml", "tab\\tcr\\r");
	assert_name("bad\xff\xfe.yaml", "bad\\xFF\\xFE");
	assert_name("caf\xc3\xa9.yaml", "caf\xc3\xa9");            /* UTF-8 is kept */
	assert_name("c1\xc2\x85.yaml", "c1\\xC2\\x85");             /* U+0085, a control */
	assert_name("long\xc0\xaf.yaml", "long\\xC0\\xAF");         /* overlong '/' */
	assert_name("half\xed\xa0\x80.yaml", "half\\xED\\xA0\\x80"); /* a UTF-16 surrogate */
	assert_name("cut\xe2\x82.yaml", "cut\\xE2\\x82");           /* a sequence cut short */
	assert_name("del\x7f.yaml", "del\\x7F");
	cfg = config_load_buffer("d/new\nline.yaml", MINIMAL, strlen(MINIMAL), &errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->name, "new\\nline");
	config_free(cfg);
	assert_null(config_load_buffer("d/new\nline.yaml", "workers: 1\n", 11, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "d/new\\nline.yaml:1:10: workers: expected a mapping, "
					  "got '1'");
	config_errors_fini(&errs);
}

/* A FIFO is refused without waiting for a writer (the emperor would block in open),
 * and a directory with its reason. */
static void test_file_not_regular(void **state)
{
	const char *dir = *state;
	struct config_errors errs;
	char path[512];

	snprintf(path, sizeof path, "%s/fifo.yaml", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(config_load_file(path, &errs));
	assert_int_equal(errs.n, 1);
	assert_true(strncmp(errs.msgs[0], path, strlen(path)) == 0);
	assert_string_equal(errs.msgs[0] + strlen(path), ": not a regular file: a FIFO");
	config_errors_fini(&errs);
	assert_int_equal(unlink(path), 0);

	snprintf(path, sizeof path, "%s/dir.yaml", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(config_load_file(path, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0] + strlen(path), ": not a regular file: a directory");
	config_errors_fini(&errs);
	assert_int_equal(rmdir(path), 0);
}

/* Every example vassal shipped loads: vassals.d/ (what `make run` starts) and
 * docs/examples/; one of vassals.d's shows JSON logs (log: format: json). Read from
 * the repository root, where `make test` runs the tests. */
static void test_shipped_examples_load(void **state)
{
	static const char *const dirs[] = { "vassals.d", "docs/examples" };
	int n = 0, n_json = 0;

	(void)state;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		if (!d)
			fail_msg("%s: %s (run the tests from the repository root)", dirs[i], strerror(errno));
		while ((de = readdir(d))) {
			size_t len = strlen(de->d_name);
			struct config_errors errs = { 0 };
			struct config *cfg;
			char path[PATH_MAX];
			if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
				continue;
			snprintf(path, sizeof path, "%s/%s", dirs[i], de->d_name);
			if (!(cfg = config_load_file(path, &errs)))
				fail_msg("%s", errs.n ? errs.msgs[0] : path);
			n_json += i == 0 && cfg->log.format == CFG_LOG_JSON;
			n++;
			config_free(cfg);
		}
		closedir(d);
	}
	assert_true(n >= 9);
	assert_int_equal(n_json, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example_fields),
		cmocka_unit_test(test_design_example_defaults),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_every_key_set),
		cmocka_unit_test(test_log_format),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_on_demand_and_idle),
		cmocka_unit_test(test_shipped_examples_load),
		cmocka_unit_test(test_octal_mode_and_umask),
		cmocka_unit_test(test_limits_and_cgroup),
		cmocka_unit_test(test_string_or_list),
		cmocka_unit_test(test_vassal_name_from_path),
		cmocka_unit_test(test_something_to_run_each_kind),
		cmocka_unit_test(test_env_expansion),
		cmocka_unit_test(test_env_unset_variable),
		cmocka_unit_test(test_env_unterminated_and_invalid),
		cmocka_unit_test(test_env_not_expanded_in_keys),
		cmocka_unit_test(test_unknown_key_did_you_mean),
		cmocka_unit_test(test_unknown_key_without_suggestion),
		cmocka_unit_test(test_several_errors_collected),
		cmocka_unit_test(test_error_count_is_capped),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_missing_required_key),
		cmocka_unit_test(test_expected_mapping),
		cmocka_unit_test(test_expected_list_of_strings),
		cmocka_unit_test(test_expected_integer),
		cmocka_unit_test(test_empty_value),
		cmocka_unit_test(test_env_mapping_errors),
		cmocka_unit_test(test_count_ranges),
		cmocka_unit_test(test_backlog_and_weight_ranges),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_zero_mercy_allowed),
		cmocka_unit_test(test_workers_preload),
		cmocka_unit_test(test_signal_size_enum_errors),
		cmocka_unit_test(test_address_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_duplicate_socket_name_and_address),
		cmocka_unit_test(test_socket_references),
		cmocka_unit_test(test_gateway_shape),
		cmocka_unit_test(test_nothing_to_run),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_top_level_not_a_mapping),
		cmocka_unit_test(test_second_document),
		cmocka_unit_test(test_alias_refused),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_too_many_nodes),
		cmocka_unit_test(test_buffer_too_large),
		cmocka_unit_test(test_errs_null_and_reset),
		cmocka_unit_test_setup_teardown(test_file_loads, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_env_file, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_file_errors_name_the_path, make_dir,
						remove_dir),
		cmocka_unit_test_setup_teardown(test_file_cannot_open, make_dir, remove_dir),
		cmocka_unit_test_setup_teardown(test_file_size_limit, make_dir, remove_dir),
		cmocka_unit_test(test_messages_are_one_line),
		cmocka_unit_test(test_numbers_never_wrap),
		cmocka_unit_test(test_listen_fd_cap),
		cmocka_unit_test(test_nofile_below_sockets),
		cmocka_unit_test(test_vassal_name_printable),
		cmocka_unit_test_setup_teardown(test_file_not_regular, make_dir, remove_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
