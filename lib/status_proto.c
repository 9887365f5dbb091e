/* status_proto.c — where a master's status socket is (see status_proto.h). */
#include "status_proto.h"

#include <stdio.h>
#include <string.h>

void status_address(pid_t master_pid, char *buf, size_t len)
{
	snprintf(buf, len, "@emperor-vassal/%d", (int)master_pid);
}

socklen_t status_sockaddr(pid_t master_pid, struct sockaddr_un *sun)
{
	size_t len;

	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	status_address(master_pid, sun->sun_path, sizeof sun->sun_path);
	len = strlen(sun->sun_path);
	sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}
