/* idle.h — a vassal's idle stop (`idle:`, vassal/idle.c): the master counts the open
 * connections of its workers' sockets with sock_diag, without touching a worker, and
 * stops gracefully when it has seen none for that long. No timer without `idle:`. */
#ifndef EMPEROR_IDLE_H
#define EMPEROR_IDLE_H

#include "vsock.h"

struct master;

/* Starts the one timer when the config sets idle; 0, or -1 when out of memory. */
int idle_start(struct master *m);
void idle_free(struct master *m);
/* The connections open or queued on the first n of t's sockets (TCP: every state but
 * LISTEN, TIME_WAIT and CLOSE, by local address and port; unix: the connected sockets
 * that carry a listener's name, and the listener's accept queue), or -1 with errno when sock_diag failed. */
int idle_connections(const struct vsock_table *t, size_t n);

#endif
