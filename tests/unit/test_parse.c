/* test_parse.c — unit tests of lib/parse.c: decimal numbers, durations, sizes, signals
 * and listen addresses, each good and bad (overflow past 2^64 included), with the
 * reason given for a refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/un.h>

#include "parse.h"

static void test_duration_good(void **state)
{
	static const struct {
		const char *text;
		double seconds;
	} cases[] = {
		{ "500ms", 0.5 }, { "30s", 30 },    { "2m", 120 }, { "1h", 3600 },
		{ "1.5s", 1.5 },  { "0", 0 },	    { "10", 10 },  { "0.25", 0.25 },
		{ "0ms", 0 },	  { "1.5h", 5400 }, { "007s", 7 }, { "100ms", 0.1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double d = -1;
		const char *why = NULL;

		assert_int_equal(parse_duration(cases[i].text, &d, &why), 0);
		assert_true(d > cases[i].seconds - 1e-9 && d < cases[i].seconds + 1e-9);
		assert_null(why);
	}
}

static void test_duration_bad(void **state)
{
	static const char *const junk[] = { "abc", "5x",     "1.s",  ".5s",  "s",
					    "1 s", "1e3",    "0x10", "inf",  "nan",
					    "5S",  "1.5.5s", "30s ", " 30s", "1sm" };
	double d = 42;
	const char *why = NULL;
	char huge[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		why = NULL;
		assert_int_equal(parse_duration(junk[i], &d, &why), -1);
		assert_string_equal(why, "expected a duration like 500ms, 30s, 2m or 1h");
	}
	assert_int_equal(parse_duration("-1s", &d, &why), -1);
	assert_string_equal(why, "a duration cannot be negative");
	assert_int_equal(parse_duration("", &d, &why), -1);
	assert_string_equal(why, "empty duration: expected a duration like 500ms, 30s, 2m or 1h");
	memset(huge, '9', sizeof huge - 2);
	huge[sizeof huge - 2] = 'h';
	huge[sizeof huge - 1] = '\0';
	assert_int_equal(parse_duration(huge, &d, &why), -1);
	assert_string_equal(why, "duration too large (at most 1000000000s, about 31 years)");
	assert_true(d == 42); /* untouched on failure */
}

static void test_size_good(void **state)
{
	static const struct {
		const char *text;
		long long bytes;
	} cases[] = {
		{ "4096", 4096 },	 { "0", 0 },
		{ "64K", 64 << 10 },	 { "64k", 64 << 10 },
		{ "64KB", 64 << 10 },	 { "64KiB", 64 << 10 },
		{ "512M", 512LL << 20 }, { "2G", 2LL << 30 },
		{ "1T", 1LL << 40 },	 { "100B", 100 },
		{ "8gib", 8LL << 30 },	 { "9223372036854775807", LLONG_MAX },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long v = -1;

		assert_int_equal(parse_size(cases[i].text, &v, NULL), 0);
		assert_int_equal(v, cases[i].bytes);
	}
}

static void test_size_bad(void **state)
{
	static const char *const junk[] = { "abc",  "12X",   "1.5G", "K",   "64 K",
					    "64iB", "64KBB", "0x10", "64Ki" };
	long long v = 7;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		why = NULL;
		assert_int_equal(parse_size(junk[i], &v, &why), -1);
		assert_string_equal(why, "expected a size like 4096, 64K, 512M or 2G");
	}
	assert_int_equal(parse_size("-1K", &v, &why), -1);
	assert_string_equal(why, "a size cannot be negative");
	assert_int_equal(parse_size("", &v, &why), -1);
	assert_non_null(strstr(why, "empty size"));
	assert_int_equal(parse_size("9223372036854775808", &v, &why), -1);
	assert_string_equal(why, "size too large (at most 9223372036854775807 bytes, 8E - 1)");
	assert_int_equal(parse_size("9000000000T", &v, &why), -1);
	assert_string_equal(why, "size too large (at most 9223372036854775807 bytes, 8E - 1)");
	assert_int_equal(v, 7);
}

/* Numbers past 2^64 used to wrap before the check: 2e19 became 1553255926290448384. */
static void test_size_overflow_never_wraps(void **state)
{
	static const char *const huge[] = {
		"20000000000000000000", "18446744073709551616", "18446744073709551615",
		"36893488147419103232", "99999999999999999999999999999", "20000000000000000000K",
		"9223372036854775807K", "8388608T", "18446744073709551616T",
	};
	long long v = 7;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		why = NULL;
		if (parse_size(huge[i], &v, &why) == 0)
			fail_msg("'%s' accepted as %lld", huge[i], v);
		assert_non_null(strstr(why, "size too large"));
	}
	assert_int_equal(v, 7);
	assert_int_equal(parse_size("8388607T", &v, NULL), 0); /* the largest in T */
	assert_int_equal(v, 8388607LL << 40);
}

