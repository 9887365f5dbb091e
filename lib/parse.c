/* parse.c — parsers for the value types the config and the command lines share:
 * durations ("500ms", "30s", "2m", "1h", a bare number of seconds), sizes ("64K",
 * "512M", powers of 1024), signal names and numbers, and listen addresses
 * ("127.0.0.1:8000", "[::1]:8000", ":8000", "unix:/path", "unix:@abstract").
 * Each parser is strict (no trailing junk, no DNS), checks overflow and range before
 * any arithmetic can wrap, and fills its output only on success; on failure it points
 * *why at a static sentence saying what was expected (the caller quotes the value). */
#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define PARSE_SIGNAL_MAX 64 /* SIGRTMAX on Linux */
#define PARSE_DURATION_MAX 1e9 /* seconds: any conversion to ms still fits 64 bits */

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -1;
}

static size_t digits_span(const char *s)
{
	size_t n = 0;

	while (isdigit((unsigned char)s[n]))
		n++;
	return n;
}

/* Decimal numbers */

int parse_uint(const char *s, unsigned long long max, unsigned long long *out, const char **why)
{
	unsigned long long value = 0;
	size_t n;

	if (!s || !*s)
		return fail(why, "expected a decimal number, got nothing");
	n = digits_span(s);
	if (n == 0 || s[n] != '\0')
		return fail(why, "expected a decimal number (digits only)");
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (value > (max - d) / 10) /* value * 10 + d would pass max (or wrap) */
			return fail(why, "number out of range");
		value = value * 10 + d;
	}
	*out = value;
	return 0;
}

/* Durations */

