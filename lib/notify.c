/* notify.c — sd_notify sender and receiver (see notify.h). The receiver's socket lives
 * in the abstract namespace, so there is no file to clean up; its name ends in 64
 * bits from getrandom(2), so no other process can guess and take it first. SO_PASSCRED
 * makes the kernel attach the sender's pid to every datagram. The sender never
 * waits: a full receiver loses the message (logged), not the sender's loop. */
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int notify_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof sun->sun_path || (path[0] != '/' && path[0] != '@'))
		return -1;
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

int notify_parent(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd, rc;

	if (!path || !*path)
		return 0;
	if (notify_addr(path, &sun, &len) < 0) {
		log_warn("NOTIFY_SOCKET=%s: not a unix socket path", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_errno("notify: socket");
		return -1;
	}
	/* Never waits: a parent that does not read its socket (its queue full) loses the
	 * message, not our loop. */
	rc = (int)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun,
			 len);
	if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		log_warn("notify: %s does not take messages now (its queue is full): dropped \"%.40s\"",
			 path, msg);
	else if (rc < 0)
		log_errno("notify: sendto %s", path);
	close(fd);
	return rc < 0 ? -1 : 0;
}

int notify_fd(int fd, const char *msg)
{
	ssize_t n;

	do
		n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

bool notify_has(const char *msg, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = msg; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

const char *notify_get(const char *msg, const char *key, char *out, size_t len)
{
	size_t n = strlen(key);

	for (const char *p = msg; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, n) != 0 || p[n] != '=')
			continue;
		size_t vlen = strcspn(p + n + 1, "\n");
		if (vlen >= len)
			vlen = len - 1;
		memcpy(out, p + n + 1, vlen);
		out[vlen] = '\0';
		return out;
	}
	return NULL;
}

static pid_t recv_one(int fd, char *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = &control, .msg_controllen = sizeof control };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	pid_t pid = 0;

	if (n < 0)
		return -1;
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(cm), sizeof uc);
			pid = uc.pid;
		} else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]); /* fd store is not supported: drop them */
		}
	}
	return pid;
}

static void notify_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct notify_server *ns = container_of(w, struct notify_server, io);
	char buf[NOTIFY_MSG_MAX + 1];

	(void)loop, (void)revents;
	for (int i = 0; i < 64; i++) { /* bounded: let other watchers run too */
		pid_t pid = recv_one(ns->fd, buf, sizeof buf);
		if (pid < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_errno("notify: recvmsg");
			return;
		}
		if (pid > 0)
			ns->cb(ns, pid, buf);
	}
}

int notify_server_open(struct notify_server *ns, struct ev_loop *loop, const char *tag,
		       notify_cb *cb, void *data)
{
	struct sockaddr_un sun;
	socklen_t len;
	uint64_t nonce;
	int one = 1;

	memset(ns, 0, sizeof *ns);
	ns->fd = -1;
	ns->loop = loop;
	ns->cb = cb;
	ns->data = data;
	if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce) {
		log_errno("notify: getrandom");
		return -1;
	}
	/* The nonce before the tag: a long vassal name is what gets cut, never the nonce. */
	snprintf(ns->address, sizeof ns->address, "@emperor/%d/%016llx/%s", (int)getpid(),
		 (unsigned long long)nonce, tag);
	ns->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ns->fd < 0) {
		log_errno("notify: socket");
		return -1;
	}
	if (notify_addr(ns->address, &sun, &len) < 0 ||
	    setsockopt(ns->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
	    bind(ns->fd, (struct sockaddr *)&sun, len) < 0) {
		log_errno("notify: bind %s", ns->address);
		close(ns->fd);
		ns->fd = -1;
		return -1;
	}
	ev_io_init(&ns->io, notify_readable, ns->fd, EV_READ);
	ev_io_start(loop, &ns->io);
	return 0;
}

void notify_server_close(struct notify_server *ns)
{
	if (ns->fd < 0)
		return;
	ev_io_stop(ns->loop, &ns->io);
	close(ns->fd);
	ns->fd = -1;
}
