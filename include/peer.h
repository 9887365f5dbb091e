/* peer.h — who is at the other end of a unix stream socket (SO_PEERCRED): the one
 * check the emperor's control socket and a master's status socket make of their
 * clients, and the check the emperor makes of a master it queries. */
#ifndef EMPEROR_PEER_H
#define EMPEROR_PEER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The peer's credentials in *uc (pid 0, uid -1 when they cannot be read): true if
 * it is root or our own uid, the only clients a control or status socket serves. */
bool peer_allowed(int fd, struct ucred *uc);
/* True if the peer is the process pid (for a connected client socket: the process
 * that listen()ed), running as root or our own uid. An abstract socket name can be
 * taken by anyone; this tells the master from an impostor. *uc as above. */
bool peer_is(int fd, pid_t pid, struct ucred *uc);

#endif
