/* test_router.c — unit tests of the router's request-head handling (vassal/http_head.c,
 * the part that reads what a client sent before any socket is involved):
 * http_head_parse() finds the end of the head, parses it with http-parser and takes
 * the Host; http_head_rewrite() adds the X-Forwarded-* headers. The refusals at the
 * end are what tests/fuzz/fuzz_router_head found (tests/fuzz/regressions/): heads the
 * parser would end elsewhere than the empty line, so the router would route one
 * request and the backend read another. The router's sockets are tested for real in
 * tests/integration/test_gateway.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

static int parse(const char *text, http_parser *p, struct http_head *h)
{
	return http_head_parse(p, text, strlen(text), h);
}

/* The reason a malformed head is refused with (the 400's body) holds want. */
static void assert_refused_for(const char *text, const char *want)
{
	struct http_head h;
	http_parser p;

	if (parse(text, &p, &h) != -1)
		fail_msg("accepted: \"%s\"", text);
	assert_non_null(h.why);
	if (!strstr(h.why, want))
		fail_msg("\"%s\": refused for \"%s\", expected \"%s\"", text, h.why, want);
}

/* text must be a whole head (nothing after it) and a well-formed one. */
static void assert_head(const char *text, const char *host, bool complete)
{
	struct http_head h;
	http_parser p;

	assert_int_equal(parse(text, &p, &h), 0);
	assert_int_equal(h.len, strlen(text));
	assert_string_equal(h.host, host);
	assert_int_equal(h.complete, complete);
	assert_null(p.data);
}

static void assert_malformed(const char *text)
{
	struct http_head h;
	http_parser p;

	if (parse(text, &p, &h) != -1)
		fail_msg("accepted: \"%s\"", text);
	assert_true(h.len > 0); /* a whole head: answered 400, not 431 */
}

static void test_incomplete_head_waits(void **state)
{
	struct http_head h;
	http_parser p;

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &p, &h), 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n\r", &p, &h), 0);
	assert_int_equal(h.len, 0);
	assert_int_equal(http_head_parse(&p, "", 0, &h), 0);
	assert_int_equal(h.len, 0);
}

