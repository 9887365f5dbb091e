/* idle.c — a vassal's idle stop (see idle.h). One repeating timer per master, only
 * while `idle:` is set, ticking every quarter of it (0.05 s .. 15 s): each tick asks
 * the kernel (sock_diag through sockdiag.c: inet_diag for TCP, unix_diag for unix sockets)
 * how many connections are open or queued on the workers' sockets (a unix listener's
 * accept queue from its UNIX_DIAG_RQLEN), so no worker is
 * asked anything. A connection open at a tick makes the vassal busy then; when no tick
 * has seen one for `idle`, the master tells the emperor (STATUS_MSG_IDLE) and stops
 * gracefully, the usual teardown. A sock_diag failure counts as busy: never a stop on
 * an error. */
#include "idle.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "notify.h"
#include "reload.h"
#include "sockdiag.h"
#include "status_proto.h"
#include "util.h"

#define IDLE_TICK_MIN 0.05
#define IDLE_TICK_MAX 15.0

struct idle {
	struct master *m;
	ev_timer tick;
	double limit;        /* idle: seconds */
	double last_busy;    /* mono_now() of the last tick that saw a connection */
	bool diag_failed;    /* a failed count was logged (each failed tick counts as busy) */
};

/* What one reply is checked against: the sockets of one family. */
struct diag_match {
	const struct vsock_table *t;
	size_t n;
	int family;
	int count;
};

static bool inet_matches(const struct vsock *s, const struct inet_diag_msg *r)
{
	if (s->addr.ss.ss_family != r->idiag_family)
		return false;
	if (r->idiag_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&s->addr.ss;
		return a->sin_port == r->id.idiag_sport &&
		       (a->sin_addr.s_addr == INADDR_ANY || a->sin_addr.s_addr == r->id.idiag_src[0]);
	}
	const struct sockaddr_in6 *a = (const void *)&s->addr.ss;
	return a->sin6_port == r->id.idiag_sport &&
	       (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
		memcmp(&a->sin6_addr, r->id.idiag_src, sizeof a->sin6_addr) == 0);
}

static void on_inet(const struct nlmsghdr *h, struct diag_match *x)
{
	const struct inet_diag_msg *r = NLMSG_DATA(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof *r))
		return;
	for (size_t i = 0; i < x->n; i++)
		if (x->t->v[i].type == SOCK_STREAM && inet_matches(&x->t->v[i], r)) {
			x->count++;
			return;
		}
}

static bool unix_name_is(const struct vsock *s, const struct rtattr *name)
{
	const struct sockaddr_un *sun = (const void *)&s->addr.ss;
	size_t len = s->addr.len - offsetof(struct sockaddr_un, sun_path);

	return sun->sun_family == AF_UNIX && s->type == SOCK_STREAM && RTA_PAYLOAD(name) == len &&
	       memcmp(RTA_DATA(name), sun->sun_path, len) == 0;
}

/* A unix stream socket with a listener's name: connected (accepted) counts one; the
 * listener itself counts its accept queue (a queued connection is in no table yet). */
static void on_unix(const struct nlmsghdr *h, struct diag_match *x)
{
	const struct unix_diag_msg *r = NLMSG_DATA(h);
	const struct rtattr *a = (const void *)(r + 1), *name = NULL;
	const struct unix_diag_rqlen *rq = NULL;
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *r);

	if (len < 0 || r->udiag_type != SOCK_STREAM)
		return;
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_NAME)
			name = a;
		else if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof *rq)
			rq = RTA_DATA(a);
	}
	for (size_t i = 0; name && i < x->n; i++) {
		if (!unix_name_is(&x->t->v[i], name))
			continue;
		if (r->udiag_state != TCP_LISTEN)
			x->count++;
		else if (rq)
			x->count += (int)rq->udiag_rqueue;
		return;
	}
}

static int on_answer(const struct nlmsghdr *h, void *arg)
{
	struct diag_match *x = arg;

	if (x->family == AF_UNIX)
		on_unix(h, x);
	else
		on_inet(h, x);
	return 0;
}

/* One dump of the family's connected sockets, counted into x. */
static int diag_dump(struct diag_match *x)
{
	struct {
		struct nlmsghdr h;
		union { struct inet_diag_req_v2 inet; struct unix_diag_req unx; } r;
	} req = { .h = { .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	int fd = sockdiag_open(), rc;

	if (fd < 0)
		return -1;
	if (x->family == AF_UNIX) {
		req.r.unx = (struct unix_diag_req){ .sdiag_family = AF_UNIX,
			.udiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_LISTEN),
			.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN };
		req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.r.unx);
	} else {
		req.r.inet = (struct inet_diag_req_v2){ .sdiag_family = (__u8)x->family,
			.sdiag_protocol = IPPROTO_TCP, .idiag_states = ~((1u << TCP_LISTEN) |
			(1u << TCP_TIME_WAIT) | (1u << TCP_CLOSE)) };
		req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.r.inet);
	}
	rc = sockdiag_ask(fd, &req.h, on_answer, x);
	close(fd);
	return rc;
}

int idle_connections(const struct vsock_table *t, size_t n)
{
	static const int families[] = { AF_INET, AF_INET6, AF_UNIX };
	int total = 0;

	for (size_t f = 0; f < ARRAY_LEN(families); f++) {
		struct diag_match x = { .t = t, .n = n, .family = families[f] };
		bool wanted = false;
		for (size_t i = 0; i < n; i++)
			wanted |= t->v[i].addr.ss.ss_family == families[f];
		if (!wanted)
			continue;
		if (diag_dump(&x) < 0)
			return -1;
		total += x.count;
	}
	return total;
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct idle *i = container_of(w, struct idle, tick);
	struct master *m = i->m;
	double now = mono_now();
	int n;

	(void)revents;
	if (m->state != MASTER_RUNNING) { /* starting or reloading: never idle then */
		i->last_busy = now;
		return;
	}
	n = idle_connections(&m->socks, m->socks.n_workers);
	if (n < 0 && !i->diag_failed) { /* said once; every tick asks again */
		i->diag_failed = true;
		log_errno("idle: cannot count connections (counted as busy)");
	}
	if (n != 0)
		i->last_busy = now;
	if (n != 0 || now - i->last_busy < i->limit)
		return;
	log_info("idle: no connection on its sockets for %.1fs (idle: %gs): stopping",
		 now - i->last_busy, i->limit);
	ev_timer_stop(loop, w);
	if (m->emperor_fd >= 0 && notify_fd(m->emperor_fd, STATUS_MSG_IDLE) < 0 && errno != EPIPE)
		log_errno("emperor channel: send");
	reload_stop(m, "idle");
}

int idle_start(struct master *m)
{
	double every;

	if (m->cfg->idle <= 0)
		return 0;
	if (!(m->idle = calloc(1, sizeof *m->idle))) {
		log_errno("idle");
		return -1;
	}
	m->idle->m = m;
	m->idle->limit = m->cfg->idle;
	m->idle->last_busy = mono_now();
	every = m->cfg->idle / 4;
	every = every < IDLE_TICK_MIN ? IDLE_TICK_MIN : every > IDLE_TICK_MAX ? IDLE_TICK_MAX : every;
	ev_timer_init(&m->idle->tick, tick, every, every);
	ev_timer_start(m->loop, &m->idle->tick);
	return 0;
}

void idle_free(struct master *m)
{
	if (!m->idle)
		return;
	ev_timer_stop(m->loop, &m->idle->tick);
	free(m->idle);
	m->idle = NULL;
}
