/* sup_proxy.c — a TCP proxy on loopback, in a thread of the test process, between one
 * client (a vassal master) and a server (etcd): the test cuts the link (a partition:
 * the connections open are held, nothing passes either way, new ones are accepted and
 * held too, so the client's requests time out instead of being refused) and restores
 * it (the held connections are closed, new ones are forwarded again). Listens on a
 * free port below 32768; stopped (thread joined, every fd closed) by sup_proxy_stop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROXY_MAX 64

struct proxy_pair {
	int client, server;  /* server -1: held, never connected */
};

struct sup_proxy {
	int listen_fd, port, target_port;
	int wake[2];                /* the test → the thread: look at the flags */
	pthread_t thread;
	pthread_mutex_t lock;
	int cut, stopping;          /* under lock */
	int restored;               /* under lock: close the held connections */
	struct proxy_pair pairs[PROXY_MAX];
	int n_pairs;                /* the thread's own */
};

static void pair_close(struct sup_proxy *p, int i)
{
	close(p->pairs[i].client);
	if (p->pairs[i].server >= 0)
		close(p->pairs[i].server);
	p->pairs[i] = p->pairs[--p->n_pairs];
}

static int connect_target(const struct sup_proxy *p)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->target_port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void accept_one(struct sup_proxy *p, int cut)
{
	int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (p->n_pairs == PROXY_MAX) {
		close(fd);
		return;
	}
	p->pairs[p->n_pairs].client = fd;
	p->pairs[p->n_pairs].server = cut ? -1 : connect_target(p);
	if (!cut && p->pairs[p->n_pairs].server < 0) {
		close(fd); /* the server refuses: so does the proxy */
		return;
	}
	p->n_pairs++;
}

/* Copies what from has to to: 0, or -1 when either side is done. */
static int forward(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf), off = 0;

	if (n <= 0)
		return -1;
	while (off < n) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
	}
	return 0;
}

/* One round: poll the listener, the wake pipe and (unless cut) every pair. */
static void proxy_round(struct sup_proxy *p, int cut)
{
	struct pollfd pfd[2 + 2 * PROXY_MAX];
	int n = 0;

	pfd[n++] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
	for (int i = 0; !cut && i < p->n_pairs; i++) {
		pfd[n++] = (struct pollfd){ .fd = p->pairs[i].client, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = p->pairs[i].server, .events = POLLIN };
	}
	if (poll(pfd, (nfds_t)n, 1000) <= 0)
		return;
	if (pfd[0].revents) {
		char c[64];
		if (read(p->wake[0], c, sizeof c) < 0 && errno != EAGAIN)
			perror("sup_proxy: wake");
		return; /* the flags changed: look again before forwarding */
	}
	if (pfd[1].revents)
		accept_one(p, cut);
	for (int i = p->n_pairs - 1, k = 2 + 2 * i; !cut && i >= 0; i--, k -= 2) {
		if (k + 1 >= n)
			continue; /* accepted in this round */
		if ((pfd[k].revents && forward(p->pairs[i].client, p->pairs[i].server) < 0) ||
		    (pfd[k + 1].revents && forward(p->pairs[i].server, p->pairs[i].client) < 0))
			pair_close(p, i);
	}
}

static void *proxy_thread(void *arg)
{
	struct sup_proxy *p = arg;

	for (;;) {
		int cut, stopping, restored;

		pthread_mutex_lock(&p->lock);
		cut = p->cut, stopping = p->stopping, restored = p->restored;
		p->restored = 0;
		pthread_mutex_unlock(&p->lock);
		if (stopping)
			break;
		while (restored && p->n_pairs > 0)
			pair_close(p, p->n_pairs - 1);
		proxy_round(p, cut);
	}
	while (p->n_pairs > 0)
		pair_close(p, p->n_pairs - 1);
	return NULL;
}

static int proxy_listen(struct sup_proxy *p)
{
	for (int tries = 0; tries < 200; tries++) {
		int port = 12000 + (int)(random() % 8000);
		int fd = sup_listen_tcp("127.0.0.1", port, NULL);
		if (fd >= 0) {
			p->listen_fd = fd;
			p->port = port;
			return 0;
		}
	}
	fprintf(stderr, "sup_proxy: no free port below 32768\n");
	return -1;
}

struct sup_proxy *sup_proxy_start(int target_port)
{
	struct sup_proxy *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->target_port = target_port;
	pthread_mutex_init(&p->lock, NULL);
	if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		perror("sup_proxy: pipe2");
		free(p);
		return NULL;
	}
	if (proxy_listen(p) < 0 || pthread_create(&p->thread, NULL, proxy_thread, p) != 0) {
		if (p->port)
			close(p->listen_fd);
		close(p->wake[0]), close(p->wake[1]);
		free(p);
		return NULL;
	}
	return p;
}

int sup_proxy_port(const struct sup_proxy *p)
{
	return p->port;
}

static void proxy_set(struct sup_proxy *p, int *flag, int value)
{
	pthread_mutex_lock(&p->lock);
	*flag = value;
	pthread_mutex_unlock(&p->lock);
	if (write(p->wake[1], "x", 1) < 0 && errno != EAGAIN)
		perror("sup_proxy: wake");
}

void sup_proxy_cut(struct sup_proxy *p)
{
	proxy_set(p, &p->cut, 1);
}

void sup_proxy_restore(struct sup_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	p->restored = 1;
	pthread_mutex_unlock(&p->lock);
	proxy_set(p, &p->cut, 0);
}

void sup_proxy_stop(struct sup_proxy *p)
{
	if (!p)
		return;
	proxy_set(p, &p->stopping, 1);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	close(p->wake[0]), close(p->wake[1]);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
