/* gateway.c — the master's side of gateways and subscriptions. A gateway's router is
 * an in-code child (router.c) that takes the gateway's sockets bound by the master
 * (vsock.c names them gateway-N and gateway-N-sub), so they outlive the router's
 * restarts and the vassal's reloads. A `subscribe:` entry is announced to its server
 * at start and every SUB_PERIOD seconds, and withdrawn on stop (and in a reload's
 * teardown with `unsubscribe-on-reload: true`; without it, the announcements go on
 * through the teardown until the re-exec). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gateway.h"
#include "legion.h"
#include "log.h"
#include "prom.h"
#include "procs.h"
#include "subscription.h"
#include "util.h"

int router_fds(struct proc *p, int *listen_fd, int *sub_fd)
{
	char name[48];

	snprintf(name, sizeof name, "gateway-%zu", p->index + 1);
	*listen_fd = vsock_find(&p->m->socks, name);
	snprintf(name, sizeof name, "gateway-%zu-sub", p->index + 1);
	*sub_fd = vsock_find(&p->m->socks, name);
	return *listen_fd >= 0 ? 0 : -1;
}

/* The gateway's counters: mapped once per proc, shared with each router it forks. */
static struct gw_stats *router_stats(struct proc *p)
{
	void *page;

	if (p->child.data)
		return p->child.data;
	page = mmap(NULL, sizeof(struct gw_stats), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		log_errno("%s: no request counters", p->child.name);
		return NULL;
	}
	p->child.data = page; /* a gateway's only use of data; unmapped with the image */
	return page;
}

static int router_start(struct proc *p)
{
	const struct cfg_gateway *g = &p->m->cfg->gateways[p->index];
	int keep[2], rc;

	if (router_fds(p, &keep[0], &keep[1]) < 0)
		return -1;
	router_stats(p);
	struct child_exec x = { .run = router_main, .run_arg = p, .out_fd = -1,
				.die_with_parent = true, .fds = keep, .n_fds = keep[1] >= 0 ? 2 : 1 };

	p->child.stop_signal = SIGTERM;
	p->child.mercy = g->reload_mercy;
	rc = child_spawn(&p->child, &x);
	if (rc == 0) {
		child_set_ready(&p->child);
		log_info("%s started (pid %d) on %s", p->child.name, (int)p->child.pid, g->listen.text);
	}
	return rc;
}

int gateways_start(struct master *m)
{
	for (size_t i = 0; i < m->cfg->n_gateways; i++) {
		char name[32];
		snprintf(name, sizeof name, "gateway %zu", i + 1);
		struct proc *p = procs_new(m, KIND_GATEWAY, name, i, 1, router_start);
		if (!p)
			return -1;
		procs_launch(p);
	}
	return 0;
}

static const char *const class_names[GW_STATS_CLASSES] = {
	"other", "1xx", "2xx", "3xx", "4xx", "5xx",
};

static void gateway_metrics(const struct gw_stats *s, size_t index, struct strbuf *b,
			    const char *v)
{
	unsigned n_keys = __atomic_load_n(&s->n_keys, __ATOMIC_ACQUIRE);
	char key[2 * sizeof s->keys[0].key + 4];

	for (int k = 0; k < GW_STATS_CLASSES; k++)
		strbuf_printf(b, "%s{vassal=\"%s\",gateway=\"%zu\",class=\"%s\"} %llu\n",
			      prom_families[PROM_GATEWAY_REQUESTS].name, v, index + 1, class_names[k],
			      (unsigned long long)__atomic_load_n(&s->requests[k], __ATOMIC_RELAXED));
	for (unsigned i = 0; i < n_keys && i < GW_STATS_KEYS; i++) {
		prom_label(s->keys[i].key, key, sizeof key);
		for (int k = 1; k < GW_STATS_CLASSES; k++)
			strbuf_printf(b, "%s{vassal=\"%s\",gateway=\"%zu\",key=\"%s\",class=\"%s\"} %llu\n",
				      prom_families[PROM_GATEWAY_KEY_REQUESTS].name, v,
				      index + 1, key, class_names[k], (unsigned long long)
				      __atomic_load_n(&s->keys[i].requests[k], __ATOMIC_RELAXED));
	}
}