static const struct {
	const char *unit;
	double seconds;
} duration_units[] = {
	{ "", 1 }, { "ms", 0.001 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
};

/* Reads digits[.digits] by hand: strtod would accept "inf", hex and exponents, and
 * follows the locale's decimal point. Returns the end of the number, or NULL. */
static const char *decimal_value(const char *s, double *value)
{
	size_t n = digits_span(s), i;
	double frac = 0, scale = 1;

	if (n == 0)
		return NULL;
	*value = 0;
	for (i = 0; i < n; i++)
		*value = *value * 10 + (s[i] - '0');
	s += n;
	if (*s != '.')
		return s;
	n = digits_span(++s);
	if (n == 0)
		return NULL;
	for (i = 0; i < n && i < 15; i++) { /* beyond 15 digits a double cannot tell */
		frac = frac * 10 + (s[i] - '0');
		scale *= 10;
	}
	*value += frac / scale;
	return s + n;
}

int parse_duration(const char *s, double *out, const char **why)
{
	static const char expected[] = "expected a duration like 500ms, 30s, 2m or 1h";
	const char *unit;
	double value;
	size_t i;

	if (!s || !*s)
		return fail(why, "empty duration: expected a duration like 500ms, 30s, 2m or 1h");
	if (*s == '-')
		return fail(why, "a duration cannot be negative");
	unit = decimal_value(s, &value);
	if (!unit)
		return fail(why, expected);
	for (i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++)
		if (strcmp(unit, duration_units[i].unit) == 0)
			break;
	if (i == sizeof duration_units / sizeof duration_units[0])
		return fail(why, expected);
	value *= duration_units[i].seconds;
	if (!isfinite(value) || value > PARSE_DURATION_MAX)
		return fail(why, "duration too large (at most 1000000000s, about 31 years)");
	*out = value;
	return 0;
}

/* Sizes */

static int size_multiplier(const char *suffix, long long *mult)
{
	static const char prefixes[] = "KMGT";
	const char *p = *suffix ? strchr(prefixes, toupper((unsigned char)*suffix)) : NULL;
	const char *rest = suffix;
	int shift = 0;

	if (p) {
		shift = 10 * (int)(p - prefixes + 1);
		rest++;
		if (strcasecmp(rest, "iB") == 0)
			rest += 2;
	}
	if (strcasecmp(rest, "B") == 0)
		rest++;
	if (*rest)
		return -1;
	*mult = 1LL << shift;
	return 0;
}

int parse_size(const char *s, long long *out, const char **why)
{
	static const char expected[] = "expected a size like 4096, 64K, 512M or 2G";
	unsigned long long value = 0;
	long long mult;
	size_t n, i;

	if (!s || !*s)
		return fail(why, "empty size: expected a size like 4096, 64K, 512M or 2G");
	if (*s == '-')
		return fail(why, "a size cannot be negative");
	n = digits_span(s);
	if (n == 0 || size_multiplier(s + n, &mult) < 0)
		return fail(why, expected);
	for (i = 0; i < n; i++) { /* checked before each step: never wraps */
		unsigned d = (unsigned)(s[i] - '0');
		if (value > ((unsigned long long)LLONG_MAX - d) / 10)
			return fail(why, "size too large (at most 9223372036854775807 bytes, 8E - 1)");
		value = value * 10 + d;
	}
	if (value > (unsigned long long)(LLONG_MAX / mult))
		return fail(why, "size too large (at most 9223372036854775807 bytes, 8E - 1)");
	*out = (long long)value * mult;
	return 0;
}

/* Signals */

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
	{ "HUP", SIGHUP },	 { "INT", SIGINT },   { "QUIT", SIGQUIT },   { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },	 { "ABRT", SIGABRT }, { "BUS", SIGBUS },     { "FPE", SIGFPE },
	{ "KILL", SIGKILL },	 { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },   { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE },	 { "ALRM", SIGALRM }, { "TERM", SIGTERM },   { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT },	 { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU },	 { "URG", SIGURG },   { "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "SYS", SIGSYS },
#ifdef SIGPWR
	{ "PWR", SIGPWR },
#endif
#ifdef SIGSTKFLT
	{ "STKFLT", SIGSTKFLT },
#endif
};

#define N_SIGNAL_NAMES (sizeof signal_names / sizeof signal_names[0])

int parse_signal(const char *s, int *out, const char **why)
{
	static const char expected[] = "expected a signal like TERM, HUP, KILL or a number 1..64";
	const char *name = s;
	size_t n, i;

	if (!s || !*s)
		return fail(why, expected);
	n = digits_span(s);
	if (n > 0) {
		unsigned long long value;

		if (parse_uint(s, PARSE_SIGNAL_MAX, &value, NULL) < 0 || value < 1)
			return fail(why, expected);
		*out = (int)value;
		return 0;
	}
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (i = 0; i < N_SIGNAL_NAMES; i++) {
		if (strcasecmp(name, signal_names[i].name) == 0) {
			*out = signal_names[i].sig;
			return 0;
		}
	}
	return fail(why, expected);
}

const char *parse_signal_name(int sig)
{
	size_t i;

	for (i = 0; i < N_SIGNAL_NAMES; i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return "SIG?";
}

/* Addresses */

static int addr_unix(const char *path, struct cfg_addr *a, const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	int abstract = path[0] == '@';
	size_t len = strlen(path);

	if (len == 0 || (abstract && len == 1))
		return fail(why,
			    "expected a path after 'unix:' (or @name for the abstract namespace)");
	if (len >= sizeof sun->sun_path)
		return fail(why, "unix socket path too long (at most 107 bytes)");
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	if (abstract) {
		sun->sun_path[0] = '\0';
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	return 0;
}

static int parse_port(const char *s, in_port_t *port)
{
	unsigned long long value;

	if (parse_uint(s, 65535, &value, NULL) < 0)
		return -1;
	*port = htons((in_port_t)value);
	return 0;
}

static int addr_inet6(const char *s, struct cfg_addr *a, const char **why)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	const char *close = strchr(s, ']');
	char host[INET6_ADDRSTRLEN];
	size_t len;

	if (!close || close[1] != ':')
		return fail(why, "expected [IPv6]:PORT, like [::1]:8000");
	len = (size_t)(close - s - 1);
	if (len == 0 || len >= sizeof host)
		return fail(why, "invalid IPv6 address");
	memcpy(host, s + 1, len);
	host[len] = '\0';
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return fail(why, "invalid IPv6 address");
	if (parse_port(close + 2, &sin6->sin6_port) < 0)
		return fail(why, "expected a port 0..65535 after ':'");
	sin6->sin6_family = AF_INET6;
	a->len = sizeof *sin6;
	return 0;
}

static const char *inet4_host_problem(const char *host)
{
	if (strchr(host, ':'))
		return "IPv6 addresses go in brackets, like [::1]:8000";
	if (strspn(host, "0123456789.") == strlen(host))
		return "invalid IPv4 address";
	return "host names are not resolved: use a numeric address like 127.0.0.1:8000";
}

static int addr_inet4(const char *s, struct cfg_addr *a, const char **why)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	const char *colon = strrchr(s, ':');
	char host[64];
	size_t len;

	if (!colon)
		return fail(why, "expected HOST:PORT, [IPv6]:PORT or unix:PATH");
	len = (size_t)(colon - s);
	memcpy(host, s, len < sizeof host ? len : sizeof host - 1);
	host[len < sizeof host ? len : sizeof host - 1] = '\0';
	if (len >= sizeof host)
		return fail(why, inet4_host_problem(host));
	if (len == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return fail(why, inet4_host_problem(host));
	if (parse_port(colon + 1, &sin->sin_port) < 0)
		return fail(why, "expected a port 0..65535 after ':'");
	sin->sin_family = AF_INET;
	a->len = sizeof *sin;
	return 0;
}

int parse_addr(const char *s, struct cfg_addr *out, const char **why)
{
	struct cfg_addr a;
	int rc;

	if (!s || !*s)
		return fail(why, "empty address: expected HOST:PORT, [IPv6]:PORT or unix:PATH");
	if (strlen(s) >= sizeof a.text)
		return fail(why, "address too long");
	memset(&a, 0, sizeof a);
	if (strncmp(s, "unix:", 5) == 0)
		rc = addr_unix(s + 5, &a, why);
	else if (s[0] == '[')
		rc = addr_inet6(s, &a, why);
	else
		rc = addr_inet4(s, &a, why);
	if (rc < 0)
		return -1;
	strcpy(a.text, s);
	*out = a;
	return 0;
}
