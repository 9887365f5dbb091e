/* main.c — the vassal command line: run one vassal (`vassal FILE`), check files
 * (`vassal --check FILE...`), --help, --version. */
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
	log_init("vassal");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("vassal (emperor) %s\n", EMPEROR_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--check") == 0)
		return check_files(argc - 2, argv + 2);
	if (strcmp(argv[1], "spool") == 0)
		return spool_cli(argc - 2, argv + 2);
	if (argv[1][0] == '-' || argc > 2) {
		fprintf(stderr, "vassal: unexpected argument '%s'\n", argv[argc > 2 ? 2 : 1]);
		usage(stderr);
		return 2;
	}
	/* A missing or unreadable file is a bad config (docs/config.md): 78, and the
	 * emperor waits for the file to change. A re-exec reads the config its previous
	 * image validated (VASSAL_CONFIG_FD), so only a first start checks. */
	if (!getenv("VASSAL_CONFIG_FD") && access(argv[1], R_OK) < 0) {
		log_errno("%s: cannot read the vassal file, not starting (exit %d)", argv[1],
			  MASTER_EX_CONFIG);
		return MASTER_EX_CONFIG;
	}
	return master_main(argv[1]);
}
