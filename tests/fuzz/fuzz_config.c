/* fuzz_config.c — libFuzzer target: the vassal-file loader, config_load_buffer(), on
 * any bytes. Beyond "no crash, no leak, no undefined behaviour" it checks the loader's
 * contract: a config comes back exactly when no error does, and every error is one
 * line of text that starts with the file name (the emperor logs it as it is). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME "fuzz.yaml"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	setenv("FUZZ_SET", "value", 1); /* for ${FUZZ_SET}; ${FUZZ_UNSET} stays unset */
	setenv("FUZZ_EMPTY", "", 1);
	unsetenv("FUZZ_UNSET");
	return 0;
}

static void check_message(const char *msg)
{
	if (strncmp(msg, NAME, strlen(NAME)) != 0) {
		fprintf(stderr, "error without the file name: \"%s\"\n", msg);
		abort();
	}
	for (const char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "control byte 0x%02x in an error: \"%s\"\n",
				(unsigned char)*p, msg);
			abort();
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs;
	struct config *cfg = config_load_buffer(NAME, (const char *)data, size, &errs);

	if (!cfg == !errs.n) {
		fprintf(stderr, "config %p with %zu errors\n", (void *)cfg, errs.n);
		abort();
	}
	for (size_t i = 0; i < errs.n; i++)
		check_message(errs.msgs[i]);
	if (cfg && strcmp(cfg->name, "fuzz") != 0)
		abort();
	config_free(cfg);
	config_errors_fini(&errs);
	return 0;
}
