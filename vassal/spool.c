/* spool.c — the spool task file: parse, create atomically, rewrite for a retry, and
 * the `vassal spool` command (see spool.h; docs/spooler.md is the format reference).
 * Durability: the task is written to DIR/.tmp-<id>, fsync'ed, renamed to
 * DIR/<id>.task, and DIR is fsync'ed, so a task that was announced exists after a
 * crash, and a half-written one is never seen by a spooler (it skips hidden files). */
#include "spool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "util.h"

static int valid_key(const char *k, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && k[i] != '_')
			return 0;
	return 1;
}

static int parse_reserved(struct spool_task *t, const char *k, size_t klen, const char *v)
{
	char *end;

	if (klen == 3 && strncmp(k, "@at", 3) == 0) {
		t->at = strtod(v, &end);
		return end != v && *end == '\0' && t->at >= 0 ? 0 : -1;
	}
	long n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < -1000000 || n > 1000000)
		return -1;
	if (klen == 9 && strncmp(k, "@priority", 9) == 0)
		t->priority = (int)n;
	else if (klen == 9 && strncmp(k, "@attempts", 9) == 0 && n >= 0)
		t->attempts = (int)n;
	else
		return -1;
	return 0;
}

static int add_env(struct spool_task *t, const char *k, size_t klen, const char *v)
{
	char *kv;
	size_t n = strv_len(t->env);
	char **grown = realloc(t->env, (n + 2) * sizeof *grown);

	if (!grown)
		return -1;
	t->env = grown;
	t->env[n] = NULL;
	if (asprintf(&kv, "SPOOL_%.*s=%s", (int)klen, k, v) < 0)
		return -1;
	for (char *p = kv + 6; *p != '='; p++)
		*p = (char)toupper((unsigned char)*p);
	t->env[n] = kv;
	t->env[n + 1] = NULL;
	return 0;
}

static int parse_line(struct spool_task *t, const char *line, size_t len, char *why, size_t wl)
{
	const char *eq = memchr(line, '=', len);
	char value[4096];
	size_t klen, vlen;

	if (!eq) {
		snprintf(why, wl, "header line '%.40s' has no '='", line);
		return -1;
	}
	klen = (size_t)(eq - line);
	vlen = len - klen - 1;
	if (vlen >= sizeof value || memchr(line, '\0', len)) {
		snprintf(why, wl, "header line '%.40s' too long or not text", line);
		return -1;
	}
	memcpy(value, eq + 1, vlen);
	value[vlen] = '\0';
	if (line[0] == '@') {
		if (parse_reserved(t, line, klen, value) < 0) {
			snprintf(why, wl, "bad '%.*s' value '%.40s'", (int)klen, line, value);
			return -1;
		}
		return 0;
	}
	if (!valid_key(line, klen)) {
		snprintf(why, wl, "bad key '%.*s' (expected [A-Za-z0-9_]+)", (int)(klen > 40 ? 40 : klen), line);
		return -1;
	}
	return add_env(t, line, klen, value);
}

int spool_parse(const char *text, size_t len, struct spool_task *t, char *why, size_t whylen)
{
	size_t pos = 0;

	memset(t, 0, sizeof *t);
	t->env = calloc(1, sizeof *t->env);
	if (!t->env)
		return -1;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		if (end == pos) { /* the empty line: the body follows */
			t->body = text + end + 1;
			t->body_len = len - end - 1;
			return 0;
		}
		if (parse_line(t, text + pos, end - pos, why, whylen) < 0) {
			spool_task_fini(t);
			return -1;
		}
		pos = end + 1;
	}
	t->body = text + len;
	return 0;
}

