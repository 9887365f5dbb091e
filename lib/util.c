/* util.c — fd flags, monotonic time, string vectors, and the environment of a child:
 * env_build/env_set, and the one list of the variables the emperor and the master use
 * among themselves (env_internal), which no program they run ever inherits. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int fd_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl);
}

const char *proc_stat_fields(int pid, char *buf, size_t len)
{
	char path[40], *close_paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (pid <= 0 || len < 2 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' ? close_paren + 2 : NULL;
}

int fd_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

char *fd_read_all(int fd, size_t max, size_t *len)
{
	size_t cap = max + 2;
	char *buf = malloc(cap);
	ssize_t n;

	*len = 0;
	while (buf && *len < max + 1 && (n = read(fd, buf + *len, max + 1 - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		*len += (size_t)n;
	}
	if (buf)
		buf[*len] = '\0';
	return buf;
}

int fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **strv_dup(char *const *v)
{
	size_t n = strv_len(v);
	char **out = calloc(n + 1, sizeof *out);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static size_t env_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static long env_find(char **v, const char *key, size_t klen)
{
	for (long i = 0; v && v[i]; i++)
		if (env_key_len(v[i]) == klen && strncmp(v[i], key, klen) == 0)
			return i;
	return -1;
}

const char *const env_internal[] = {
	"EMPEROR_FD",            /* the emperor's channel to a vassal master */
	"EMPEROR_STATE_FD",      /* the emperor's table across its own re-exec */
	"EMPEROR_DEMAND_FDS",    /* ... and its on-demand sockets */
	"VASSAL_CONFIG_FD",      /* a master's config across its re-exec ... */
	"VASSAL_RELOAD_STATE",   /* ... and its reload state */
	"VASSAL_DAEMONS",        /* daemons handed over at a re-exec */
	"LISTEN_FDS",            /* socket activation of the parent itself: a child that */
	"LISTEN_PID",            /* gets sockets has its own set */
	"LISTEN_FDNAMES",
	"NOTIFY_SOCKET",         /* the parent's own supervisor: a worker gets the master's */
	NULL,
};

char **env_set(char **v, const char *key, const char *value)
{
	size_t klen = strlen(key), n = strv_len(v);
	char *kv = v ? malloc(klen + strlen(value) + 2) : NULL;
	char **grown;
	long at;

	if (!kv) {
		strv_free(v);
		return NULL;
	}
	sprintf(kv, "%s=%s", key, value);
	at = env_find(v, key, klen);
	if (at >= 0) {
		free(v[at]);
		v[at] = kv;
		return v;
	}
	if (!(grown = realloc(v, (n + 2) * sizeof *v))) {
		free(kv);
		strv_free(v);
		return NULL;
	}
	grown[n] = kv;
	grown[n + 1] = NULL;
	return grown;
}

char **env_build(char *const *base, char *const *add, const char *const *del)
{
	char **v = strv_dup(base ? base : environ);

	for (size_t i = 0; v && del && del[i]; i++) {
		long at = env_find(v, del[i], strlen(del[i]));
		if (at < 0)
			continue;
		free(v[at]);
		memmove(&v[at], &v[at + 1], (strv_len(v) - (size_t)at) * sizeof *v);
	}
	for (size_t i = 0; v && add && add[i]; i++) {
		size_t klen = env_key_len(add[i]);
		char *key;
		if (!add[i][klen])
			continue; /* no '=': not a variable */
		if (!(key = strndup(add[i], klen))) {
			strv_free(v);
			return NULL;
		}
		v = env_set(v, key, add[i] + klen + 1);
		free(key);
	}
	return v;
}

char **env_for_child(char *const *base, char *const *add)
{
	return env_build(base, add, env_internal);
}

static int strbuf_reserve(struct strbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *grown;

	if (b->len + more + 1 <= b->cap)
		return 0;
	while (cap < b->len + more + 1 && cap < STRBUF_MAX)
		cap *= 2;
	if (cap > STRBUF_MAX)
		cap = STRBUF_MAX;
	if (cap <= b->cap || !(grown = realloc(b->p, cap)))
		return -1;
	b->p = grown;
	b->cap = cap;
	return 0;
}

void strbuf_append(struct strbuf *b, const char *s, size_t n)
{
	if (strbuf_reserve(b, n) < 0) {
		if (!b->cap)
			return;
		n = b->cap - 1 - b->len; /* truncated */
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	char small[1024], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		strbuf_append(b, small, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n >= 0)
		strbuf_append(b, big, (size_t)n);
	free(big);
}

void strbuf_free(struct strbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
