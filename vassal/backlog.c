/* backlog.c — the accept queue's length of a listening socket (see backlog.h). TCP
 * answers through getsockopt on the socket itself; a unix socket through sock_diag,
 * asked for its inode with UDIAG_SHOW_RQLEN (for a listening socket the "read queue"
 * is the connections not yet accepted, the "write queue" its backlog), through
 * sockdiag.c, which never waits. */
#include "backlog.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "log.h"
#include "sockdiag.h"

void backlog_init(struct backlog *b)
{
	b->nl_fd = -1;
}

static int tcp_queued(int fd, int *max)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;

	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	if (max)
		*max = (int)ti.tcpi_sacked;
	return (int)ti.tcpi_unacked;
}

/* The UNIX_DIAG_RQLEN attribute of one unix_diag_msg reply; -1 if absent. */
static int rqlen_of(const struct nlmsghdr *h, int *max)
{
	const struct unix_diag_msg *msg = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof *msg);
	const struct nlattr *a = (const struct nlattr *)(const void *)(msg + 1);

	while (len >= (int)sizeof *a && a->nla_len >= sizeof *a && a->nla_len <= len) {
		if (a->nla_type == UNIX_DIAG_RQLEN && a->nla_len >= NLA_HDRLEN + sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *q = (const void *)((const char *)a + NLA_HDRLEN);
			if (max)
				*max = (int)q->udiag_wqueue;
			return (int)q->udiag_rqueue;
		}
		len -= NLA_ALIGN(a->nla_len);
		a = (const struct nlattr *)(const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	errno = ENODATA;
	return -1;
}

/* The one answer about the asked socket: its queue, or -1 with errno. */
struct rq_answer {
	int queued, err;
	int *max;
};

static int on_rqlen(const struct nlmsghdr *h, void *arg)
{
	struct rq_answer *q = arg;

	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
		return 0;
	q->queued = rqlen_of(h, q->max);
	q->err = errno;
	return 1;
}

static int unix_queued(struct backlog *b, int fd, int *max)
{
	struct { struct nlmsghdr h; struct unix_diag_req r; } req;
	struct rq_answer q = { .queued = -1, .err = ENODATA, .max = max };
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	if (b->nl_fd < 0 && (b->nl_fd = sockdiag_open()) < 0)
		return -1;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0U;
	req.r.udiag_ino = (unsigned)st.st_ino;
	req.r.udiag_show = UDIAG_SHOW_RQLEN;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0U; /* INET_DIAG_NOCOOKIE */
	if (sockdiag_ask(b->nl_fd, &req.h, on_rqlen, &q) < 0)
		return -1;
	errno = q.err;
	return q.queued;
}

int backlog_queued(struct backlog *b, int fd, int family, int *max)
{
	if (family == AF_INET || family == AF_INET6)
		return tcp_queued(fd, max);
	if (family == AF_UNIX)
		return unix_queued(b, fd, max);
	errno = EAFNOSUPPORT;
	return -1;
}
