/* fuzz_spool.c — libFuzzer target: the spool task parser, spool_parse(), on any bytes
 * (a task file is written by anyone who can write the spool directory). Checks beyond
 * memory safety: a refusal says why; an accepted task's body lies inside the text,
 * its values are in range, and keys[] and env[] pair up as "key=v" / "SPOOL_KEY=v". */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pair(const char *key, const char *env)
{
	const char *eq = strchr(key, '=');
	size_t klen = eq ? (size_t)(eq - key) : 0;

	if (!eq || klen == 0 || strncmp(env, "SPOOL_", 6) != 0 || strlen(env) != strlen(key) + 6)
		abort();
	for (size_t i = 0; i < klen; i++)
		if (toupper((unsigned char)key[i]) != env[6 + i] ||
		    !(isalnum((unsigned char)key[i]) || key[i] == '_'))
			abort();
	if (strcmp(eq, env + 6 + klen) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct spool_task t;
	char why[256] = "";
	size_t i;

	if (spool_parse(text, size, &t, why, sizeof why) < 0) {
		if (!why[0] || t.env || t.keys)
			abort();
		return 0;
	}
	if (t.body < text || t.body > text + size || t.body + t.body_len != text + size)
		abort();
	if (!(t.at >= 0 && t.at <= SPOOL_MAX_AT) || t.attempts < 0 || t.priority < -1000000 ||
	    t.priority > 1000000)
		abort();
	for (i = 0; t.keys[i] && t.env[i]; i++)
		check_pair(t.keys[i], t.env[i]);
	if (t.keys[i] || t.env[i])
		abort();
	spool_task_fini(&t);
	return 0;
}
