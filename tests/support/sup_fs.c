/* sup_fs.c — test set-up and files: sup_init (subreaper, SIGPIPE, the run's tag),
 * the clock, temp directories, whole-file reads and writes, and where the build's
 * binaries are ($EMPEROR_BUILD). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char sup_tag_buf[64];

long long sup_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
		perror("sup: clock_gettime");
		abort();
	}
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *sup_tag(void)
{
	struct timespec ts;

	if (sup_tag_buf[0])
		return sup_tag_buf;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		ts.tv_sec = ts.tv_nsec = 0;
	snprintf(sup_tag_buf, sizeof sup_tag_buf, "%d-%lld%09ld", (int)getpid(), (long long)ts.tv_sec,
		 ts.tv_nsec);
	return sup_tag_buf;
}

void sup_init(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fprintf(stderr, "sup: prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno));
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fprintf(stderr, "sup: signal(SIGPIPE): %s\n", strerror(errno));
	sup_tag();
}

char *sup_tmpdir(void)
{
	char *dir = strdup("/tmp/emperor-test.XXXXXX");

	if (!dir)
		return NULL;
	if (!mkdtemp(dir)) {
		fprintf(stderr, "sup: mkdtemp(%s): %s\n", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		fprintf(stderr, "sup: removing %s: %s\n", path, strerror(errno));
	return 0;
}

void sup_rmtree(const char *path)
{
	if (path && nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		fprintf(stderr, "sup: nftw(%s): %s\n", path, strerror(errno));
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

int sup_write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write_all(fd, content, strlen(content)) < 0) {
		fprintf(stderr, "sup: writing %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "sup: close(%s): %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int sup_write_file_atomic(const char *path, const char *content)
{
	const char *slash = strrchr(path, '/');
	char *tmp;
	int rc = -1;

	if (asprintf(&tmp, "%.*s.%s.%d.tmp", slash ? (int)(slash - path + 1) : 0, path,
		     slash ? slash + 1 : path, (int)getpid()) < 0)
		return -1;
	if (sup_write_file(tmp, content) == 0 && rename(tmp, path) == 0) {
		rc = 0;
	} else {
		fprintf(stderr, "sup: replacing %s: %s\n", path, strerror(errno));
		(void)unlink(tmp); /* best effort: it may not exist */
	}
	free(tmp);
	return rc;
}

char *sup_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *grown = realloc(buf, cap + 65536);

			if (!grown) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

char *sup_path(const char *dir, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

const char *sup_build_dir(void)
{
	static char dir[2 * PATH_MAX];
	const char *env = getenv("EMPEROR_BUILD");
	char cwd[PATH_MAX];

	if (dir[0])
		return dir;
	if (!env || !*env)
		env = "build";
	if (env[0] == '/')
		snprintf(dir, sizeof dir, "%s", env);
	else if (getcwd(cwd, sizeof cwd))
		snprintf(dir, sizeof dir, "%s/%s", cwd, env);
	else
		fprintf(stderr, "sup: getcwd: %s\n", strerror(errno));
	return dir;
}

char *sup_bin(const char *rel)
{
	return sup_path(sup_build_dir(), rel);
}

char *sup_copy_bin(const char *dir, const char *rel)
{
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	char *from = sup_bin(rel), *to = sup_path(dir, base), buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	ssize_t n = -1;

	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (n != 0)
		fprintf(stderr, "sup: copy %s to %s: %s\n", from, to, strerror(errno));
	if ((in >= 0 && close(in) < 0) || (out >= 0 && close(out) < 0))
		n = -1;
	free(from);
	if (n != 0) {
		free(to);
		return NULL;
	}
	return to;
}
