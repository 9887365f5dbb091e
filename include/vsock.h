/* vsock.h — a vassal's listening sockets: taken over from socket activation
 * (LISTEN_FDS: systemd, the emperor, or the master's own previous image) when the
 * address matches, bound otherwise; kept open across the master's re-exec. */
#ifndef EMPEROR_VSOCK_H
#define EMPEROR_VSOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct vsock {
	char *name;             /* a socket's name, or "gateway-N" / "gateway-N-sub" */
	struct cfg_addr addr;
	int type;               /* SOCK_STREAM, or SOCK_DGRAM for a subscription server */
	int fd;
	bool inherited;
};

/* v[0 .. n_workers) are the config's sockets (the workers get them); after them come
 * the gateways' listening and subscription sockets (only the routers use them) and
 * the mule farms' datagram sockets ("mule-NAME"). */
struct vsock_table {
	struct vsock *v;
	size_t n, n_workers;
};

/* Checks the fd limit can hold every socket (raising the soft limit if it must), takes
 * the LISTEN_FDS sockets (if LISTEN_PID is ours), matches them to cfg by address,
 * binds the others, closes inherited ones the config no longer names.
 * Returns 0, or -1 after logging which socket failed and why. */
int vsock_setup(struct vsock_table *t, const struct config *cfg);
/* The workers' sockets (every socket: vsock_every_fd), any number of them: fds and
 * "http:admin" for LISTEN_FDNAMES in the same order, both malloc'd (free them).
 * 0, or -1 when out of memory. */
int vsock_worker_fds(const struct vsock_table *t, int **fds, char **names);
int vsock_every_fd(const struct vsock_table *t, int **fds, char **names);
/* The same into the caller's arrays: fds has room for every socket; names is cut at
 * len (prefer the two above). */
void vsock_fds(const struct vsock_table *t, int *fds, char *names, size_t len);
/* Every socket (workers' and gateways'), for the re-exec. */
void vsock_all_fds(const struct vsock_table *t, int *fds, char *names, size_t len);
/* The fd of the socket with this name, or -1. */
int vsock_find(const struct vsock_table *t, const char *name);
/* One stream socket of a config bound and listening exactly as the master binds it
 * (the emperor binds an on-demand vassal's sockets with it): close-on-exec, blocking;
 * -1 after logging why. */
int vsock_bind(const struct cfg_socket *s);
/* fd is bound to addr. */
bool vsock_bound_to(int fd, const struct cfg_addr *addr);
/* Removes a unix socket's file (nothing for an abstract or inet address). */
void vsock_unlink(const char *name, const struct cfg_addr *addr);
/* Closes every socket; unlink_unix removes unix socket files (on a final stop). */
void vsock_close_all(struct vsock_table *t, bool unlink_unix);

#endif
