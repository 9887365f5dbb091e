/* spooler.h — the spooler processes (vassal/spooler.c). */
#ifndef EMPEROR_SPOOLER_H
#define EMPEROR_SPOOLER_H

#include "master.h"

/* Starts the config's spooler processes, if any. */
int spooler_start(struct master *m);

#endif
