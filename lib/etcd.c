/* etcd.c — the etcd client itself: its options and endpoints, libcurl's multi
 * interface driven by libev (an ev_io per curl socket, one ev_timer for curl's
 * timeouts), and the connection state machine over the endpoints (etcd_conn_step's
 * table) with its backoff and its log lines, one per change of state. The life of a
 * request is in etcd_req.c. */
#include "etcd_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

unsigned etcd_rand(struct etcd_client *c)
{
	c->rand_state = c->rand_state * 1103515245u + 12345u;
	return c->rand_state >> 8;
}

/* ---- curl ↔ libev -------------------------------------------------------------------- */

static void sock_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct etcd_sock *s = container_of(w, struct etcd_sock, io);
	struct etcd_client *c = s->c;
	int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
		    (revents & EV_WRITE ? CURL_CSELECT_OUT : 0), running;

	(void)loop;
	curl_multi_socket_action(c->multi, s->fd, flags, &running);
	etcd_pump(c);
}

static int curl_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct etcd_client *c = userp;
	struct etcd_sock *s = socketp;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			ev_io_stop(c->loop, &s->io);
			curl_multi_assign(c->multi, fd, NULL);
			LIST_REMOVE(s, link);
			free(s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s)
			return -1;
		s->c = c;
		s->fd = fd;
		ev_init(&s->io, sock_io_cb);
		LIST_INSERT_HEAD(&c->socks, s, link);
		curl_multi_assign(c->multi, fd, s);
	}
	ev_io_stop(c->loop, &s->io);
	ev_io_set(&s->io, fd, (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
	ev_io_start(c->loop, &s->io);
	return 0;
}

static void curl_timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct etcd_client *c = container_of(w, struct etcd_client, curl_timer);
	int running;

	(void)loop, (void)revents;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	etcd_pump(c);
}

/* curl asks for one timer; 0 means "soon", which must not call back into curl here. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct etcd_client *c = userp;

	(void)multi;
	ev_timer_stop(c->loop, &c->curl_timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&c->curl_timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(c->loop, &c->curl_timer);
	}
	return 0;
}

/* ---- the connection state ------------------------------------------------------------ */

void etcd_conn_event(struct etcd_client *c, int endpoint, int ok, const char *why)
{
	enum etcd_conn_event ev = ETCD_EV_OK;
	enum etcd_conn_state prev = c->state;
	int act;

	if (endpoint != c->cur || (c->state == ETCD_CONN_DOWN && !ok))
		return; /* an answer from an endpoint we already left */
	if (!ok)
		ev = ++c->tried >= c->n_endpoints ? ETCD_EV_FAIL_LAST : ETCD_EV_FAIL;
	else
		c->tried = 0;
	c->state = etcd_conn_step(c->state, ev, &act);
	if (act & ETCD_ACT_LOG_CONNECTED)
		log_info("etcd: connected to %s", c->endpoints[c->cur]);
	if (act & ETCD_ACT_LOG_RECONNECTED)
		log_info("etcd: reconnected to %s after %.0f ms", c->endpoints[c->cur],
			 (mono_now() - c->lost_at) * 1000);
	if (act & ETCD_ACT_LOG_LOST) {
		log_warn("etcd: lost %s: %s", c->endpoints[c->cur], why);
		c->lost_at = mono_now();
	}
	if (act & ETCD_ACT_LOG_DOWN) {
		log_warn("etcd: no endpoint answers (last: %s: %s); retrying with backoff",
			 c->endpoints[c->cur], why);
		if (prev == ETCD_CONN_INIT)
			c->lost_at = mono_now();
	}
	if (act & ETCD_ACT_RESET)
		c->attempt = 0;
	if (act & ETCD_ACT_NEXT)
		c->cur = (c->cur + 1) % c->n_endpoints;
	if (act & ETCD_ACT_BACKOFF) {
		double d = etcd_backoff(c->attempt++, c->backoff_min, c->backoff_max,
					(etcd_rand(c) % 1000) / 1000.0);
		c->tried = 0;
		ev_timer_set(&c->backoff_timer, d, 0.);
		ev_timer_start(c->loop, &c->backoff_timer);
	}
}

static void backoff_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct etcd_client *c = container_of(w, struct etcd_client, backoff_timer);
	struct etcd_req_list todo = TAILQ_HEAD_INITIALIZER(todo);
	struct etcd_req *r;
	int act;

	(void)loop, (void)revents;
	c->state = etcd_conn_step(c->state, ETCD_EV_TIMER, &act);
	if (!(act & ETCD_ACT_FLUSH))
		return;
	TAILQ_CONCAT(&todo, &c->queued, link);
	while ((r = TAILQ_FIRST(&todo))) {
		TAILQ_REMOVE(&todo, r, link);
		r->where = REQ_NOWHERE;
		etcd_req_submit(r);
	}
	etcd_pump(c);
}

