/* spool.c — the spool task file: parse, create atomically, rewrite for a retry, and
 * the `vassal spool` command (see spool.h; docs/spooler.md is the format reference).
 * Durability: the task is written to DIR/.tmp-<id>, fsync'ed, renamed to
 * DIR/<id>.task, and DIR is fsync'ed, so a task that was announced exists after a
 * crash, and a half-written one is never seen by a spooler (it skips hidden files). */
#include "spool.h"

#include <getopt.h>
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
		return end != v && *end == '\0' && t->at >= 0 && t->at <= SPOOL_MAX_AT ? 0 : -1;
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

static int strv_push(char ***v, char *item)
{
	size_t n = strv_len(*v);
	char **grown = realloc(*v, (n + 2) * sizeof *grown);

	if (!grown) {
		free(item);
		return -1;
	}
	*v = grown;
	grown[n] = item;
	grown[n + 1] = NULL;
	return 0;
}

/* Records key=value as written (for a rewrite) and as SPOOL_KEY=value. */
static int add_key(struct spool_task *t, const char *k, size_t klen, const char *v)
{
	char *kv, *env;

	if (asprintf(&kv, "%.*s=%s", (int)klen, k, v) < 0)
		return -1;
	if (strv_push(&t->keys, kv) < 0)
		return -1;
	if (asprintf(&env, "SPOOL_%.*s=%s", (int)klen, k, v) < 0)
		return -1;
	for (char *p = env + 6; *p != '='; p++)
		*p = (char)toupper((unsigned char)*p);
	return strv_push(&t->env, env);
}

