/* router.c — the router process of a gateway (router.h; docs/gateway.md). One libev
 * loop (its own: the master's loop still owns libev's signal slots, so signals come
 * through a signalfd). It accepts client connections (router_conn.c runs each), at
 * most max-connections at once and max-connections-per-client from one address; it
 * takes subscriptions on the subscription socket into the node table
 * (subscription.c) and keeps the table's state file (debounced: at most every
 * SUB_SAVE_INTERVAL, and at exit); it counts answers by status class and key in the
 * counters it shares with the master (gateway.h). What it logs about refused
 * subscription senders and clients is limited to a line per second.
 * On its stop signal the router stops accepting, closes idle connections, lets
 * exchanges in flight finish, and exits when none is left (the master's mercy
 * bounds that). */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "procs.h"
#include "router.h"
#include "util.h"

/* ---- what it logs about refusals ------------------------------------------------------- */

/* True when a line may be logged now (at most one a second); otherwise the event is
 * counted, and the next line says how many were not logged. */
static bool log_allowed(struct router *r, struct log_limit *l, unsigned *suppressed)
{
	ev_tstamp now = ev_now(r->loop);

	if (now - l->last < 1.0) {
		l->suppressed++;
		return false;
	}
	l->last = now;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

/* ---- counters (shared with the master) ----------------------------------------------------- */

static struct gw_key_stats *key_stats(struct gw_stats *s, const char *key)
{
	unsigned n = __atomic_load_n(&s->n_keys, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i < n; i++)
		if (strcmp(s->keys[i].key, key) == 0)
			return &s->keys[i];
	if (n >= GW_STATS_KEYS || strlen(key) >= sizeof s->keys[n].key)
		return NULL;
	snprintf(s->keys[n].key, sizeof s->keys[n].key, "%s", key);
	__atomic_store_n(&s->n_keys, n + 1, __ATOMIC_RELEASE); /* the name first */
	return &s->keys[n];
}

void router_count(struct router *r, const char *key, int status)
{
	int cls = status >= 100 && status < 600 ? status / 100 : 0;
	struct gw_key_stats *k;

	if (!r->stats)
		return;
	__atomic_fetch_add(&r->stats->requests[cls], 1, __ATOMIC_RELAXED);
	if (key && (key[0] || status != 404) && (k = key_stats(r->stats, key)))
		__atomic_fetch_add(&k->requests[cls], 1, __ATOMIC_RELAXED);
}

/* ---- connections, and how many per client address -------------------------------------- */

static void router_done(struct router *r)
{
	if (r->done)
		return;
	r->done = true;
	log_info("%s: stopped", r->who);
	ev_break(r->loop, EVBREAK_ALL);
}

static struct peer_bucket *peer_bucket(struct router *r, const char *addr)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &r->peers[h % PEER_BUCKETS];
}

/* The count of addr's connections, created at 0; NULL without memory. */
static struct peer_count *peer_get(struct router *r, const char *addr)
{
	struct peer_bucket *b = peer_bucket(r, addr);
	struct peer_count *pc;

	LIST_FOREACH(pc, b, link)
		if (strcmp(pc->addr, addr) == 0)
			return pc;
	if (!(pc = calloc(1, sizeof *pc)))
		return NULL;
	snprintf(pc->addr, sizeof pc->addr, "%s", addr);
	LIST_INSERT_HEAD(b, pc, link);
	return pc;
}

static void peer_put(struct peer_count *pc)
{
	if (pc && --pc->n <= 0) {
		LIST_REMOVE(pc, link);
		free(pc);
	}
}

void router_conn_gone(struct router *r, struct peer_count *pc)
{
	peer_put(pc);
	r->n_conns--;
	if (r->stopping && r->n_conns == 0)
		router_done(r);
	else if (!r->stopping && r->n_conns < r->gw->max_connections)
		ev_io_start(r->loop, &r->listen_io);
}

static void peer_text(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	snprintf(out, len, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)len);
	else if (ss.ss_family == AF_UNIX)
		snprintf(out, len, "unix");
}

/* A client at its max-connections-per-client: a 429 and the connection closed, so
 * that one client cannot take every connection the router has. */