static void test_duration_range(void **state)
{
	double d = 0;
	const char *why;

	(void)state;
	assert_int_equal(parse_duration("1000000000s", &d, NULL), 0);
	assert_true(d == 1e9);
	assert_int_equal(parse_duration("1000000001", &d, &why), -1);
	assert_non_null(strstr(why, "duration too large"));
	assert_int_equal(parse_duration("277778h", &d, &why), -1);
	assert_int_equal(parse_duration("99999999999999999999999999ms", &d, &why), -1);
	assert_true(d == 1e9);
}

static void test_uint(void **state)
{
	static const char *const junk[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0" };
	unsigned long long v = 7;
	const char *why;

	(void)state;
	assert_int_equal(parse_uint("0", 10, &v, NULL), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 10, &v, NULL), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("18446744073709551615", ULLONG_MAX, &v, NULL), 0);
	assert_true(v == ULLONG_MAX);
	v = 7;
	assert_int_equal(parse_uint("11", 10, &v, &why), -1);
	assert_string_equal(why, "number out of range");
	assert_int_equal(parse_uint("18446744073709551616", ULLONG_MAX, &v, &why), -1);
	assert_string_equal(why, "number out of range");
	assert_int_equal(parse_uint("4294967296", 4294967294ULL, &v, &why), -1);
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		assert_int_equal(parse_uint(junk[i], ULLONG_MAX, &v, NULL), -1);
	assert_int_equal(v, 7);
}

static void test_signal_and_port_overflow(void **state)
{
	struct cfg_addr a;
	const char *why;
	int sig = 3;

	(void)state;
	assert_int_equal(parse_signal("18446744073709551631", &sig, &why), -1); /* 2^64 + 15 */
	assert_int_equal(parse_signal("4294967311", &sig, &why), -1);           /* 2^32 + 15 */
	assert_int_equal(sig, 3);
	assert_int_equal(parse_addr("127.0.0.1:65536", &a, &why), -1);
	assert_string_equal(why, "expected a port 0..65535 after ':'");
	assert_int_equal(parse_addr("127.0.0.1:18446744073709559617", &a, &why), -1);
	assert_int_equal(parse_addr("[::1]:4294975297", &a, &why), -1);
	assert_int_equal(parse_addr("127.0.0.1:-1", &a, &why), -1);
}

static void test_signal_good(void **state)
{
	static const struct {
		const char *text;
		int sig;
	} cases[] = {
		{ "TERM", SIGTERM },	{ "SIGTERM", SIGTERM },	  { "term", SIGTERM },
		{ "sigterm", SIGTERM }, { "15", SIGTERM },	  { "HUP", SIGHUP },
		{ "INT", SIGINT },	{ "QUIT", SIGQUIT },	  { "KILL", SIGKILL },
		{ "USR1", SIGUSR1 },	{ "USR2", SIGUSR2 },	  { "CONT", SIGCONT },
		{ "STOP", SIGSTOP },	{ "TSTP", SIGTSTP },	  { "WINCH", SIGWINCH },
		{ "ALRM", SIGALRM },	{ "PIPE", SIGPIPE },	  { "CHLD", SIGCHLD },
		{ "URG", SIGURG },	{ "ABRT", SIGABRT },	  { "1", 1 },
		{ "64", 64 },		{ "SigWinch", SIGWINCH },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int sig = -1;

		assert_int_equal(parse_signal(cases[i].text, &sig, NULL), 0);
		assert_int_equal(sig, cases[i].sig);
	}
}

static void test_signal_bad(void **state)
{
	static const char *const junk[] = { "",	   "0",		 "65",	"-15",	"TERMX",
					    "SIG", "SIGSIGTERM", "15x", "1000", "TERM " };
	const char *why;
	int sig = 3;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		why = NULL;
		assert_int_equal(parse_signal(junk[i], &sig, &why), -1);
		assert_string_equal(why,
				    "expected a signal like TERM, HUP, KILL or a number 1..64");
	}
	assert_int_equal(sig, 3);
}

static void test_signal_name(void **state)
{
	(void)state;
	assert_string_equal(parse_signal_name(SIGTERM), "TERM");
	assert_string_equal(parse_signal_name(SIGKILL), "KILL");
	assert_string_equal(parse_signal_name(SIGWINCH), "WINCH");
	assert_string_equal(parse_signal_name(0), "SIG?");
	assert_string_equal(parse_signal_name(99), "SIG?");
}

