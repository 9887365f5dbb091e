/* spool.h — the spool task file (docs/spooler.md) and enqueueing. A task is a file
 * DIR/<id>.task: header lines "key=value" up to the first empty line, then an
 * optional body. Keys starting with '@' belong to the spooler: @at (unix time, run
 * not before), @priority (higher first), @attempts (runs that ended in a retry).
 * Any other key [A-Za-z0-9_]+ reaches the task program as SPOOL_<KEY>. A task is
 * created atomically: written to a hidden file, fsync'ed, renamed. */
#ifndef EMPEROR_SPOOL_H
#define EMPEROR_SPOOL_H

#include <stddef.h>

#define SPOOL_EX_RETRY 75          /* EX_TEMPFAIL: run the task again later */
#define SPOOL_MAX_TASK (1024 * 1024)
#define SPOOL_MAX_AT 1e11             /* @at beyond this (year 5138) is refused */

struct spool_task {
	double at;
	int priority;
	int attempts;
	char **keys;               /* "key=value" as written in the file, NULL-terminated */
	char **env;                /* "SPOOL_KEY=value" (key upper-cased), in the same order */
	const char *body;          /* into the parsed text */
	size_t body_len;
};

/* Parses a task file's text. 0, or -1 with the reason in why. */
int spool_parse(const char *text, size_t len, struct spool_task *t, char *why, size_t whylen);
void spool_task_fini(struct spool_task *t);
/* Writes a task; its id (file name without .task) goes to id. keys are "key=value"
 * with key [A-Za-z0-9_]+ and no newline in value (else -1, EINVAL). 0 or -1 (errno). */
int spool_enqueue(const char *dir, double at, int priority, int attempts, char *const *keys,
		  const char *body, size_t body_len, char *id, size_t idlen);
/* Rewrites an existing task (same file name) with new @at and @attempts, atomically;
 * its keys (as written) and body are kept. 0 or -1 (errno). */
int spool_rewrite(int dirfd, const char *file, const struct spool_task *t, double at,
		  int attempts);
/* `vassal spool DIR [--at TIME] [--priority N] [--body FILE] key=value...` */
int spool_cli(int argc, char **argv);

#endif
