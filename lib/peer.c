/* peer.c — credentials of the other end of a unix socket (see peer.h). */
#include "peer.h"

#include <unistd.h>

static bool peer_read(int fd, struct ucred *uc)
{
	socklen_t len = sizeof *uc;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &len) == 0 && len == sizeof *uc)
		return true;
	uc->pid = 0;
	uc->uid = (uid_t)-1;
	uc->gid = (gid_t)-1;
	return false;
}

bool peer_allowed(int fd, struct ucred *uc)
{
	return peer_read(fd, uc) && (uc->uid == 0 || uc->uid == getuid());
}

bool peer_is(int fd, pid_t pid, struct ucred *uc)
{
	return peer_allowed(fd, uc) && uc->pid == pid;
}
