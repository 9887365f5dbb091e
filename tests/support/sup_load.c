/* sup_load.c — a background load generator for reload tests: one thread issuing
 * GETs back to back (a new connection each, or one keep-alive connection) and
 * counting outcomes, so a test can assert that no request failed while it reloaded
 * and which worker pids answered. A keep-alive connection the server closed between
 * two requests (the unavoidable keep-alive race) is retried and counted apart. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* per request: longer counts as an I/O error. What the load proves is "not refused,
 * not reset"; a graceful reload of an interpreted app holds requests in the accept
 * queue for the app's whole start, seconds on a loaded machine */
#define LOAD_TIMEOUT_MS 15000

struct sup_load {
	pthread_t thread;
	pthread_mutex_t lock;      /* guards stats */
	struct sup_load_stats stats;
	atomic_int stopping;
	char host[64];
	int port;
	enum sup_load_mode mode;
	char request[1024];
	size_t request_len;
};

static void load_lock(struct sup_load *l)
{
	int err = pthread_mutex_lock(&l->lock);

	if (err) {
		fprintf(stderr, "sup: pthread_mutex_lock: %s\n", strerror(err));
		abort();
	}
}

static void load_unlock(struct sup_load *l)
{
	int err = pthread_mutex_unlock(&l->lock);

	if (err) {
		fprintf(stderr, "sup: pthread_mutex_unlock: %s\n", strerror(err));
		abort();
	}
}

/* Counts a failure in *counter (a field of l->stats). */
static void count_failure(struct sup_load *l, long *counter)
{
	load_lock(l);
	(*counter)++;
	if (counter != &l->stats.stale_retries)
		l->stats.requests++;
	load_unlock(l);
}

static void count_response(struct sup_load *l, const struct sup_http *r)
{
	const char *hdr = sup_http_header(r, "X-Worker-Pid");
	pid_t pid = hdr ? (pid_t)atoi(hdr) : 0;
	struct sup_load_stats *s = &l->stats;
	int known = 0;

	load_lock(l);
	s->requests++;
	if (r->status == 200)
		s->ok++;
	else
		s->non200++;
	for (int i = 0; i < s->n_pids; i++)
		known |= s->pids[i] == pid;
	if (pid > 0 && !known && s->n_pids < SUP_LOAD_MAX_PIDS)
		s->pids[s->n_pids++] = pid;
	load_unlock(l);
}

static int response_closes(const struct sup_http *r)
{
	const char *conn = sup_http_header(r, "Connection");

	return conn && strcasecmp(conn, "close") == 0;
}

/* One request; *c is the open keep-alive connection, or NULL. */
static void load_one(struct sup_load *l, struct sup_conn **c)
{
	int fresh = *c == NULL, rc;
	struct sup_http r;

	if (fresh && !(*c = sup_conn_open(l->host, l->port, LOAD_TIMEOUT_MS))) {
		count_failure(l, &l->stats.connect_errors);
		sup_poll_pause(); /* no busy loop against a refusing port */
		return;
	}
	rc = sup_conn_send(*c, l->request, l->request_len, LOAD_TIMEOUT_MS);
	if (rc == 0)
		rc = sup_conn_read_response(*c, &r, LOAD_TIMEOUT_MS);
	if (rc < 0) {
		int stale = !fresh && (errno == ENODATA || errno == EPIPE || errno == ECONNRESET);

		sup_conn_close(*c);
		*c = NULL;
		count_failure(l, stale ? &l->stats.stale_retries : &l->stats.io_errors);
		return;
	}
	count_response(l, &r);
	if (l->mode == SUP_LOAD_NEW_CONN || response_closes(&r)) {
		sup_conn_close(*c);
		*c = NULL;
	}
	sup_http_fini(&r);
}

static void *load_main(void *arg)
{
	struct sup_load *l = arg;
	struct sup_conn *c = NULL;
	sigset_t all;

	/* Signals are for the test's main thread. */
	if (sigfillset(&all) < 0 || pthread_sigmask(SIG_BLOCK, &all, NULL) != 0)
		fprintf(stderr, "sup: load: blocking signals failed\n");
	sup_net_quiet(1);
	while (!atomic_load(&l->stopping))
		load_one(l, &c);
	sup_conn_close(c);
	return NULL;
}

struct sup_load *sup_load_start_mode(const char *host, int port, const char *path,
				     enum sup_load_mode mode)
{
	struct sup_load *l = calloc(1, sizeof *l);
	int n, err;

	if (!l)
		return NULL;
	snprintf(l->host, sizeof l->host, "%s", host);
	l->port = port;
	l->mode = mode;
	n = snprintf(l->request, sizeof l->request,
		     strchr(host, ':') ? "GET %s HTTP/1.1\r\nHost: [%s]:%d\r\nConnection: %s\r\n\r\n"
				       : "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: %s\r\n\r\n",
		     path, host, port, mode == SUP_LOAD_KEEPALIVE ? "keep-alive" : "close");
	l->request_len = n > 0 && (size_t)n < sizeof l->request ? (size_t)n : 0;
	if ((err = pthread_mutex_init(&l->lock, NULL)) != 0 ||
	    (err = pthread_create(&l->thread, NULL, load_main, l)) != 0) {
		fprintf(stderr, "sup: starting the load thread: %s\n", strerror(err));
		free(l);
		return NULL;
	}
	return l;
}

struct sup_load *sup_load_start(const char *host, int port, const char *path)
{
	return sup_load_start_mode(host, port, path, SUP_LOAD_NEW_CONN);
}

void sup_load_snapshot(struct sup_load *l, struct sup_load_stats *out)
{
	load_lock(l);
	*out = l->stats;
	load_unlock(l);
}

int sup_load_wait_ok(struct sup_load *l, long min_ok, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;
	struct sup_load_stats s;

	for (;;) {
		sup_load_snapshot(l, &s);
		if (s.ok >= min_ok)
			return 0;
		if (sup_now_ms() >= deadline) {
			sup_load_print("sup: load did not reach its count", &s);
			return -1;
		}
		sup_poll_pause();
	}
}

void sup_load_stop(struct sup_load *l, struct sup_load_stats *out)
{
	int err;

	atomic_store(&l->stopping, 1);
	if ((err = pthread_join(l->thread, NULL)) != 0)
		fprintf(stderr, "sup: pthread_join: %s\n", strerror(err));
	if (out)
		*out = l->stats;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void sup_load_print(const char *label, const struct sup_load_stats *s)
{
	fprintf(stderr, "%s: %ld requests: %ld ok, %ld non-200, %ld connect errors, %ld I/O errors, "
			"%ld stale keep-alive retries; %d pids:",
		label, s->requests, s->ok, s->non200, s->connect_errors, s->io_errors, s->stale_retries,
		s->n_pids);
	for (int i = 0; i < s->n_pids; i++)
		fprintf(stderr, " %d", (int)s->pids[i]);
	fputc('\n', stderr);
}
