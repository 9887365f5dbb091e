/* status_proto.h — the protocol of a vassal master's status socket, shared by its
 * server (vassal/status.c) and its client (the emperor's control, emperor/): where
 * the socket is, and the requests it answers. The socket is a unix stream socket in
 * the abstract namespace, "@emperor-vassal/<master pid>", so that the emperor (which
 * knows the pid) finds it without a file. One request line per connection:
 *   json      the master and every child (kind, pid, state, uptime, respawns, RSS, CPU)
 *   text      the same as a table
 *   metrics   Prometheus samples (no HELP/TYPE: the emperor merges and annotates) */
#ifndef EMPEROR_STATUS_PROTO_H
#define EMPEROR_STATUS_PROTO_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The address as text, "@emperor-vassal/<pid>" (for logs). */
void status_address(pid_t master_pid, char *buf, size_t len);
/* The same as a sockaddr (its first byte NUL: abstract); returns its length. */
socklen_t status_sockaddr(pid_t master_pid, struct sockaddr_un *sun);

#endif
