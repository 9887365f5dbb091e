/* notify.h — the sd_notify protocol, both sides. A sender writes "READY=1",
 * "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..." (newline-separated) as one
 * datagram to $NOTIFY_SOCKET, or as one packet on the emperor's SOCK_SEQPACKET
 * channel. A receiver owns a datagram socket with SO_PASSCRED, so every message
 * arrives with the sender's pid from the kernel, not from the message. */
#ifndef EMPEROR_NOTIFY_H
#define EMPEROR_NOTIFY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NOTIFY_MSG_MAX 4096

/* Sends msg to $NOTIFY_SOCKET if set; 0 when sent or not set, -1 on error (logged). */
int notify_parent(const char *msg);
/* Sends msg as one packet on a connected socket (the EMPEROR_FD channel). */
int notify_fd(int fd, const char *msg);
/* True if the message contains the line "KEY=VALUE" exactly (e.g. "READY=1"). */
bool notify_has(const char *msg, const char *line);
/* The value of "KEY=..." in msg, copied into out; NULL if absent. */
const char *notify_get(const char *msg, const char *key, char *out, size_t len);

struct notify_server;
typedef void notify_cb(struct notify_server *ns, pid_t sender, const char *msg);

struct notify_server {
	int fd;
	char address[108];          /* the value for NOTIFY_SOCKET ("@..." abstract) */
	ev_io io;
	struct ev_loop *loop;
	notify_cb *cb;
	void *data;
};

/* Opens an abstract-namespace datagram socket named after tag and our pid. */
int notify_server_open(struct notify_server *ns, struct ev_loop *loop, const char *tag,
		       notify_cb *cb, void *data);
void notify_server_close(struct notify_server *ns);

#endif
