/* test_config_legion.c — the config keys of issue 16 (legions, crons, hooks, and
 * `legion:` on daemons and subscribe entries): values and defaults as loaded, and
 * each mistake refused with file:line:col and what is wrong. Kept apart from
 * test_config.c so the two grow without touching each other. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *const full =
	"sockets: [{name: http, listen: '127.0.0.1:8001'}]\n"
	"legions:\n"
	"  - name: billing\n"
	"    valor: 10\n"
	"    ttl: 3s\n"
	"    etcd: [http://127.0.0.1:2379]\n"
	"  - name: other\n"
	"daemons:\n"
	"  - {name: invoicer, exec: [./invoicer], legion: billing}\n"
	"  - {name: always, exec: [./always]}\n"
	"crons:\n"
	"  - {name: nightly, schedule: '30 2 * * *', exec: [./report], legion: billing}\n"
	"  - {name: often, every: 5m, exec: [./often]}\n"
	"hooks:\n"
	"  on-lord: [./promote.sh]\n"
	"  on-unlord: [./demote.sh, now]\n"
	"subscribe:\n"
	"  - {server: 'unix:./run/router.sock', key: billing.localhost, socket: http, legion: billing}\n";

static struct config *load(const char *yaml, struct config_errors *errs)
{
	return config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static void assert_error(const char *yaml, const char *want)
{
	struct config_errors errs;
	struct config *cfg = load(yaml, &errs);

	if (cfg) {
		config_free(cfg);
		fail_msg("accepted, expected: %s\n--- for:\n%s", want, yaml);
	}
	assert_true(errs.n >= 1);
	if (strcmp(errs.msgs[0], want) != 0)
		fail_msg("got '%s', expected '%s'", errs.msgs[0], want);
	config_errors_fini(&errs);
}

static void test_values_and_defaults(void **state)
{
	struct config_errors errs;
	struct config *cfg = load(full, &errs);

	(void)state;
	if (!cfg)
		fail_msg("refused: %s", errs.msgs[0]);
	assert_int_equal(cfg->n_legions, 2);
	assert_string_equal(cfg->legions[0].name, "billing");
	assert_int_equal(cfg->legions[0].valor, 10);
	assert_true(cfg->legions[0].ttl == 3);
	assert_string_equal(cfg->legions[0].etcd[0], "http://127.0.0.1:2379");
	assert_null(cfg->legions[0].etcd[1]);
	assert_int_equal(cfg->legions[1].valor, 0);      /* defaults */
	assert_true(cfg->legions[1].ttl == 10);
	assert_null(cfg->legions[1].etcd[0]);
	assert_string_equal(cfg->daemons[0].legion, "billing");
	assert_null(cfg->daemons[1].legion);
	assert_int_equal(cfg->n_crons, 2);
	assert_string_equal(cfg->crons[0].schedule, "30 2 * * *");
	assert_true(cfg->crons[0].every == 0);
	assert_string_equal(cfg->crons[0].legion, "billing");
	assert_true(cfg->crons[0].prog.reload_mercy == 10);
	assert_null(cfg->crons[1].schedule);
	assert_true(cfg->crons[1].every == 300);
	assert_string_equal(cfg->hooks.on_lord[0], "./promote.sh");
	assert_string_equal(cfg->hooks.on_unlord[1], "now");
	assert_string_equal(cfg->subscribe[0].legion, "billing");
	config_free(cfg);
}

static void test_crons_alone_are_something_to_run(void **state)
{
	struct config *cfg = load("crons: [{name: c, every: 1s, exec: [true]}]\n", NULL);

	(void)state;
	assert_non_null(cfg);
	assert_null(cfg->hooks.on_lord);
	config_free(cfg);
}

static void test_mistakes(void **state)
{
	(void)state;
	assert_error("legions: [{name: b}]\ndaemons: [{name: d, exec: [d], legion: billing}]\n",
		     "t.yaml:2:40: daemons[0].legion: no legion named 'billing' in legions:");
	assert_error("legions: [{name: billing}]\ndaemons: [{name: d, exec: [d], legion: biling}]\n",
		     "t.yaml:2:40: daemons[0].legion: no legion named 'biling' in legions:, did you "
		     "mean 'billing'?");
	assert_error("crons: [{name: c, every: 1s, exec: [true], legion: x}]\n",
		     "t.yaml:1:52: crons[0].legion: no legion named 'x' in legions:");
	assert_error("crons: [{name: c, schedule: '61 * * * *', exec: [true]}]\n",
		     "t.yaml:1:29: crons[0].schedule: minute: '61' is out of 0..59");
	assert_error("crons: [{name: c, schedule: '0 0 31 2 *', exec: [true]}]\n",
		     "t.yaml:1:29: crons[0].schedule: '0 0 31 2 *' never runs (no such day)");
	assert_error("crons: [{name: c, exec: [true]}]\n",
		     "t.yaml:1:9: crons[0]: give 'schedule' (cron fields) or 'every' (a duration of 1s "
		     "or more)");
	assert_error("crons: [{name: c, every: 1m, schedule: '@daily', exec: [true]}]\n",
		     "t.yaml:1:9: crons[0]: give 'schedule' or 'every', not both");
	assert_error("crons: [{name: c, every: 100ms, exec: [true]}]\n",
		     "t.yaml:1:26: crons[0]: 'every' must be 1s or more, got 0.1s");
	assert_error("legions: [{name: b, ttl: 1s}]\ncrons: [{name: c, every: 1s, exec: [true]}]\n",
		     "t.yaml:1:26: legions[0].ttl: '1s' is out of range (2s..1h)");
	assert_error("legions: [{name: b}, {name: b}]\ncrons: [{name: c, every: 1s, exec: [true]}]\n",
		     "t.yaml:1:29: legions[1].name: duplicate legion name 'b' (first at 1:18)");
	assert_error("crons: [{name: c, every: 1s, exec: [true]}]\nhooks: {on-lord: []}\n",
		     "t.yaml:2:18: hooks.on-lord: expected a non-empty list of strings (program and arguments), got an empty list");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_and_defaults),
		cmocka_unit_test(test_crons_alone_are_something_to_run),
		cmocka_unit_test(test_mistakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