static int parse_line(struct spool_task *t, const char *line, size_t len, char *why, size_t wl)
{
	const char *eq = memchr(line, '=', len);
	int shown = (int)(len > 40 ? 40 : len); /* line is not NUL-terminated */
	char value[4096];
	size_t klen, vlen;

	if (!eq) {
		snprintf(why, wl, "header line '%.*s' has no '='", shown, line);
		return -1;
	}
	klen = (size_t)(eq - line);
	vlen = len - klen - 1;
	if (vlen >= sizeof value || memchr(line, '\0', len)) {
		snprintf(why, wl, "header line '%.*s' too long or not text", shown, line);
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
	return add_key(t, line, klen, value);
}

int spool_parse(const char *text, size_t len, struct spool_task *t, char *why, size_t whylen)
{
	size_t pos = 0;

	memset(t, 0, sizeof *t);
	t->env = calloc(1, sizeof *t->env);
	t->keys = calloc(1, sizeof *t->keys);
	if (!t->env || !t->keys) {
		spool_task_fini(t);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
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
	strv_free(t->keys);
	t->env = NULL;
	t->keys = NULL;
}

static int write_task(int dirfd, const char *tmp, const char *final, const char *head,
		      const char *body, size_t body_len)
{
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd < 0)
		return -1;
	if (fd_write_all(fd, head, strlen(head)) < 0 || fd_write_all(fd, body, body_len) < 0 ||
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
	char *h = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&h, &len);

	if (!f)
		return NULL;
	fprintf(f, "@at=%.3f\n@priority=%d\n@attempts=%d\n", at, priority, attempts);
	for (size_t i = 0; keys && keys[i]; i++)
		fprintf(f, "%s\n", keys[i]);
	fputc('\n', f);
	if (fclose(f) != 0) {
		free(h);
		return NULL;
	}
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

/* "key=value" as spool_parse() reads it back: a valid key, no newline in the value. */
static int valid_key_value(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq && valid_key(kv, (size_t)(eq - kv)) && !strchr(eq, '\n') &&
	       strlen(eq + 1) < 4096;
}

int spool_enqueue(const char *dir, double at, int priority, int attempts, char *const *keys,
		  const char *body, size_t body_len, char *id, size_t idlen)
{
	struct timespec ts;
	char tmp[128], final[128];
	char *head;
	int dirfd, rc;

	for (size_t i = 0; keys && keys[i]; i++)
		if (!valid_key_value(keys[i])) {
			errno = EINVAL;
			return -1;
		}
	if (!(at >= 0 && at <= SPOOL_MAX_AT) || attempts < 0 || priority < -1000000 ||
	    priority > 1000000 || body_len > SPOOL_MAX_TASK) {
		errno = EINVAL;
		return -1;
	}
	head = render_head(at, priority, attempts, keys);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
	char *head = render_head(at, t->priority, attempts, t->keys);
	int rc;

	if (!head)
		return -1;
	snprintf(tmp, sizeof tmp, ".tmp-%d-%s", (int)getpid(), file);
	rc = write_task(dirfd, tmp, file, head, t->body, t->body_len);
	free(head);
	return rc;
}

/* ---- vassal spool ----------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *buf = malloc(SPOOL_MAX_TASK + 1);

	*len = 0;
	if (!f || !buf) {
		if (f && f != stdin)
			fclose(f);
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
	return end != s && *end == '\0' && *at >= 0 && *at <= SPOOL_MAX_AT ? 0 : -1;
}

struct spool_args {
	const char *dir, *body_path;
	double at;
	int priority;
	char **keys;               /* into argv */
};

/* 0, or 2 (a usage error, reported). */
/* argv: what follows "vassal spool"; options anywhere (getopt_long), `--opt=value` too. */
static int parse_args(int argc, char **argv, struct spool_args *a)
{
	enum { O_AT = 1, O_PRIORITY, O_BODY };
	static const struct option longopts[] = {
		{ "at", required_argument, NULL, O_AT },
		{ "priority", required_argument, NULL, O_PRIORITY },
		{ "body", required_argument, NULL, O_BODY },
		{ NULL, 0, NULL, 0 },
	};
	char **v = calloc((size_t)argc + 2, sizeof *v);
	size_t n_keys = 0;
	int opt, rc = 0;

	if (!v)
		return 2;
	v[0] = "vassal spool";
	memcpy(v + 1, argv, (size_t)argc * sizeof *v);
	optind = 0; /* a fresh scan, also when called again */
	while (rc == 0 && (opt = getopt_long(argc + 1, v, "", longopts, NULL)) != -1) {
		char *end;
		long n;
		switch (opt) {
		case O_AT:
			if (parse_at(optarg, &a->at) < 0) {
				fprintf(stderr, "vassal spool: --at '%s': expected unix time or +DURATION\n", optarg);
				rc = 2;
			}
			break;
		case O_PRIORITY:
			n = strtol(optarg, &end, 10);
			if (end == optarg || *end || n < -1000000 || n > 1000000) {
				fprintf(stderr, "vassal spool: --priority '%s': expected an integer "
					"-1000000..1000000\n", optarg);
				rc = 2;
			}
			a->priority = (int)n;
			break;
		case O_BODY: a->body_path = optarg; break;
		default: rc = 2; break; /* getopt said what */
		}
	}
	for (int i = optind; rc == 0 && i < argc + 1; i++) {
		if (!a->dir) {
			a->dir = v[i];
		} else if (valid_key_value(v[i])) {
			a->keys[n_keys++] = v[i];
		} else {
			fprintf(stderr, "vassal spool: '%.60s': expected key=value, key [A-Za-z0-9_]+, "
				"value one line under 4 KiB\n", v[i]);
			rc = 2;
		}
	}
	free(v);
	if (rc == 0 && !a->dir) {
		fprintf(stderr, "usage: vassal spool DIR [--at TIME|+DURATION] [--priority N] "
			"[--body FILE|-] key=value...\n");
		rc = 2;
	}
	return rc;
}

int spool_cli(int argc, char **argv)
{
	struct spool_args a = { .keys = calloc((size_t)argc + 1, sizeof *a.keys) };
	char id[96], *body = NULL;
	size_t body_len = 0;
	int rc;

	if (!a.keys)
		return 1;
	rc = parse_args(argc, argv, &a);
	if (rc == 0 && a.body_path && !(body = slurp(a.body_path, &body_len))) {
		fprintf(stderr, "vassal spool: --body %s: cannot read (or over 1 MiB)\n", a.body_path);
		rc = 1;
	}
	if (rc == 0 && spool_enqueue(a.dir, a.at, a.priority, 0, a.keys, body ? body : "", body_len,
				     id, sizeof id) < 0) {
		fprintf(stderr, "vassal spool: %s: %s\n", a.dir, strerror(errno));
		rc = 1;
	} else if (rc == 0) {
		printf("%s\n", id);
	}
	free(body);
	free(a.keys);
	return rc;
}