static void refuse_client(struct router *r, int fd, const char *peer)
{
	static const char answer[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
				     "Content-Length: 35\r\nConnection: close\r\n\r\n"
				     "Too many connections from you now\n";
	unsigned more;

	char drain[4096];

	router_count(r, NULL, 429); /* before the client can see it, as every answer */
	if (send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
		log_errno("%s: reply 429 to %s", r->who, peer);
	/* What the client already sent is read first: a close with unread bytes would be
	 * a reset, which may reach the client before it has read the 429. */
	for (int i = 0; i < 4 && recv(fd, drain, sizeof drain, MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
	if (log_allowed(r, &r->refused_clients, &more))
		log_warn("%s: %s has %d connections open (max-connections-per-client): "
			 "refused%s", r->who, peer, r->max_per_client,
			 more ? " (and others, not logged)" : "");
}

/* The accepted fd becomes a connection, unless its client has too many already. Unix
 * socket clients have no address to tell them apart: they are not limited one by one. */
static void take_connection(struct router *r, int fd)
{
	char peer[INET6_ADDRSTRLEN];
	struct peer_count *pc = NULL;
	struct rconn *c;

	peer_text(fd, peer, sizeof peer);
	if (strcmp(peer, "unix") != 0 && !(pc = peer_get(r, peer))) {
		log_errno("%s: connection from %s", r->who, peer);
		close(fd);
		return;
	}
	if (pc && pc->n >= r->max_per_client) {
		refuse_client(r, fd, peer);
		return;
	}
	if (!(c = rconn_new(r, fd, peer))) {
		log_errno("%s: connection from %s", r->who, peer);
		if (pc && pc->n == 0) { /* made for this one: not kept at 0 */
			pc->n = 1;
			peer_put(pc);
		}
		close(fd);
		return;
	}
	if (pc)
		pc->n++;
	c->peer_count = pc;
	ev_io_start(r->loop, &c->cio);
	rconn_arm_timer(c, r->gw->header_timeout);
	TAILQ_INSERT_TAIL(&r->conns, c, link);
	r->n_conns++;
}

static void accept_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, listen_io);

	(void)revents;
	for (int i = 0; i < 64 && r->n_conns < r->gw->max_connections; i++) {
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_errno("%s: accept", r->who);
			break;
		}
		take_connection(r, fd);
	}
	if (r->n_conns >= r->gw->max_connections)
		ev_io_stop(loop, &r->listen_io);
}

/* ---- subscriptions, signals, start -------------------------------------------------------- */

static bool sender_allowed(const struct router *r, uid_t uid)
{
	if (r->gw->n_subscribers == 0)
		return uid == 0 || uid == r->uid;
	for (size_t i = 0; i < r->gw->n_subscribers; i++)
		if (r->gw->subscribers[i] == uid)
			return true;
	return false;
}

/* The expiry timer fires when the first node not heard from again has to go. */
static void expiry_rearm(struct router *r)
{
	ev_tstamp next = sub_table_next_expiry(&r->table), now = ev_now(r->loop);

	ev_timer_stop(r->loop, &r->expire_timer);
	if (next == 0)
		return;
	ev_timer_set(&r->expire_timer, next > now ? next - now : 0.001, 0);
	ev_timer_start(r->loop, &r->expire_timer);
}

static void subscription_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sub_io);
	char buf[1024], ctl[CMSG_SPACE(sizeof(struct ucred))], key[256];

	(void)revents;
	for (int i = 0; i < 64; i++) { /* then the loop's turn; what is left comes next time */
		struct iovec iov = { buf, sizeof buf - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				     .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(r->sub_fd, &mh, MSG_DONTWAIT);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		struct ucred uc = { .uid = (uid_t)-1 };
		struct cfg_addr addr;
		const char *why;
		int weight, cmd;

		if (n < 0)
			break;
		buf[n] = '\0';
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(cm), sizeof uc);
		if (!sender_allowed(r, uc.uid)) {
			unsigned more;
			if (log_allowed(r, &r->refused_senders, &more))
				log_warn("%s: subscription from uid %d (pid %d) refused%s", r->who,
					 (int)uc.uid, (int)uc.pid, more ? " (and others, not logged)" : "");
			continue;
		}
		cmd = (mh.msg_flags & MSG_TRUNC) ? -1 : sub_parse(buf, key, sizeof key, &addr, &weight, &why);
		if (mh.msg_flags & MSG_TRUNC)
			why = "longer than 1023 bytes";
		if (cmd < 0)
			log_warn("%s: bad subscription packet from pid %d: %s", r->who, (int)uc.pid, why);
		else if (cmd == 1)
			sub_table_add(&r->table, key, &addr, weight, ev_now(loop));
		else
			sub_table_remove(&r->table, key, &addr);
	}
	expiry_rearm(r);
}

/* ---- the state file: at most every SUB_SAVE_INTERVAL, and at exit ---------------------- */

static void save_nodes(struct router *r)
{
	ev_timer_stop(r->loop, &r->save_timer);
	r->saved_at = ev_now(r->loop);
	sub_table_save(&r->table);
}

static void save_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	save_nodes(container_of(w, struct router, save_timer));
}

static void nodes_changed(struct sub_table *t)
{
	struct router *r = container_of(t, struct router, table);
	ev_tstamp wait = r->saved_at + SUB_SAVE_INTERVAL - ev_now(r->loop);

	if (ev_is_active(&r->save_timer))
		return;
	if (wait <= 0) {
		save_nodes(r);
		return;
	}
	ev_timer_set(&r->save_timer, wait, 0);
	ev_timer_start(r->loop, &r->save_timer);
}

