/* mule.c — the reference mule: a background program of a vassal. It takes its farm's
 * datagram socket by socket activation (fd 3, LISTEN_FDS=1) and logs every message it
 * receives as "mule NAME ID got: TEXT"; with --out FILE it also appends each message
 * as one line to FILE (O_APPEND, one write per message). SIGTERM or SIGHUP: exit 0.
 * Without LISTEN_FDS it just waits for its stop signal (a mule need not take
 * messages). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int farm_fd(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

	if (!fds || atoi(fds) < 1 || (pid && atoi(pid) != (int)getpid()))
		return -1;
	return 3;
}

int main(int argc, char **argv)
{
	const char *out = NULL, *name = getenv("MULE_NAME"), *id = getenv("MULE_ID");
	struct sigaction sa = { .sa_handler = on_stop };
	char ident[96], buf[65536 + 1];
	int fd = farm_fd(), outfd = -1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else {
			fprintf(stderr, "usage: mule [--out FILE]\n");
			return 2;
		}
	}
	snprintf(ident, sizeof ident, "mule %s %s", name ? name : "-", id ? id : "-");
	log_init(ident);
	if (out && (outfd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		log_fatal("%s: %s", out, strerror(errno));
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: recv() returns EINTR */
	sigaction(SIGHUP, &sa, NULL);
	log_info("waiting for messages on fd %d", fd);
	while (!stop) {
		ssize_t n = fd >= 0 ? recv(fd, buf, sizeof buf - 1, 0) : (pause(), -1);
		if (n < 0) {
			if (errno != EINTR)
				log_fatal("recv: %s", strerror(errno));
			continue;
		}
		buf[n] = '\0';
		log_info("got: %s", buf);
		buf[n] = '\n';
		if (outfd >= 0 && write(outfd, buf, (size_t)n + 1) < 0)
			log_errno("write %s", out);
	}
	log_info("stopped");
	return 0;
}
