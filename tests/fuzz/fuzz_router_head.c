/* fuzz_router_head.c — libFuzzer target: the HTTP router's request-head handling, as
 * the router runs it on what a client sent: http_head_parse() (the end of the head,
 * http-parser, the Host header), http_head_rewrite() (X-Forwarded-* added) and the
 * node table's lookup by that Host. Checks beyond memory safety: the head ends where
 * an empty line does; the rewritten head is what a backend parses as the same request
 * (same Host, nothing before or after it), so what was routed is what is served. */
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"
#include "subscription.h"
#include "log.h"
#include "parse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sub_table table;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const keys[] = { "app.example.com", "*.example.com", "[::1]", "" };
	struct cfg_addr addr;
	const char *why;

	(void)argc, (void)argv;
	log_set_fd(-1); /* the table logs every node it adds */
	sub_table_init(&table, CFG_BALANCE_ROUND_ROBIN, "fuzz");
	if (parse_addr("127.0.0.1:8001", &addr, &why) < 0)
		abort();
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		sub_table_add(&table, keys[i], &addr, 1, 0);
	return 0;
}

static void check_head_end(const char *buf, size_t len)
{
	if (len < 2 || buf[len - 1] != '\n' ||
	    (buf[len - 2] != '\n' && !(len >= 3 && buf[len - 2] == '\r' && buf[len - 3] == '\n'))) {
		fprintf(stderr, "a head of %zu bytes that does not end with an empty line\n", len);
		abort();
	}
}

/* What a backend makes of the rewritten head: the same request. */
static void check_rewritten(const struct http_head *h, const char *out, size_t out_len)
{
	struct http_head again;
	http_parser p;

	if (http_head_parse(&p, out, out_len, &again) < 0 || again.len != out_len ||
	    strcmp(again.host, h->host) != 0 || again.head_only != h->head_only ||
	    again.complete != h->complete) {
		fprintf(stderr, "the rewritten head (%zu bytes, host \"%s\") is another request "
				"(%zu bytes, host \"%s\")\n", out_len, h->host, again.len, again.host);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_head h;
	http_parser p;
	size_t out_len;
	char *out;
	int rc = http_head_parse(&p, buf, size, &h);

	if (h.len > size || memchr(h.host, '\0', sizeof h.host) == NULL)
		abort();
	if (!h.len || rc < 0)
		return 0;
	check_head_end(buf, h.len);
	out = http_head_rewrite(&h, buf, "192.0.2.1", &out_len);
	if (!out)
		abort();
	if (out_len < 4 || memcmp(out + out_len - 4, "\r\n\r\n", 4) != 0)
		abort();
	check_rewritten(&h, out, out_len);
	sub_table_lookup(&table, h.host);
	free(out);
	return 0;
}
