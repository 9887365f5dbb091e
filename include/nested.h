/* nested.h — the nested emperor (vassal/nested.c). */
#ifndef EMPEROR_NESTED_H
#define EMPEROR_NESTED_H

#include "master.h"

/* Starts the emperor binary on the config's `emperor: dir`, if any. -1 if it could
 * not start (logged; respawned with backoff). */
int nested_start(struct master *m);

#endif