/* ---- the client ------------------------------------------------------------------------- */

static int endpoints_set(struct etcd_client *c, const struct etcd_opts *o)
{
	if (o->n_endpoints <= 0) {
		log_warn("etcd: no endpoint given");
		return -1;
	}
	c->endpoints = calloc((size_t)o->n_endpoints + 1, sizeof *c->endpoints);
	if (!c->endpoints) {
		log_warn("etcd: out of memory");
		return -1;
	}
	for (int i = 0; i < o->n_endpoints; i++) {
		const char *e = o->endpoints[i];
		size_t len = strlen(e);
		if (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0) {
			log_warn("etcd: endpoint '%s': not http://HOST:PORT or https://HOST:PORT", e);
			return -1;
		}
		while (len > 0 && e[len - 1] == '/')
			len--;
		c->endpoints[i] = strndup(e, len);
		if (!c->endpoints[i]) {
			log_warn("etcd: out of memory");
			return -1;
		}
		c->n_endpoints++;
	}
	return 0;
}

/* curl_multi_init opens a socketpair (for curl_multi_wakeup) without close-on-exec and
 * offers no hook for it. New fds take the lowest free numbers, so the first few free
 * ones before the call are where it lands: mark those that are open after. */
static CURLM *multi_init_cloexec(void)
{
	int free_fds[8], n = 0;
	CURLM *m;

	for (int fd = 0; fd < 65536 && n < 8; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			free_fds[n++] = fd;
	m = curl_multi_init();
	for (int i = 0; m && i < n; i++)
		if (fcntl(free_fds[i], F_GETFD) >= 0 && fd_set_cloexec(free_fds[i], 1) < 0)
			log_errno("etcd: close-on-exec on fd %d", free_fds[i]);
	return m;
}

static char *dup_opt(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct etcd_client *etcd_client_new(struct ev_loop *loop, const struct etcd_opts *o)
{
	static int curl_ready;
	struct etcd_client *c;
	struct timespec ts;

	char why[256];

	if (!curl_ready && etcd_curl_load(why, sizeof why) < 0) {
		log_warn("etcd: %s", why);
		return NULL;
	}
	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warn("etcd: libcurl cannot be initialised");
		return NULL;
	}
	curl_ready = 1;
	c = calloc(1, sizeof *c);
	if (!c) {
		log_warn("etcd: out of memory");
		return NULL;
	}
	c->loop = loop;
	TAILQ_INIT(&c->active);
	TAILQ_INIT(&c->queued);
	TAILQ_INIT(&c->auth_wait);
	TAILQ_INIT(&c->grave);
	LIST_INIT(&c->socks);
	if (endpoints_set(c, o) < 0)
		goto fail;
	c->cacert = dup_opt(o->cacert);
	c->cert = dup_opt(o->cert);
	c->key = dup_opt(o->key);
	c->user = dup_opt(o->user);
	c->password = dup_opt(o->password);
	c->request_timeout = o->request_timeout > 0 ? o->request_timeout : 5;
	c->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 2;
	c->backoff_min = o->backoff_min > 0 ? o->backoff_min : 0.1;
	c->backoff_max = o->backoff_max > 0 ? o->backoff_max : 3;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->rand_state = (unsigned)ts.tv_nsec ^ (unsigned)getpid();
	c->state = ETCD_CONN_INIT;
	ev_timer_init(&c->curl_timer, curl_timer_fired, 0., 0.);
	ev_timer_init(&c->backoff_timer, backoff_fired, 0., 0.);
	c->multi = multi_init_cloexec();
	if (!c->multi) {
		log_warn("etcd: curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
fail:
	etcd_client_free(c);
	return NULL;
}

static void free_list(struct etcd_req_list *l)
{
	while (!TAILQ_EMPTY(l))
		etcd_req_free(TAILQ_FIRST(l));
}

void etcd_client_free(struct etcd_client *c)
{
	if (!c)
		return;
	c->pumping = 0;
	free_list(&c->active);
	free_list(&c->queued);
	free_list(&c->auth_wait);
	free_list(&c->grave);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (!LIST_EMPTY(&c->socks)) { /* those curl did not report removed */
		struct etcd_sock *s = LIST_FIRST(&c->socks);
		ev_io_stop(c->loop, &s->io);
		LIST_REMOVE(s, link);
		free(s);
	}
	ev_timer_stop(c->loop, &c->curl_timer);
	ev_timer_stop(c->loop, &c->backoff_timer);
	for (int i = 0; i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c->user);
	free(c->password);
	free(c->token);
	free(c->auth_error);
	free(c);
}

const char *etcd_client_endpoint(const struct etcd_client *c)
{
	return c->endpoints[c->cur];
}

int etcd_client_connected(const struct etcd_client *c)
{
	return c->state == ETCD_CONN_UP;
}
