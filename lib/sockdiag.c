/* sockdiag.c — a sock_diag question and its answers (see sockdiag.h). */
#include "sockdiag.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>

#define SOCKDIAG_RECV_MAX 100000 /* bounds a dump: datagrams read, whatever the host holds */

int sockdiag_open(void)
{
	return socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

/* One datagram's messages: 1 = the question is answered, 0 = read on, -1 = failed. */
static int each_message(char *buf, ssize_t n, unsigned seq,
			int (*each)(const struct nlmsghdr *, void *), void *arg)
{
	for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		int r;

		if (h->nlmsg_seq != seq)
			continue; /* a late answer to an earlier question */
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			errno = e->error ? -e->error : EPROTO;
			return -1;
		}
		if ((r = each(h, arg)) != 0)
			return r;
	}
	return 0;
}

int sockdiag_ask(int fd, struct nlmsghdr *req,
		 int (*each)(const struct nlmsghdr *h, void *arg), void *arg)
{
	static _Alignas(struct nlmsghdr) char buf[32768];
	static unsigned seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	req->nlmsg_seq = ++seq;
	if (sendto(fd, req, req->nlmsg_len, MSG_DONTWAIT, (struct sockaddr *)&kernel,
		   sizeof kernel) != (ssize_t)req->nlmsg_len)
		return -1;
	for (int k = 0; k < SOCKDIAG_RECV_MAX; k++) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1; /* EAGAIN: no (more) answer */
		if (n == 0) {
			errno = EPROTO;
			return -1;
		}
		if ((r = each_message(buf, n, seq, each, arg)) != 0)
			return r > 0 ? 0 : -1;
	}
	errno = E2BIG;
	return -1;
}
