/* backlog.h — how many connections wait in a listening socket's accept queue, as the
 * kernel tells it: TCP_INFO on a listening TCP socket (tcpi_unacked is the queue's
 * length, tcpi_sacked its limit), sock_diag's UNIX_DIAG_RQLEN for a unix stream socket
 * (one netlink socket, opened at the first unix query). Read by the worker scaling
 * (scale.c) only while a range is configured; nothing here keeps a timer. */
#ifndef EMPEROR_BACKLOG_H
#define EMPEROR_BACKLOG_H

struct backlog {
	int nl_fd;            /* NETLINK_SOCK_DIAG, -1 until a unix socket is asked */
};

/* The netlink socket, once opened, lives as long as the master (close-on-exec). */
void backlog_init(struct backlog *b);
/* Connections queued on listening socket fd of this family (AF_INET, AF_INET6,
 * AF_UNIX), and its limit into *max (may be NULL); -1 with errno if the kernel
 * does not tell. */
int backlog_queued(struct backlog *b, int fd, int family, int *max);

#endif
