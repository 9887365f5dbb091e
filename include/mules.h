/* mules.h — mules and their farm sockets (vassal/mules.c). The farms are the mules
 * module's own state (struct mules), reached from the master by one pointer. */
#ifndef EMPEROR_MULES_H
#define EMPEROR_MULES_H

#include "master.h"

#define MULE_MSG_MAX 65536

/* Names the farm sockets (bound by vsock.c before the workers start: they get the
 * addresses). 0, or -1 logged. */
int mules_open(struct master *m);
void mules_free(struct master *m);
/* Starts every mule; each one that could not start is logged and respawned with
 * backoff, and -1 returned. */
int mules_start(struct master *m);
/* "MULE_<NAME>_SOCKET=@..." for every farm, to add to a child's environment. */
char **mules_env(const struct master *m);

#endif
