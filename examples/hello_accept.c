/* hello_accept.c — how the reference worker takes connections so that several
 * workers on the same inherited sockets share them evenly. Every worker's libev loop
 * would be woken by every connection (epoll without EPOLLEXCLUSIVE, which libev
 * cannot set), and the one the kernel woke first — in practice the worker started
 * last — would take nearly all of them. So one thread of the worker, the acceptor,
 * waits directly in epoll_wait() on an epoll set of its own holding the listening
 * sockets with EPOLLEXCLUSIVE: the kernel wakes one idle acceptor per connection,
 * the first in the socket's wait queue. After taking connections the acceptor
 * removes and adds its sockets again, which puts it at the end of that queue, so the
 * idle workers take turns. (EPOLLEXCLUSIVE has no effect on an epoll set that is
 * itself watched by another epoll, as an ev_io on it would be: the wait must be
 * direct.) The acceptor hands the fds to the loop (ev_async) and waits until the
 * loop has taken them: a worker busy in its loop does not accept more meanwhile.
 * SO_REUSEPORT is no answer here: the sockets are inherited, one per address. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hello_worker.h"
#include "log.h"

#define STOP_TOKEN      UINT32_MAX
#define ACCEPT_BATCH    64      /* connections taken from one socket per wake-up */

static int watch_listener(struct acceptor *a, uint32_t i, int fd, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | (a->exclusive ? EPOLLEXCLUSIVE : 0),
				  .data.u32 = i };

	return epoll_ctl(a->epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev);
}

/* To the end of the socket's queue of waiters: the other idle workers go first. */
static void rotate(struct worker *w, uint32_t i)
{
	if (watch_listener(&w->acc, i, w->ls[i].fd, EPOLL_CTL_DEL) < 0 ||
	    watch_listener(&w->acc, i, w->ls[i].fd, EPOLL_CTL_ADD) < 0)
		log_errno("acceptor: epoll_ctl(fd %d)", w->ls[i].fd);
}

static void queue_fd(struct acceptor *a, int fd)
{
	if (a->n_fds == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		int *fds = realloc(a->fds, cap * sizeof *fds);
		if (!fds) {
			log_warn("acceptor: out of memory: dropping a connection");
			close(fd);
			return;
		}
		a->fds = fds;
		a->cap = cap;
	}
	a->fds[a->n_fds++] = fd;
}

/* How many more connections --max-conns lets it take now (under mu). */
static size_t room(const struct acceptor *a)
{
	if (!a->max)
		return ACCEPT_BATCH;
	return a->open >= a->max ? 0 : a->max - a->open < ACCEPT_BATCH ? a->max - a->open : ACCEPT_BATCH;
}

/* Accepts what listener l has (up to a batch, or --max-conns); 1 if it ran out of fds. */
static int take(struct acceptor *a, struct listener *l)
{
	pthread_mutex_lock(&a->mu);
	size_t n_max = room(a);
	pthread_mutex_unlock(&a->mu);

	for (size_t n = 0; n < n_max; n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			pthread_mutex_lock(&a->mu);
			queue_fd(a, fd);
			a->open++;
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		log_errno("accept(fd %d, %s)", l->fd, l->name);
		return errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
	}
	return 0;
}

/* Hands the queued fds to the loop and waits until it has taken them (or a stop);
 * under --max-conns, also until one of them is closed if it holds its maximum. */
static int hand_over(struct worker *w)
{
	struct acceptor *a = &w->acc;
	int stop;

	pthread_mutex_lock(&a->mu);
	if (a->n_fds > 0)
		ev_async_send(w->loop, &a->async);
	while ((a->n_fds > 0 || (a->max && a->open >= a->max)) && !a->stop)
		pthread_cond_wait(&a->cv, &a->mu);
	stop = a->stop;
	pthread_mutex_unlock(&a->mu);
	return stop;
}

static void *acceptor_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[LISTEN_MAX + 1];
	const struct timespec pause = { 0, (long)(ACCEPT_PAUSE_S * 1e9) };

	for (;;) {
		int n = epoll_wait(w->acc.epfd, ev, LISTEN_MAX + 1, -1), out_of_fds = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_errno("acceptor: epoll_wait");
			return NULL;
		}
		for (int i = 0; i < n; i++)
			if (ev[i].data.u32 == STOP_TOKEN)
				return NULL;
			else
				out_of_fds |= take(&w->acc, &w->ls[ev[i].data.u32]);
		if (hand_over(w))
			return NULL;
		for (int i = 0; i < n; i++)
			rotate(w, ev[i].data.u32);
		if (out_of_fds)
			nanosleep(&pause, NULL);
	}
}

/* In the loop: the connections the acceptor took. */
static void accepted_cb(struct ev_loop *loop, ev_async *as, int revents)
{
	struct worker *w = CONTAINER_OF(as, struct worker, acc.async);
	struct acceptor *a = &w->acc;
	int *fds;
	size_t n;

	(void)loop, (void)revents;
	pthread_mutex_lock(&a->mu);
	fds = a->fds, n = a->n_fds;
	a->fds = NULL, a->n_fds = a->cap = 0;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < n; i++)
		conn_new(w, fds[i]);
	free(fds);
}

static int acceptor_setup(struct worker *w)
{
	struct acceptor *a = &w->acc;
	struct epoll_event stop = { .events = EPOLLIN, .data.u32 = STOP_TOKEN };

	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->epfd < 0 || a->stop_fd < 0 || epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->stop_fd, &stop) < 0)
		return -1;
	a->exclusive = 1;
	for (uint32_t i = 0; i < w->n_ls; i++) {
		if (watch_listener(a, i, w->ls[i].fd, EPOLL_CTL_ADD) == 0)
			continue;
		if (errno != EINVAL || !a->exclusive)
			return -1;
		log_warn("EPOLLEXCLUSIVE not supported: workers may share connections unevenly");
		a->exclusive = 0; /* a kernel before 4.5 */
		i--;
	}
	return 0;
}

void accept_closed(struct worker *w)
{
	struct acceptor *a = &w->acc;

	if (!a->max)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->open > 0)
		a->open--;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void accept_start(struct worker *w)
{
	struct acceptor *a = &w->acc;
	sigset_t all, old;
	int rc;

	a->max = w->opt.max_conns > 0 ? (size_t)w->opt.max_conns : 0;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	ev_async_init(&a->async, accepted_cb);
	ev_async_start(w->loop, &a->async);
	if (acceptor_setup(w) < 0)
		log_fatal("acceptor: %s", strerror(errno));
	/* Signals are the loop's: the acceptor blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->thread, NULL, acceptor_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		log_fatal("acceptor: pthread_create: %s", strerror(rc));
	a->running = 1;
}

/* Stops the acceptor; the connections it took are served (they are in flight). */
static void accept_stop(struct worker *w)
{
	struct acceptor *a = &w->acc;
	uint64_t one = 1;

	if (!a->running)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (write(a->stop_fd, &one, sizeof one) < 0)
		log_errno("acceptor: eventfd write");
	pthread_join(a->thread, NULL);
	a->running = 0;
	accepted_cb(w->loop, &a->async, 0);
	ev_async_stop(w->loop, &a->async);
	close(a->epfd);
	close(a->stop_fd);
}

void listeners_close(struct worker *w)
{
	accept_stop(w);
	for (size_t i = 0; i < w->n_ls; i++)
		if (close(w->ls[i].fd) < 0)
			log_errno("close(listening fd %d)", w->ls[i].fd);
	free(w->ls);
	w->ls = NULL;
	w->n_ls = 0;
}
