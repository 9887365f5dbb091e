/* sockdiag.h — one question to the kernel's sock_diag (NETLINK_SOCK_DIAG) and its
 * answers, one message at a time: the master's idle count (idle.c, a dump of a
 * family's connections) and its accept-queue reading (backlog.c, one unix socket by
 * inode) share it. The kernel builds the answers inside send and recv themselves, so
 * nothing waits on another process; every call is MSG_DONTWAIT all the same. */
#ifndef EMPEROR_SOCKDIAG_H
#define EMPEROR_SOCKDIAG_H

#include <linux/netlink.h>

/* A NETLINK_SOCK_DIAG socket (close-on-exec), or -1 with errno. */
int sockdiag_open(void);
/* Sends req (its nlmsg_len set by the caller; its sequence number set here) and hands
 * each answer of that sequence to each(): 0 = go on, 1 = enough, -1 = fail. Returns 0
 * at NLMSG_DONE or when each() said enough; -1 with errno on an error answer, a
 * failed call, or no answer (EAGAIN). Answers to an earlier question are skipped. */
int sockdiag_ask(int fd, struct nlmsghdr *req,
		 int (*each)(const struct nlmsghdr *h, void *arg), void *arg);

#endif
