/* tyrant.h — emperor/tyrant.c: tyrant mode, each vassal runs as its file's owner. */
#ifndef EMPEROR_TYRANT_H
#define EMPEROR_TYRANT_H

#include <stddef.h>

struct config;
struct emperor;
struct privs;
struct vassal;

/* Opens a vassal's file for the emperor to read once its owner checks pass (the fd,
 * and in p whom it runs as); -1 with the reason, which quotes no content. */
int tyrant_open(const struct emperor *e, const struct vassal *v, struct privs *p, char *why,
		size_t len);
/* What tyrant mode refuses in a config the owner may write: a cgroup.parent outside
 * the emperor's cgroup, on-demand (its sockets bound by the emperor, as root) unless
 * the owner is root. 0, or -1 with the reason naming the file and the value. */
int tyrant_config_ok(const struct emperor *e, const struct vassal *v, const struct config *cfg,
		     char *why, size_t len);

#endif