void spool_task_fini(struct spool_task *t)
{
	strv_free(t->env);
	t->env = NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_task(int dirfd, const char *tmp, const char *final, const char *head,
		      const char *body, size_t body_len)
{
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (write_all(fd, head, strlen(head)) < 0 || write_all(fd, body, body_len) < 0 ||
	    fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, final) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	return fsync(dirfd);
}

/* "@at=...\n@priority=...\n@attempts=...\nk=v\n...\n\n" */
static char *render_head(double at, int priority, int attempts, char *const *keys)
{
	size_t cap = 128;
	char *h;

	for (size_t i = 0; keys && keys[i]; i++)
		cap += strlen(keys[i]) + 1;
	h = malloc(cap);
	if (!h)
		return NULL;
	int n = snprintf(h, cap, "@at=%.3f\n@priority=%d\n@attempts=%d\n", at, priority, attempts);
	for (size_t i = 0; keys && keys[i]; i++)
		n += snprintf(h + n, cap - (size_t)n, "%s\n", keys[i]);
	snprintf(h + n, cap - (size_t)n, "\n");
	return h;
}

/* 16 random bits for task ids (unseeded random() would repeat across processes). */
static unsigned unique16(void)
{
	unsigned short r = 0;

	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (unsigned short)(getpid() ^ (unsigned)time(NULL));
	return r;
}

int spool_enqueue(const char *dir, double at, int priority, int attempts, char *const *keys,
		  const char *body, size_t body_len, char *id, size_t idlen)
{
	struct timespec ts;
	char tmp[128], final[128];
	char *head = render_head(at, priority, attempts, keys);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (!head || dirfd < 0) {
		free(head);
		if (dirfd >= 0)
			close(dirfd);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(id, idlen, "%lld%09ld-%d-%04lx", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid(),
		 (unsigned long)unique16());
	snprintf(tmp, sizeof tmp, ".tmp-%s", id);
	snprintf(final, sizeof final, "%s.task", id);
	rc = write_task(dirfd, tmp, final, head, body, body_len);
	free(head);
	close(dirfd);
	return rc;
}

int spool_rewrite(int dirfd, const char *file, const struct spool_task *t, double at,
		  int attempts)
{
	char tmp[300];
	size_t n = strv_len(t->env);
	char **keys = calloc(n + 1, sizeof *keys);
	int rc = -1;

	if (!keys)
		return -1;
	for (size_t i = 0; i < n; i++) { /* SPOOL_KEY=v back to key=v (lower case kept upper) */
		keys[i] = t->env[i] + 6;
	}
	char *head = render_head(at, t->priority, attempts, keys);
	snprintf(tmp, sizeof tmp, ".tmp-%d-%s", (int)getpid(), file);
	if (head)
		rc = write_task(dirfd, tmp, file, head, t->body, t->body_len);
	free(head);
	free(keys);
	return rc;
}

/* ---- vassal spool ----------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *buf = malloc(SPOOL_MAX_TASK + 1);

	*len = 0;
	if (!f || !buf) {
		free(buf);
		return NULL;
	}
	*len = fread(buf, 1, SPOOL_MAX_TASK + 1, f);
	if (f != stdin)
		fclose(f);
	return *len > SPOOL_MAX_TASK ? (free(buf), NULL) : buf;
}

static int parse_at(const char *s, double *at)
{
	const char *why;
	double d;
	char *end;

	if (s[0] == '+') {
		if (parse_duration(s + 1, &d, &why) < 0)
			return -1;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		*at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + d;
		return 0;
	}
	*at = strtod(s, &end);
	return end != s && *end == '\0' && *at >= 0 ? 0 : -1;
}

int spool_cli(int argc, char **argv)
{
	const char *dir = NULL, *body_path = NULL;
	double at = 0;
	int priority = 0, n_keys = 0;
	char **keys = calloc((size_t)argc + 1, sizeof *keys), id[96], *body = NULL;
	size_t body_len = 0;

	for (int i = 0; keys && i < argc; i++) {
		if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			if (parse_at(argv[++i], &at) < 0) {
				fprintf(stderr, "vassal spool: --at '%s': expected unix time or +DURATION\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--priority") == 0 && i + 1 < argc) {
			priority = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--body") == 0 && i + 1 < argc) {
			body_path = argv[++i];
		} else if (!dir) {
			dir = argv[i];
		} else {
			const char *eq = strchr(argv[i], '=');
			if (!eq || !valid_key(argv[i], (size_t)(eq - argv[i])) || strchr(eq, '\n')) {
				fprintf(stderr, "vassal spool: '%s': expected key=value, key [A-Za-z0-9_]+\n", argv[i]);
				return 2;
			}
			keys[n_keys++] = argv[i];
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: vassal spool DIR [--at TIME|+DURATION] [--priority N] [--body FILE|-] key=value...\n");
		return 2;
	}
	if (body_path && !(body = slurp(body_path, &body_len))) {
		fprintf(stderr, "vassal spool: --body %s: cannot read (or over 1 MiB)\n", body_path);
		return 1;
	}
	int rc = spool_enqueue(dir, at, priority, 0, keys, body ? body : "", body_len, id, sizeof id);
	if (rc < 0)
		fprintf(stderr, "vassal spool: %s: %s\n", dir, strerror(errno));
	else
		printf("%s\n", id);
	free(body);
	free(keys);
	return rc < 0 ? 1 : 0;
}
