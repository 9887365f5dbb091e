/* status.h — the vassal master's status socket: a unix stream socket in the abstract
 * namespace, "@emperor-vassal/<master pid>", so the emperor (which knows the pid)
 * and emperorctl find it without a file. One request line per connection:
 *   json      the master and every child (kind, pid, state, uptime, respawns, RSS, CPU)
 *   text      the same as a table
 *   metrics   Prometheus samples (no HELP/TYPE: the emperor merges and annotates)
 * Only root and the master's own uid are answered. A slow client never blocks the
 * master: each connection has its own watchers and a deadline. */
#ifndef EMPEROR_STATUS_H
#define EMPEROR_STATUS_H

#include <stddef.h>
#include <sys/types.h>

struct master;

int status_open(struct master *m);
void status_close(struct master *m);
/* Fills a sockaddr_un path (leading '@' for abstract) for a master's pid. */
void status_address(pid_t master_pid, char *buf, size_t len);

#endif
