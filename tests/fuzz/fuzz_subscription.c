/* fuzz_subscription.c — libFuzzer target: the subscription datagram parser,
 * sub_parse(), on any bytes (the router reads them from a socket any allowed uid can
 * write to). The datagram is NUL-terminated as the router does. Checks beyond memory
 * safety: a refusal says why; an accepted packet gives a lowercase printable key and
 * a weight in 1..1000, and formatting it back with sub_format() parses to the same. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subscription.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(int cmd, const char *key, const struct cfg_addr *addr, int weight)
{
	char buf[1024], key2[256];
	struct cfg_addr addr2;
	const char *why;
	int weight2, cmd2;

	sub_format(buf, sizeof buf, cmd == 1, key, addr->text, weight);
	cmd2 = sub_parse(buf, key2, sizeof key2, &addr2, &weight2, &why);
	if (cmd2 != cmd || strcmp(key, key2) != 0 || weight2 != weight ||
	    strcmp(addr->text, addr2.text) != 0 || addr->len != addr2.len ||
	    memcmp(&addr->ss, &addr2.ss, addr->len) != 0) {
		fprintf(stderr, "round trip of \"%s\" gave %d \"%s\" (%s)\n", buf, cmd2, key2,
			why ? why : "");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size + 1), key[256];
	struct cfg_addr addr;
	const char *why = NULL;
	int weight = 0, cmd;

	if (!msg)
		return 0;
	memcpy(msg, data, size);
	msg[size] = '\0';
	cmd = sub_parse(msg, key, sizeof key, &addr, &weight, &why);
	if (cmd < 0) {
		if (cmd != -1 || !why || !*why)
			abort();
		free(msg);
		return 0;
	}
	if (cmd > 1 || !key[0] || weight < 1 || weight > 1000)
		abort();
	for (const char *p = key; *p; p++)
		if (!isgraph((unsigned char)*p) || isupper((unsigned char)*p))
			abort();
	check_round_trip(cmd, key, &addr, weight);
	free(msg);
	return 0;
}
