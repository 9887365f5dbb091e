/* vsock.h — a vassal's listening sockets: taken over from socket activation
 * (LISTEN_FDS: systemd, the emperor, or the master's own previous image) when the
 * address matches, bound otherwise; kept open across the master's re-exec. */
#ifndef EMPEROR_VSOCK_H
#define EMPEROR_VSOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct vsock {
	char *name;
	struct cfg_addr addr;
	int fd;
	bool inherited;
};

struct vsock_table {
	struct vsock *v;
	size_t n;
};

/* Takes the LISTEN_FDS sockets (if LISTEN_PID is ours), matches them to cfg by
 * address, binds the others, closes inherited ones the config no longer names.
 * Returns 0, or -1 after logging which socket failed and why. */
int vsock_setup(struct vsock_table *t, const struct config *cfg);
/* "http:admin" for LISTEN_FDNAMES; fds[] gets the fds in the same order. */
void vsock_fds(const struct vsock_table *t, int *fds, char *names, size_t len);
/* Closes every socket; unlink_unix removes unix socket files (on a final stop). */
void vsock_close_all(struct vsock_table *t, bool unlink_unix);

#endif
