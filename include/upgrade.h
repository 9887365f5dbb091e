/* upgrade.h — SIGUSR2 (emperor/upgrade.c): the emperor re-execs its own binary in
 * place, handing the vassal table across in a memfd, one record per running vassal. */
#ifndef EMPEROR_UPGRADE_H
#define EMPEROR_UPGRADE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "emperor.h"

/* One running vassal as handed across. */
struct upgrade_record {
	pid_t pid;
	int chan_fd, out_fd;        /* kept open across the exec; -1 if none */
	int state;                  /* enum vassal_state */
	double started;             /* its child's started_at */
	struct file_id id;
	char cg_path[PATH_MAX];     /* its cgroup; "" if none */
	char file[256];             /* its file name in the directory */
	bool from_etcd;             /* ... in the etcd mirror instead */
};

/* Re-execs the emperor binary, handing over the table; returns only if it failed
 * (logged), with every fd as it was (close-on-exec again). */
void upgrade_exec(struct emperor *e, char **argv);
/* In the new image: adopts the vassals handed over, if any. */
int upgrade_restore(struct emperor *e);

/* The record of v as one line (ending in '\n'); its length, or -1 if it does not fit. */
int upgrade_format(const struct vassal *v, char *buf, size_t len);
/* Parses one line (without its '\n'); 0, or -1 if unreadable. Records without a
 * cgroup field (from an emperor before it was handed across) are read too. */
int upgrade_parse(const char *line, struct upgrade_record *r);

#endif
