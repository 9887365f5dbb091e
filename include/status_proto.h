/* status_proto.h — the protocol of a vassal master's status socket, shared by its
 * server (vassal/status.c) and its client (the emperor's control, emperor/): where
 * the socket is, and the requests it answers. The socket is a unix stream socket in
 * the abstract namespace, "@emperor-vassal/<master pid>", so that the emperor (which
 * knows the pid) finds it without a file. One request line per connection:
 *   json      the master and every child (kind, pid, state, uptime, respawns, RSS, CPU)
 *   text      the same as a table
 *   metrics   Prometheus samples (no HELP/TYPE: the emperor merges and annotates)
 * and the one message of the emperor channel that is ours, not sd_notify's, about a
 * master's end: STATUS_MSG_IDLE. */
#ifndef EMPEROR_STATUS_PROTO_H
#define EMPEROR_STATUS_PROTO_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Sent by a master on its emperor channel (EMPEROR_FD, beside the sd_notify messages)
 * just before the graceful stop of `idle:`: its exit 0 that follows means "stopped for
 * being idle", shown as the state idle, not restarted until demand. */
#define STATUS_MSG_IDLE "X_IDLE=1"

/* The address as text, "@emperor-vassal/<pid>" (for logs). */
void status_address(pid_t master_pid, char *buf, size_t len);
/* The same as a sockaddr (its first byte NUL: abstract); returns its length. */
socklen_t status_sockaddr(pid_t master_pid, struct sockaddr_un *sun);

#endif