void gateways_metrics(const struct master *m, struct strbuf *b, const char *vassal)
{
	const struct child *c;

	TAILQ_FOREACH(c, &m->children.children, link) {
		const struct proc *p = (const struct proc *)c;
		if (c->kind == KIND_GATEWAY && c->data)
			gateway_metrics(c->data, p->index, b, vassal);
	}
}

/* The socket's address as another process can reach it (relative paths made whole). */
static void reachable_address(const struct cfg_socket *s, char *out, size_t len)
{
	const struct sockaddr_un *sun = (const void *)&s->addr.ss;
	char cwd[PATH_MAX];

	if (sun->sun_family == AF_UNIX && sun->sun_path[0] && sun->sun_path[0] != '/' &&
	    getcwd(cwd, sizeof cwd) && strlen(cwd) + strlen(sun->sun_path) + 7 < len)
		snprintf(out, len, "unix:%.*s/%.*s", (int)(len / 2), cwd, 108, sun->sun_path);
	else
		snprintf(out, len, "%s", s->addr.text);
}

/* Entries of `legion` only (NULL: every entry; a lord-only one while lord). */
static void announce(struct master *m, bool subscribe, const char *legion)
{
	for (size_t i = 0; i < m->cfg->n_subscribe; i++) {
		const struct cfg_subscribe *sub = &m->cfg->subscribe[i];
		const struct cfg_socket *s = config_socket(m->cfg, sub->socket);
		char addr[PATH_MAX + 8], msg[PATH_MAX + 512];
		if (!s || (legion && (!sub->legion || strcmp(sub->legion, legion) != 0)))
			continue;
		if (!legion && subscribe && sub->legion && !legion_is_lord(m, sub->legion, NULL))
			continue;
		reachable_address(s, addr, sizeof addr);
		int n = sub_format(msg, sizeof msg, subscribe, sub->key, addr, sub->weight);
		uint64_t bit = i < 64 ? 1ULL << i : 0;
		if (sub_send(&sub->server, msg, n) == 0) {
			if (m->subscribe_failing & bit)
				log_info("subscribe %s to %s: reaching it again", sub->key, sub->server.text);
			m->subscribe_failing &= ~bit;
		} else if (subscribe && !(m->subscribe_failing & bit)) {
			log_errno("subscribe %s to %s (retrying every %.0fs)", sub->key,
				  sub->server.text, SUB_PERIOD);
			m->subscribe_failing |= bit;
		}
	}
}

static void subscribe_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	announce(container_of(w, struct master, subscribe_timer), true, NULL);
}

void subscriptions_start(struct master *m)
{
	if (!m->cfg->n_subscribe)
		return;
	ev_timer_init(&m->subscribe_timer, subscribe_due, 0, SUB_PERIOD);
	ev_timer_start(m->loop, &m->subscribe_timer);
	log_info("subscribing %zu keys every %.0fs", m->cfg->n_subscribe, SUB_PERIOD);
}

void subscriptions_stop(struct master *m, bool unsubscribe)
{
	if (!m->cfg->n_subscribe)
		return;
	if (!unsubscribe) {
		/* A reload that keeps its subscriptions goes on announcing them until the
		 * re-exec: the socket stays open, and a teardown longer than the expiry
		 * (workers finishing long requests) must not get the node dropped. */
		log_info("subscriptions kept through the reload");
		return;
	}
	ev_timer_stop(m->loop, &m->subscribe_timer);
	announce(m, false, NULL);
	log_info("unsubscribed %zu keys", m->cfg->n_subscribe);
}

void subscriptions_legion(struct master *m, const char *legion, bool lord)
{
	announce(m, lord, legion);
}