static void test_addr_ipv4(void **state)
{
	struct cfg_addr a;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

	(void)state;
	assert_int_equal(parse_addr("127.0.0.1:8001", &a, NULL), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8001);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_string_equal(a.text, "127.0.0.1:8001");

	assert_int_equal(parse_addr(":8001", &a, NULL), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_ANY);
	assert_int_equal(ntohs(sin->sin_port), 8001);

	assert_int_equal(parse_addr("0.0.0.0:0", &a, NULL), 0);
	assert_int_equal(ntohs(sin->sin_port), 0);
	assert_int_equal(parse_addr("10.1.2.3:65535", &a, NULL), 0);
	assert_int_equal(ntohs(sin->sin_port), 65535);
}

static void test_addr_ipv6(void **state)
{
	struct cfg_addr a;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;

	(void)state;
	assert_int_equal(parse_addr("[::1]:8001", &a, NULL), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8001);
	assert_memory_equal(&sin6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_string_equal(a.text, "[::1]:8001");
	assert_int_equal(parse_addr("[::]:80", &a, NULL), 0);
	assert_memory_equal(&sin6->sin6_addr, &in6addr_any, sizeof in6addr_any);
}

static void test_addr_unix(void **state)
{
	struct cfg_addr a;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.ss;
	char path[200];

	(void)state;
	assert_int_equal(parse_addr("unix:/run/hello.sock", &a, NULL), 0);
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/hello.sock");
	assert_int_equal(a.len,
			 offsetof(struct sockaddr_un, sun_path) + strlen("/run/hello.sock") + 1);

	assert_int_equal(parse_addr("unix:./run/router.sock", &a, NULL), 0);
	assert_string_equal(sun->sun_path, "./run/router.sock");

	assert_int_equal(parse_addr("unix:@hello", &a, NULL), 0);
	assert_int_equal(sun->sun_path[0], '\0');
	assert_memory_equal(sun->sun_path + 1, "hello", 5);
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + 1 + 5);
	assert_string_equal(a.text, "unix:@hello");

	/* the longest path that fits: sizeof sun_path - 1 bytes */
	memcpy(path, "unix:", 5);
	memset(path + 5, 'p', sizeof sun->sun_path - 1);
	path[5 + sizeof sun->sun_path - 1] = '\0';
	assert_int_equal(parse_addr(path, &a, NULL), 0);
	path[5 + sizeof sun->sun_path - 1] = 'p';
	path[5 + sizeof sun->sun_path] = '\0';
	assert_int_equal(parse_addr(path, &a, NULL), -1);
}

static void test_addr_bad(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
		{ "localhost:8000",
		  "host names are not resolved: use a numeric address like 127.0.0.1:8000" },
		{ "example.com:80",
		  "host names are not resolved: use a numeric address like 127.0.0.1:8000" },
		{ "8000", "expected HOST:PORT, [IPv6]:PORT or unix:PATH" },
		{ "127.0.0.1:65536", "expected a port 0..65535 after ':'" },
		{ "127.0.0.1:", "expected a port 0..65535 after ':'" },
		{ "127.0.0.1:80x", "expected a port 0..65535 after ':'" },
		{ "127.0.0.1:-1", "expected a port 0..65535 after ':'" },
		{ "256.0.0.1:80", "invalid IPv4 address" },
		{ "1.2.3:80", "invalid IPv4 address" },
		{ "::1:8000", "IPv6 addresses go in brackets, like [::1]:8000" },
		{ "[::1]", "expected [IPv6]:PORT, like [::1]:8000" },
		{ "[::1]8000", "expected [IPv6]:PORT, like [::1]:8000" },
		{ "[zz]:80", "invalid IPv6 address" },
		{ "[]:80", "invalid IPv6 address" },
		{ "[::1]:99999", "expected a port 0..65535 after ':'" },
		{ "unix:", "expected a path after 'unix:' (or @name for the abstract namespace)" },
		{ "unix:@", "expected a path after 'unix:' (or @name for the abstract namespace)" },
		{ "", "empty address: expected HOST:PORT, [IPv6]:PORT or unix:PATH" },
	};
	struct cfg_addr a;
	const char *why;
	size_t i;

	(void)state;
	memset(&a, 0x5a, sizeof a);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		why = NULL;
		assert_int_equal(parse_addr(cases[i].text, &a, &why), -1);
		assert_string_equal(why, cases[i].why);
	}
	assert_int_equal(a.text[0], 0x5a); /* untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_size_good),     cmocka_unit_test(test_size_bad),
		cmocka_unit_test(test_signal_good),   cmocka_unit_test(test_signal_bad),
		cmocka_unit_test(test_signal_name),   cmocka_unit_test(test_addr_ipv4),
		cmocka_unit_test(test_addr_ipv6),     cmocka_unit_test(test_addr_unix),
		cmocka_unit_test(test_addr_bad),
		cmocka_unit_test(test_size_overflow_never_wraps),
		cmocka_unit_test(test_duration_range),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_signal_and_port_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