static void test_heads(void **state)
{
	struct http_head h;
	http_parser p;

	(void)state;
	assert_head("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", "app.example.com", true);
	assert_head("GET / HTTP/1.1\r\nhOsT:  [::1]:8080 \r\n\r\n", "[::1]:8080", true);
	assert_head("GET / HTTP/1.0\nHost: lf.only\n\n", "lf.only", true);
	assert_head("GET / HTTP/1.0\r\nX-Host: no\r\n\r\n", "", true); /* 1.0: Host optional */
	assert_head("GET / HTTP/1.1\r\nHost:\r\n\r\n", "", true); /* empty: the default key */
	assert_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "a", false);
	assert_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "a", false);

	assert_int_equal(parse("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &p, &h), 0);
	assert_true(h.head_only && h.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nHost: a\r\n\r\n", &p, &h), 0);
	assert_false(h.head_only || h.keep_alive);
	assert_int_equal(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\n\r\n", &p, &h), 0);
	assert_false(h.keep_alive);
	assert_true(p.upgrade);
}

/* The head ends at the first empty line; what follows (a body, the next pipelined
 * request) is left to the parser the head was parsed with. */
static int body_done;

static int count_done(http_parser *p)
{
	(void)p;
	body_done++;
	return 0;
}

static void test_body_parsed_on(void **state)
{
	static const char req[] = "POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
	const http_parser_settings settings = { .on_message_complete = count_done };
	struct http_head h;
	http_parser p;

	(void)state;
	assert_int_equal(parse(req, &p, &h), 0);
	assert_int_equal(h.len, strlen(req) - strlen("helloGET"));
	assert_false(h.complete);
	assert_int_equal(p.method, HTTP_POST);
	body_done = 0;
	assert_int_equal(http_parser_execute(&p, &settings, req + h.len, 5), 5);
	assert_int_equal(body_done, 1);
}

static void test_too_long_host_is_none(void **state)
{
	char text[600];

	(void)state;
	snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: %0300d\r\n\r\n", 7);
	assert_head(text, "", true);
}

/* The head as the backend gets it from the router. */
static void assert_rewritten(const char *text, const char *peer, const char *want)
{
	struct http_head h;
	http_parser p;
	size_t len;
	char *out;

	assert_int_equal(parse(text, &p, &h), 0);
	out = http_head_rewrite(&h, text, peer, &len);
	assert_non_null(out);
	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fail_msg("\"%s\" became \"%.*s\", expected \"%s\"", text, (int)len, out, want);
	free(out);
}

static void test_rewrite(void **state)
{
	(void)state;
	assert_rewritten("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "192.0.2.1",
			 "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\n"
			 "X-Forwarded-Proto: http\r\n\r\n");
	assert_rewritten("GET / HTTP/1.1\nHost: a\n\n", "2001:db8::1",
			 "GET / HTTP/1.1\nHost: a\nX-Forwarded-For: 2001:db8::1\r\n"
			 "X-Forwarded-Proto: http\r\n\r\n");
}

/* An absolute-form request goes to the backend in origin form with the Host of its
 * target (the client's Host dropped): what routed it is what the backend serves. */
static void test_rewrite_absolute_form(void **state)
{
	(void)state;
	assert_rewritten("GET http://app.example:81/p?q=1 HTTP/1.1\r\nA: 1\r\nHost: other\r\nB: 2\r\n\r\n",
			 "192.0.2.1", "GET /p?q=1 HTTP/1.1\r\nA: 1\r\nB: 2\r\nHost: app.example:81\r\n"
			 "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\n\r\n");
	assert_rewritten("GET http://app.example HTTP/1.1\r\nHost: other\r\n\r\n", "p",
			 "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: p\r\n"
			 "X-Forwarded-Proto: http\r\n\r\n");
	assert_rewritten("GET http://app.example?x HTTP/1.0\r\n\r\n", "p",
			 "GET /?x HTTP/1.0\r\nHost: app.example\r\nX-Forwarded-For: p\r\n"
			 "X-Forwarded-Proto: http\r\n\r\n");
	assert_rewritten("GET http://[::1]:8/ HTTP/1.1\nHost: x\n\n", "p",
			 "GET / HTTP/1.1\nHost: [::1]:8\r\nX-Forwarded-For: p\r\n"
			 "X-Forwarded-Proto: http\r\n\r\n");
}

/* Found by the fuzzer: http-parser (lenient) ends the headers at a bare CR followed by
 * any byte, which it eats as the LF; the bytes up to the real empty line became a body
 * (a chunk, Content-Length bytes) or, with no body, the next request's start, while
 * the router forwarded them all as the head. */
static void test_bare_cr_ending_headers_refused(void **state)
{
	(void)state;
	assert_malformed("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\rxd\r\n\r\n");
	assert_malformed("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\rxabc\n\n");
	assert_malformed("GET / HTTP/1.1\r\nHost: a\r\n\rGET /x HTTP/1.1\n\n");
}

/* Empty lines before the request line: the head's end was found in them, before any
 * header (the backend got "\r\nX-Forwarded-For..." and the request as a body). Two
 * Host headers, or one folded on two lines: routed by one value, served by another. */
static void test_ambiguous_heads_refused(void **state)
{
	(void)state;
	assert_malformed("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_malformed("\n\n");
	assert_malformed("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
	assert_malformed("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n");
	assert_malformed("GET / HTTP/1.1\r\nHost a\r\n\r\n");
	assert_malformed("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
}

/* RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (it
 * was routed to the default key, or answered 404). */
static void test_http11_without_host_refused(void **state)
{
	(void)state;
	assert_refused_for("GET / HTTP/1.1\r\nX-Host: no\r\n\r\n", "without a Host header");
	assert_refused_for("GET http://a.example/ HTTP/1.1\r\n\r\n", "without a Host header");
}

/* RFC 9112 §5.2: obs-fold is refused (it was forwarded as is, to a backend that may
 * read the folded line as a header of its own); §2.2: so is whitespace before the
 * first header. */
static void test_obs_fold_refused(void **state)
{
	(void)state;
	assert_refused_for("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", "obs-fold");
	assert_refused_for("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", "obs-fold");
	assert_refused_for("GET / HTTP/1.1\r\n X-A: one\r\nHost: a\r\n\r\n", "obs-fold");
	assert_head("GET / HTTP/1.1\r\nHost: a\r\nX-A: one two\r\n\r\n", "a", true);
}

/* RFC 9112 §3.2.2: the absolute form routes by the URI's host, the Host header
 * ignored (it was routed by Host). */
static void test_absolute_form_routes_by_uri(void **state)
{
	(void)state;
	assert_head("GET http://app.example.com/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
		    "app.example.com", true);
	assert_head("GET http://App.Example.com:8080/ HTTP/1.1\r\nHost: other\r\n\r\n",
		    "App.Example.com:8080", true);
	assert_head("GET http://[::1]:8080/ HTTP/1.1\r\nHost: other\r\n\r\n", "[::1]:8080", true);
	assert_head("GET https://secure.example/ HTTP/1.1\r\nHost: x\r\n\r\n", "secure.example", true);
	assert_head("GET /http://not.absolute/ HTTP/1.1\r\nHost: a\r\n\r\n", "a", true);
	assert_refused_for("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", "");
}

/* Which requests may be sent again on a new backend connection. */
static void test_idempotent(void **state)
{
	struct http_head h;
	http_parser p;

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &p, &h), 0);
	assert_true(h.idempotent);
	assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &p, &h), 0);
	assert_true(h.idempotent);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &p, &h), 0);
	assert_false(h.idempotent);
	assert_int_equal(parse("PATCH / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &p, &h), 0);
	assert_false(h.idempotent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incomplete_head_waits),
		cmocka_unit_test(test_heads),
		cmocka_unit_test(test_body_parsed_on),
		cmocka_unit_test(test_too_long_host_is_none),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_rewrite_absolute_form),
		cmocka_unit_test(test_bare_cr_ending_headers_refused),
		cmocka_unit_test(test_ambiguous_heads_refused),
		cmocka_unit_test(test_http11_without_host_refused),
		cmocka_unit_test(test_obs_fold_refused),
		cmocka_unit_test(test_absolute_form_routes_by_uri),
		cmocka_unit_test(test_idempotent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
