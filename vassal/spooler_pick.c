/* spooler_pick.c — how a spooler process chooses its next task: the task files of the
 * spool directory listed by priority then name (the priority peeked from each file's
 * header, remembered by inode between scans), each claimed with a non-blocking flock()
 * on a file that is still the one under that name, then read and parsed; a task whose
 * outcome is owed (struct deferred) is claimed from memory. Running the claimed task
 * and writing its outcome down are spooler.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "spooler_internal.h"
#include "util.h"

static char *read_task(int fd, size_t *len)
{
	char *buf = malloc(SPOOL_MAX_TASK + 1);
	ssize_t n;

	*len = 0;
	while (buf && *len <= SPOOL_MAX_TASK && (n = read(fd, buf + *len, SPOOL_MAX_TASK + 1 - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		*len += (size_t)n;
	}
	return buf;
}

/* Opens and locks file, if it is still the file under that name: not done (unlinked),
 * retried (renamed over) or failed (moved) by another spooler since we opened it. The
 * locked fd, or -1 (another spooler's, or gone). */
static int lock_task(struct spooler *s, const char *file, int fd)
{
	struct stat st, now_st;

	if (fd < 0)
		fd = openat(s->dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &st) < 0 ||
	    fstatat(s->dirfd, file, &now_st, 0) < 0 || st.st_ino != now_st.st_ino ||
	    st.st_dev != now_st.st_dev || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads and parses the task s->lock_fd (s->file). 1: due; 0: not due (*next_at, the
 * task released); -1: malformed (moved to failed/). */
static int load_task(struct spooler *s, double *next_at)
{
	char why[160], full[200];
	size_t len;

	memset(&s->task, 0, sizeof s->task);
	s->text = read_task(s->lock_fd, &len);
	if (!s->text || len > SPOOL_MAX_TASK ||
	    spool_parse(s->text, len, &s->task, why, sizeof why) < 0) {
		if (!s->text || len > SPOOL_MAX_TASK)
			snprintf(why, sizeof why, "unreadable or larger than %d bytes", SPOOL_MAX_TASK);
		snprintf(full, sizeof full, "malformed task: %s", why);
		spooler_fail_task(s, full);
		spooler_release_task(s);
		return -1;
	}
	if (s->task.at > spooler_wall_now()) {
		if (s->task.at < *next_at)
			*next_at = s->task.at;
		spooler_release_task(s);
		return 0;
	}
	return 1;
}

/* A task kept back in memory (d): not yet due, due to run, or due to be moved to
 * failed/ once more. Same results as spooler_claim(). */
static int claim_deferred(struct spooler *s, struct deferred *d, double *next_at)
{
	int attempts = d->attempts, rc;
	enum deferred_outcome owed = d->owed;
	char why[sizeof d->failed_why];

	if (d->not_before > spooler_wall_now()) {
		if (d->not_before < *next_at)
			*next_at = d->not_before;
		return 0;
	}
	s->lock_fd = lock_task(s, d->file, d->fd);
	if (d->fd >= 0) {
		d->fd = -1; /* now s->lock_fd, or closed */
		s->n_deferred_locks--;
	}
	snprintf(s->file, sizeof s->file, "%s", d->file);
	snprintf(why, sizeof why, "%s", d->failed_why);
	spooler_deferred_free(s, d);
	if (s->lock_fd < 0)
		return 0; /* removed by hand meanwhile, or (unlocked) another spooler's now */
	if (owed == DEFER_REMOVE) {
		memset(&s->task, 0, sizeof s->task);
		s->task.attempts = attempts;
		spooler_remove_task(s);
		spooler_release_task(s);
		return -1;
	}
	rc = load_task(s, next_at);
	if (rc == 1 && s->task.attempts < attempts)
		s->task.attempts = attempts; /* the file could not record them */
	if (rc == 1 && owed == DEFER_FAIL) {
		spooler_fail_task(s, why);
		spooler_release_task(s);
		return -1;
	}
	return rc;
}

/* Locks and parses file. 1: claimed and due; 0: not ours or not due (*next_at);
 * -1: malformed or failed (moved to failed/). */
int spooler_claim(struct spooler *s, const char *file, double *next_at)
{
	struct deferred *d = spooler_deferred_find(s, file);

	if (d)
		return claim_deferred(s, d, next_at);
	s->lock_fd = lock_task(s, file, -1);
	if (s->lock_fd < 0)
		return 0;
	snprintf(s->file, sizeof s->file, "%s", file);
	return load_task(s, next_at);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct candidate *)a)->name, ((const struct candidate *)b)->name);
}

static int by_priority_then_name(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Priority comes from the file's header; read cheaply (the first 511 bytes only), and
 * once per file (task_priority). A bad value counts as 0 here: spooler_claim() sends such a
 * file to failed/. */
static int peek_priority(int dirfd, const char *file)
{
	char head[512] = { 0 };
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return 0;
	len = read(fd, head, sizeof head - 1);
	close(fd);
	for (char *line = head; len > 0 && *line && *line != '\n';) {
		char *nl = strchr(line, '\n'), *end;
		if (strncmp(line, "@priority=", 10) == 0) {
			long prio = strtol(line + 10, &end, 10);
			return end != line + 10 && prio >= -1000000 && prio <= 1000000 ? (int)prio : 0;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

/* A task's priority: the last scan's if the file is the same (same inode), else read. */
static int task_priority(struct spooler *s, const struct dirent *de)
{
	struct candidate key;
	const struct candidate *k;

	snprintf(key.name, sizeof key.name, "%s", de->d_name);
	k = s->n_known ? bsearch(&key, s->known, s->n_known, sizeof key, by_name) : NULL;
	if (k && k->ino == de->d_ino)
		return k->priority;
	return peek_priority(s->dirfd, de->d_name);
}

/* Remembers v (n tasks) as the known ones, for the next scan's priorities. */
static void remember_tasks(struct spooler *s, const struct candidate *v, size_t n)
{
	struct candidate *copy = n ? malloc(n * sizeof *copy) : NULL;

	free(s->known);
	s->known = copy;
	s->n_known = copy ? n : 0;
	if (!copy)
		return;
	memcpy(copy, v, n * sizeof *copy);
	qsort(copy, n, sizeof *copy, by_name);
}

struct candidate *spooler_list_tasks(struct spooler *s, size_t *n)
{
	int fd = dup(s->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct candidate *v = NULL;
	size_t cap = 0;
	struct dirent *de;

	*n = 0;
	if (!d)
		return NULL;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || len >= 256 || strcmp(de->d_name + len - 5, ".task"))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			struct candidate *grown = realloc(v, cap * sizeof *v);
			if (!grown)
				break;
			v = grown;
		}
		snprintf(v[*n].name, sizeof v[*n].name, "%s", de->d_name);
		v[*n].ino = de->d_ino;
		v[(*n)++].priority = task_priority(s, de);
	}
	closedir(d);
	remember_tasks(s, v, *n);
	if (*n > 1) /* v is NULL when the directory holds no task */
		qsort(v, *n, sizeof *v, by_priority_then_name);
	return v;
}

/* Forgets deferred tasks whose file was removed (by hand) meanwhile. */
void spooler_deferred_prune(struct spooler *s)
{
	struct deferred *d = TAILQ_FIRST(&s->deferred), *next;

	for (; d; d = next) {
		next = TAILQ_NEXT(d, link);
		if (faccessat(s->dirfd, d->file, F_OK, 0) < 0 && errno == ENOENT)
			spooler_deferred_free(s, d);
	}
}
