/* main.c — the vassal command line: run one vassal (`vassal FILE`), check files
 * (`vassal --check FILE...`), enqueue a spool task (`vassal spool ...`), --help,
 * --version. Options by getopt_long: `--opt=value` and options anywhere on the line. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "spool.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vassal FILE              run the vassal described by FILE (foreground)\n"
		"       vassal --check FILE...   validate files: 'FILE: ok' or the errors; exit 0 or 78\n"
		"       vassal spool DIR [--at TIME|+DURATION] [--priority N] [--body FILE|-] key=value...\n"
		"                                enqueue a spooler task; prints its id\n"
		"       vassal --help | --version\n"
		"\n"
		"Signals: HUP graceful reload, USR2 chain reload, TERM graceful stop,\n"
		"INT/QUIT immediate stop, USR1 status lines in the log. See docs/config.md.\n");
}

static int check_files(int argc, char **argv)
{
	int rc = 0;

	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		struct config_errors errs = { 0 };
		struct config *cfg = config_load_file(argv[i], &errs);
		if (cfg)
			printf("%s: ok\n", argv[i]);
		for (size_t k = 0; k < errs.n; k++)
			fprintf(stderr, "%s\n", errs.msgs[k]);
		if (!cfg)
			rc = MASTER_EX_CONFIG;
		config_free(cfg);
		config_errors_fini(&errs);
	}
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_CHECK = 1, O_VERSION };
	static const struct option longopts[] = {
		{ "check", no_argument, NULL, O_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	bool check = false;
	int opt;

	log_init("vassal");
	if (argc >= 2 && strcmp(argv[1], "spool") == 0) /* its own options */
		return spool_cli(argc - 2, argv + 2);
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case O_CHECK: check = true; break;
		case 'h': usage(stdout); return 0;
		case O_VERSION: printf("vassal (emperor) %s\n", EMPEROR_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (check)
		return check_files(argc - optind, argv + optind);
	if (argc - optind != 1) {
		if (argc - optind > 1)
			fprintf(stderr, "vassal: unexpected argument '%s'\n", argv[optind + 1]);
		usage(stderr);
		return 2;
	}
	/* A missing or unreadable file is a bad config (docs/config.md): 78, and the
	 * emperor waits for the file to change. A re-exec reads the config its previous
	 * image validated (VASSAL_CONFIG_FD), so only a first start checks. */
	if (!getenv("VASSAL_CONFIG_FD") && access(argv[optind], R_OK) < 0) {
		log_errno("%s: cannot read the vassal file, not starting (exit %d)", argv[optind],
			  MASTER_EX_CONFIG);
		return MASTER_EX_CONFIG;
	}
	return master_main(argv[optind]);
}