/* A change not written yet is written before the router goes. */
static void save_pending(struct router *r)
{
	if (ev_is_active(&r->save_timer))
		save_nodes(r);
}

static void expire_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct router *r = container_of(w, struct router, expire_timer);

	(void)revents;
	sub_table_expire(&r->table, ev_now(loop));
	expiry_rearm(r);
}

static void stop_signal(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *r = container_of(w, struct router, sig_io);
	struct signalfd_siginfo si;
	struct rconn *c, *next;

	(void)revents;
	if (read(r->sig_fd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (si.ssi_signo == SIGINT) {
		save_pending(r);
		_exit(0);
	}
	if (r->stopping)
		return;
	r->stopping = true;
	ev_io_stop(loop, &r->listen_io);
	log_info("%s: stopping: %d connections", r->who, r->n_conns);
	for (c = TAILQ_FIRST(&r->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		/* Idle between requests. A new connection's first request may be on its way:
		 * it gets header-timeout to arrive, and is answered. */
		if (rconn_idle(c))
			rconn_close(c);
	}
	if (r->n_conns == 0)
		router_done(r);
}

static int router_signals(struct router *r, int stop_sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, stop_sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	r->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sig_fd < 0)
		return -1;
	ev_io_init(&r->sig_io, stop_signal, r->sig_fd, EV_READ);
	ev_io_start(r->loop, &r->sig_io);
	return 0;
}

/* A filesystem subscription socket keeps its nodes beside it, in PATH.nodes. */
static void state_path(struct router *r)
{
	const struct sockaddr_un *sun = (const void *)&r->gw->subscription_server.ss;

	if (sun->sun_family == AF_UNIX && sun->sun_path[0] &&
	    asprintf(&r->table.state_path, "%s.nodes", sun->sun_path) < 0)
		r->table.state_path = NULL;
}

static void add_static_nodes(struct router *r, const struct config *cfg)
{
	for (size_t i = 0; r->gw->to && r->gw->to[i]; i++) {
		const struct cfg_socket *s = config_socket(cfg, r->gw->to[i]);
		if (s)
			sub_table_add(&r->table, "", &s->addr, 1, 0);
	}
}

int router_main(void *arg)
{
	struct proc *p = arg;
	struct router r = { .gw = &p->m->cfg->gateways[p->index], .uid = getuid(),
			    .stats = p->child.data };
	char ident[96];

	r.max_per_client = r.gw->max_connections_per_client;
	if (r.max_per_client == 0) /* default: a tenth of max-connections */
		r.max_per_client = r.gw->max_connections >= 10 ? r.gw->max_connections / 10 : 1;

	snprintf(r.who, sizeof r.who, "gateway %zu", p->index + 1);
	snprintf(ident, sizeof ident, "vassal %s", p->m->cfg->name);
	log_init(ident);
	if (prctl(PR_SET_NAME, "vassal-router") < 0) /* what ps and pgrep show */
		log_errno("prctl(PR_SET_NAME)");
	TAILQ_INIT(&r.conns);
	sub_table_init(&r.table, r.gw->balance, r.who);
	add_static_nodes(&r, p->m->cfg);
	int n_static = sub_table_count(&r.table);
	r.loop = ev_loop_new(EVFLAG_AUTO);
	if (!r.loop || router_fds(p, &r.listen_fd, &r.sub_fd) < 0 ||
	    router_signals(&r, p->child.stop_signal) < 0) {
		log_errno("%s: cannot start", r.who);
		return 1;
	}
	/* The flag is on the description the master shares: only routers accept on it. A
	 * blocking accept would stall the loop once the backlog is drained. */
	if (fd_set_nonblock(r.listen_fd, 1) < 0) {
		log_errno("%s: cannot make %s non-blocking", r.who, r.gw->listen.text);
		return 1;
	}
	ev_io_init(&r.listen_io, accept_ready, r.listen_fd, EV_READ);
	ev_io_start(r.loop, &r.listen_io);
	ev_timer_init(&r.save_timer, save_due, 0, 0);
	if (r.sub_fd >= 0) {
		state_path(&r);
		sub_table_restore(&r.table, ev_now(r.loop));
		r.table.on_change = nodes_changed;
		ev_io_init(&r.sub_io, subscription_ready, r.sub_fd, EV_READ);
		ev_io_start(r.loop, &r.sub_io);
		ev_timer_init(&r.expire_timer, expire_due, 0, 0);
		expiry_rearm(&r);
	}
	log_info("%s: routing on %s (%d static nodes, %d subscribed)", r.who, r.gw->listen.text,
		 n_static, sub_table_count(&r.table) - n_static);
	ev_run(r.loop, 0);
	save_pending(&r);
	sub_table_fini(&r.table);
	ev_loop_destroy(r.loop);
	return r.done ? 0 : 1;
}
