/* vsock.h — a vassal's listening sockets: taken over from the sockets given (by socket
 * activation, LISTEN_FDS: systemd, the emperor, or the master's own previous image;
 * in the emperor, an on-demand vassal's held ones) when the address matches, bound
 * otherwise, the given ones no socket wants closed; kept open across the master's
 * re-exec. */
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

/* Sockets handed to a table being set up: socket activation's (LISTEN_FDS) for the
 * master; for the emperor's on-demand holder (emperor/demand.c), the ones it holds and
 * those an upgrade handed across. Each one's address and type are read from its fd
 * once; a taken one's fd becomes -1. */
struct vsock_given {
	struct vsock *v;        /* name where known (else NULL), addr, type, fd */
	size_t n, cap;
	const char *label;      /* the leftovers' log lines start with it */
	bool ours;              /* a leftover's unix socket file is removed too */
};
/* Adds fd (and its socket's name, or NULL). 0, or -1 when out of memory (fd closed). */
int vsock_given_add(struct vsock_given *g, int fd, const char *name);
/* Moves the socket of from bound to addr with type into to: its fd, or -1 if from has
 * none (or out of memory). */
int vsock_given_move(struct vsock_given *to, struct vsock_given *from,
		     const struct cfg_addr *addr, int type);
/* Closes every socket of g (logged as unwanted) and empties it. */
void vsock_given_close(struct vsock_given *g);
/* Moves t's sockets into g (t is left empty, nothing closed). 0, or -1 when out of
 * memory (t unchanged). */
int vsock_given_take_table(struct vsock_given *g, struct vsock_table *t);
/* t becomes socks[0..n) (stream sockets: the workers'), then, if cfg is not NULL, its
 * gateways' and mule farms' sockets: each takes the given socket bound to its address
 * with its type, or is bound anew (close-on-exec, blocking, the config's backlog, unix
 * mode and owner). The given sockets none took are closed, logged; g is left empty.
 * 0, or -1 if any socket could not be bound (logged; t holds every other one). */
int vsock_adopt(struct vsock_table *t, const struct cfg_socket *socks, size_t n,
		const struct config *cfg, struct vsock_given *g);
/* The master's: checks the fd limit can hold every socket (raising the soft limit if
 * it must), then vsock_adopt() of cfg with the LISTEN_FDS sockets (if LISTEN_PID is
 * ours), each socket logged (kept or bound).
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
/* Removes a unix socket's file (nothing for an abstract or inet address). */
void vsock_unlink(const char *name, const struct cfg_addr *addr);
/* Closes every socket; unlink_unix removes unix socket files (on a final stop). */
void vsock_close_all(struct vsock_table *t, bool unlink_unix);

#endif
