/* mule.c — the reference mule: a background program of a vassal. It takes its farm's
 * datagram socket by socket activation (fd 3, LISTEN_FDS=1) and logs every message it
 * receives as "mule NAME ID got: TEXT"; with --out FILE it also appends each message
 * as one line to FILE (O_APPEND, one write per message). A datagram longer than
 * MSG_MAX (the master's MULE_MSG_MAX) is dropped with a warning, never cut short.
 * SIGTERM or SIGHUP: it takes the messages already queued on the farm socket, then
 * exits 0 — a graceful reload stops the workers (the senders) before the mules, so
 * nothing they sent is lost. The signals arrive through a signalfd polled with the
 * socket: no window where a stop signal is missed while blocked in recv().
 * --delay MS sleeps after each message (a slow mule, for tests). Without LISTEN_FDS it
 * just waits for its stop signal (a mule need not take messages). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MSG_MAX 65536 /* MULE_MSG_MAX in include/mules.h */

struct mule {
	int fd;                 /* the farm socket, -1 without one */
	int outfd;              /* --out, -1 without */
	const char *out;
	long delay_ms;          /* --delay */
	char buf[MSG_MAX + 1];
};

static int farm_fd(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");

	if (!fds || atoi(fds) < 1 || (pid && atoi(pid) != (int)getpid()))
		return -1;
	return 3;
}

/* Takes one message if one is queued: 1 taken, 0 none (another mule was quicker). */
static int take_one(struct mule *mu)
{
	/* MSG_TRUNC: n is the datagram's real length, even if longer than buf. */
	ssize_t n = recv(mu->fd, mu->buf, sizeof mu->buf, MSG_TRUNC | MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_fatal("recv: %s", strerror(errno));
		return 0;
	}
	if (n > MSG_MAX) {
		log_warn("dropped a message of %zd bytes: larger than %d", n, MSG_MAX);
		return 1;
	}
	mu->buf[n] = '\0';
	log_info("got: %s", mu->buf);
	mu->buf[n] = '\n';
	if (mu->outfd >= 0 && write(mu->outfd, mu->buf, (size_t)n + 1) < 0)
		log_errno("write %s", mu->out);
	if (mu->delay_ms > 0) {
		struct timespec ts = { mu->delay_ms / 1000, (mu->delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return 1;
}

static int parse_args(int argc, char **argv, struct mule *mu)
{
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			mu->out = argv[++i];
		} else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc) {
			mu->delay_ms = strtol(argv[++i], &end, 10);
			if (*end || mu->delay_ms < 0 || mu->delay_ms > 60000)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct mule mu = { .fd = -1, .outfd = -1 };
	const char *name = getenv("MULE_NAME"), *id = getenv("MULE_ID");
	struct pollfd pfd[2];
	char ident[96];
	sigset_t stops;
	int sigfd;

	if (parse_args(argc, argv, &mu) < 0) {
		fprintf(stderr, "usage: mule [--out FILE] [--delay MS]\n");
		return 2;
	}
	snprintf(ident, sizeof ident, "mule %s %s", name ? name : "-", id ? id : "-");
	log_init(ident);
	if (mu.out && (mu.outfd = open(mu.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		log_fatal("%s: %s", mu.out, strerror(errno));
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &stops, NULL) < 0 || (sigfd = signalfd(-1, &stops, SFD_CLOEXEC)) < 0)
		log_fatal("signalfd: %s", strerror(errno));
	mu.fd = farm_fd();
	pfd[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = mu.fd, .events = POLLIN };
	log_info("waiting for messages on fd %d", mu.fd);
	while (!(pfd[0].revents & POLLIN)) {
		if (poll(pfd, mu.fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
			log_fatal("poll: %s", strerror(errno));
		if (pfd[1].revents & POLLIN)
			take_one(&mu);
	}
	int drained = 0;
	while (mu.fd >= 0 && take_one(&mu))
		drained++;
	log_info("stopped (%d queued messages taken on the way out)", drained);
	return 0;
}
