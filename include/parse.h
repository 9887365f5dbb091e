/* parse.h — parsers for the value types shared by the config and the command lines:
 * durations, sizes, signal names and listen addresses. Each returns 0 on success, or
 * -1 with a short reason in *why (a static string, e.g. "expected a duration like
 * 500ms, 30s, 2m or 1h"). */
#ifndef EMPEROR_PARSE_H
#define EMPEROR_PARSE_H

#include "config.h"

/* Decimal digits only (no sign, no space), at most max: a longer or larger number is
 * refused before it can wrap ("number out of range"). Counts, ids, fds, pids. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *out, const char **why);
/* "500ms", "30s", "2m", "1h", "1.5s"; a bare number is seconds. 0..1e9 seconds. */
int parse_duration(const char *s, double *out, const char **why);
/* "4096", "64K", "512M", "2G" (powers of 1024). 0..LLONG_MAX, overflow refused. */
int parse_size(const char *s, long long *out, const char **why);
/* "TERM", "SIGTERM", "15" (case-insensitive names). */
int parse_signal(const char *s, int *out, const char **why);
/* "TERM" for SIGTERM; "SIG?" for an unknown number. */
const char *parse_signal_name(int sig);
/* "127.0.0.1:8000", "[::1]:8000", ":8000" (all IPv4), "localhost:8000" is refused
 * (no DNS), "unix:/path" or "unix:./rel" (max sun_path), "unix:@abstract". */
int parse_addr(const char *s, struct cfg_addr *out, const char **why);

#endif
