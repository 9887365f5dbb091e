/* cgroup.h — a cgroup v2 per vassal, where a writable cgroup2 hierarchy exists.
 * The emperor moves itself into a leaf ("<base>/emperor") so that its own cgroup
 * may hold vassal cgroups with controllers, creates "<base>/vassal.<name>" (or under
 * the vassal's `cgroup.parent`), puts the vassal master in it before exec, and writes
 * the vassal's limits there. The no-mercy kill writes cgroup.kill, so nothing a
 * vassal forked survives, double-forked daemons included. Where cgroup v2 is not
 * available, process groups and subreaping do that job, and the log says so. */
#ifndef EMPEROR_CGROUP_H
#define EMPEROR_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

struct cgroup_base {
	bool usable;
	char path[512];           /* the emperor's cgroup directory, when usable */
	char why[512];            /* why not, when not */
};

/* Finds our cgroup v2 directory and whether we can manage children there. */
void cgroup_probe(struct cgroup_base *b);
/* Moves us into <base>/emperor and enables controllers for vassals (once). */
int cgroup_prepare(struct cgroup_base *b);
/* The vassal's cgroup path; created, with its limits written (failures logged
 * once per vassal start, the vassal still runs). 0, or -1 if it cannot exist. */
int cgroup_create(const struct cgroup_base *b, const char *name, const struct cfg_cgroup *cfg,
		  char *path, size_t len);
/* Whether a vassal's `cgroup.parent` (relative to the cgroup2 root) stays inside the
 * emperor's own cgroup: relative, no empty, "." or ".." component, and below the
 * emperor's cgroup when cgroups are in use. 0, or -1 with why (tyrant mode). */
int cgroup_parent_check(const struct cgroup_base *b, const char *parent, char *why, size_t len);
/* In the parent: the cgroup's cgroup.procs, opened for cgroup_join_fd() (close-on-exec;
 * the caller closes it). -1 with errno. */
int cgroup_procs_open(const char *path);
/* In the child, before exec: join the cgroup whose cgroup.procs is open on procs_fd
 * (one write: safe in a vfork'd child). 0, or -1 with errno. */
int cgroup_join_fd(int procs_fd);
/* Kills every process in it (cgroup.kill). */
int cgroup_kill(const char *path);
/* Removes an empty cgroup; what is still there is killed first. */
void cgroup_remove(const char *path);

#endif
