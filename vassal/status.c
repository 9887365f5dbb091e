/* status.c — the master's status socket (see status.h; the protocol is in
 * status_proto.h, the metric families in prom.h): its own struct, reached from the
 * master by one pointer, with at most STATUS_MAX_CONNS connections at once. */
#include "status.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cron.h"
#include "gateway.h"
#include "health.h"
#include "jsonout.h"
#include "legion.h"
#include "logfile.h"
#include "log.h"
#include "master.h"
#include "peer.h"
#include "prom.h"
#include "scale.h"
#include "spool_gauge.h"
#include "status_proto.h"
#include "util.h"
#include "workers.h"

#define STATUS_TIMEOUT 2.0
#define STATUS_MAX_CONNS 32 /* connections at once; more are closed unanswered */

struct status_conn {
	TAILQ_ENTRY(status_conn) link;
	struct status *st;
	struct master *m;
	int fd;
	ev_io io;
	ev_timer timer;
	char in[256];
	size_t in_len;
	char *out;
	size_t out_len, out_off;
};

/* The status socket of a master, reached from it by one pointer (m->status). */
struct status {
	struct master *m;
	int fd;
	ev_io io;
	TAILQ_HEAD(, status_conn) conns;
	int n_conns;
};

static const char *const kind_names[] = {
	[KIND_WORKER] = "worker", [KIND_MULE] = "mule", [KIND_SPOOLER] = "spooler",
	[KIND_DAEMON] = "daemon", [KIND_GATEWAY] = "gateway", [KIND_EMPEROR] = "emperor",
	[KIND_CRON] = "cron", [KIND_TEMPLATE] = "template",
};

static const char *const master_states[] = { "starting", "running", "reloading", "stopping" };

/* ---- what a reply says ------------------------------------------------------------- */



struct proc_usage {
	long rss_kb;
	double cpu_s;
};

static void usage_of(pid_t pid, struct proc_usage *u)
{
	char buf[1024];
	const char *p = proc_stat_fields((int)pid, buf, sizeof buf);
	unsigned long utime = 0, stime = 0;
	long rss = 0;

	u->rss_kb = 0;
	u->cpu_s = 0;
	/* from the state(3) on: ... utime(14) stime(15) ... rss(24) */
	if (p && sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
			"%*d %*d %*d %*d %*d %*d %*u %*u %ld", &utime, &stime, &rss) == 3) {
		u->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
		u->rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
	}
}

/* O(1): the spooler module keeps the counts (spool_gauge.h), no scan per request. */
static void spool_counts(const struct master *m, int *queued, int *failed)
{
	*queued = *failed = 0;
	if (m->cfg->has_spooler && m->spool_gauge)
		spool_gauge_counts(m->spool_gauge, queued, failed);
}

static unsigned worker_respawns(const struct master *m)
{
	const struct child *c;
	unsigned n = 0;

	TAILQ_FOREACH(c, &m->children.children, link)
		if (c->kind == KIND_WORKER)
			n += c->respawns;
	return n;
}

static struct json_object *child_json(const struct child *c)
{
	struct json_object *o = json_object_new_object();
	struct proc_usage u;

	usage_of(c->pid, &u);
	json_object_object_add(o, "kind", json_object_new_string(kind_names[c->kind]));
	json_object_object_add(o, "name", jsonout_string(c->name));
	json_object_object_add(o, "pid", json_object_new_int((int)c->pid));
	json_object_object_add(o, "state", json_object_new_string(child_state_name(c->state)));
	json_object_object_add(o, "uptime", jsonout_fixed(child_uptime(c), 1));
	json_object_object_add(o, "respawns", json_object_new_int64(c->respawns));
	json_object_object_add(o, "rss_kb", json_object_new_int64(u.rss_kb));
	json_object_object_add(o, "cpu_seconds", jsonout_fixed(u.cpu_s, 2));
	return o;
}

/* {"watchdog": n, "max-rss": n, ...}: health.c's recycles and kills by reason. */
static struct json_object *recycles_json(const struct master *m)
{
	struct json_object *o = json_object_new_object();

	for (int r = 0; r < HEALTH_N_REASONS; r++)
		json_object_object_add(o, health_reason_name(r),
				       json_object_new_int64((int64_t)health_count(m, r)));
	return o;
}

/* {"min", "max", "target", "accept_queue", "up", "down"}: scale.c's figures. */
static struct json_object *scale_json(const struct master *m)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "min", json_object_new_int(m->cfg->workers.count));
	json_object_object_add(o, "max", json_object_new_int(m->cfg->workers.count_max));
	json_object_object_add(o, "target", json_object_new_int(scale_target(m)));
	json_object_object_add(o, "accept_queue", json_object_new_int(scale_queued(m)));
	json_object_object_add(o, "up", json_object_new_int64((int64_t)scale_ups(m)));
	json_object_object_add(o, "down", json_object_new_int64((int64_t)scale_downs(m)));
	return o;
}

static bool scaled(const struct master *m)
{
	return m->cfg->has_workers && m->cfg->workers.count_max > m->cfg->workers.count;
}

static void scale_metrics(const struct master *m, struct strbuf *b, const char *v)
{
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_WORKERS_TARGET].name, v,
		      scale_target(m));
	strbuf_printf(b, "%s{vassal=\"%s\",direction=\"up\"} %lu\n",
		      prom_families[PROM_WORKER_SCALINGS].name, v, scale_ups(m));
	strbuf_printf(b, "%s{vassal=\"%s\",direction=\"down\"} %lu\n",
		      prom_families[PROM_WORKER_SCALINGS].name, v, scale_downs(m));
	if (scaled(m))
		strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_ACCEPT_QUEUE].name, v,
			      scale_queued(m) < 0 ? 0 : scale_queued(m));
}

/* {"file", "error" (null when fine), "lost_lines", "rotations"}, or NULL without log:. */
static struct json_object *log_json(const struct master *m)
{
	struct json_object *o;
	int err = logfile_error(m);

	if (!m->cfg->log.file)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "file", jsonout_string(m->cfg->log.file));
	json_object_object_add(o, "error", err ? json_object_new_string(strerror(err)) : NULL);
	json_object_object_add(o, "lost_lines", json_object_new_int64((int64_t)logfile_lost_lines(m)));
	json_object_object_add(o, "rotations", json_object_new_int64((int64_t)logfile_rotations(m)));
	return o;
}

static void log_metrics(const struct master *m, struct strbuf *b, const char *v)
{
	if (!m->cfg->log.file)
		return;
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_LOG_ERROR].name, v,
		      logfile_error(m) != 0);
	strbuf_printf(b, "%s{vassal=\"%s\"} %lu\n", prom_families[PROM_LOG_LOST_LINES].name, v,
		      logfile_lost_lines(m));
	strbuf_printf(b, "%s{vassal=\"%s\"} %lu\n", prom_families[PROM_LOG_ROTATIONS].name, v,
		      logfile_rotations(m));
}

static void reply_json(const struct master *m, struct strbuf *b)
{
	struct json_object *doc = json_object_new_object(), *workers = json_object_new_object();
	struct json_object *spooler = json_object_new_object(), *children = json_object_new_array();
	const struct child *c;
	int queued, failed;

	spool_counts(m, &queued, &failed);
	json_object_object_add(doc, "name", jsonout_string(m->cfg->name));
	json_object_object_add(doc, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(doc, "state", json_object_new_string(master_states[m->state]));
	json_object_object_add(doc, "generation", json_object_new_int64(m->generation));
	json_object_object_add(workers, "ready", json_object_new_int(workers_ready_count(m)));
	json_object_object_add(workers, "total", json_object_new_int(scale_target(m)));
	json_object_object_add(workers, "respawns", json_object_new_int64(worker_respawns(m)));
	json_object_object_add(workers, "recycles", recycles_json(m));
	json_object_object_add(workers, "target", json_object_new_int(scale_target(m)));
	if (scaled(m))
		json_object_object_add(workers, "scale", scale_json(m));
	json_object_object_add(doc, "workers", workers);
	json_object_object_add(spooler, "queued", json_object_new_int(queued));
	json_object_object_add(spooler, "failed", json_object_new_int(failed));
	json_object_object_add(doc, "spooler", spooler);
	if (m->cfg->log.file)
		json_object_object_add(doc, "log", log_json(m));
	TAILQ_FOREACH(c, &m->children.children, link)
		json_object_array_add(children, child_json(c));
	json_object_object_add(doc, "children", children);
	legion_status_json(m, doc);
	jsonout_append(b, doc);
}

static void reply_text(const struct master *m, struct strbuf *b)
{
	const struct child *c;

	strbuf_printf(b, "%-8s %-24s %8s %-9s %9s %8s %9s %8s\n", "KIND", "NAME", "PID", "STATE",
		  "UPTIME", "RESPAWNS", "RSS(KiB)", "CPU(s)");
	TAILQ_FOREACH(c, &m->children.children, link) {
		struct proc_usage u;
		usage_of(c->pid, &u);
		strbuf_printf(b, "%-8s %-24s %8d %-9s %8.0fs %8u %9ld %8.2f\n", kind_names[c->kind],
			  c->name, (int)c->pid, child_state_name(c->state), child_uptime(c),
			  c->respawns, u.rss_kb, u.cpu_s);
	}
	if (scaled(m))
		strbuf_printf(b, "scale: %d workers (range %d..%d), accept queue %d, up %lu, down %lu\n",
			      scale_target(m), m->cfg->workers.count, m->cfg->workers.count_max,
			      scale_queued(m), scale_ups(m), scale_downs(m));
	legion_status_text(m, b);
	cron_status_text(m, b);
}

static void reply_metrics(const struct master *m, struct strbuf *b)
{
	char v[2 * NAME_MAX + 4];
	int queued, failed;

	prom_label(m->cfg->name, v, sizeof v);
	spool_counts(m, &queued, &failed);
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_WORKERS].name, v,
		      workers_ready_count(m));
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_WORKERS_CONFIGURED].name, v,
		      m->cfg->has_workers ? m->cfg->workers.count_max : 0);
	strbuf_printf(b, "%s{vassal=\"%s\"} %u\n", prom_families[PROM_WORKER_RESPAWNS].name, v,
		      worker_respawns(m));
	strbuf_printf(b, "%s{vassal=\"%s\"} %u\n", prom_families[PROM_GENERATION].name, v, m->generation);
	for (int r = 0; r < HEALTH_N_REASONS; r++)
		strbuf_printf(b, "%s{vassal=\"%s\",reason=\"%s\"} %lu\n",
			      prom_families[PROM_WORKER_RECYCLES].name, v, health_reason_name(r),
			      health_count(m, r));
	for (int k = KIND_WORKER; k <= KIND_TEMPLATE; k++)
		strbuf_printf(b, "%s{vassal=\"%s\",kind=\"%s\"} %d\n", prom_families[PROM_CHILDREN].name, v,
			      kind_names[k], child_set_running(&m->children, k));
	/* 0 without a spooler: the series stay, whatever the vassals run */
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_SPOOL_QUEUED].name, v,
		      m->cfg->has_spooler ? queued : 0);
	strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_SPOOL_FAILED].name, v,
		      m->cfg->has_spooler ? failed : 0);
	scale_metrics(m, b, v);
	legion_metrics(m, b, v);
	log_metrics(m, b, v);
	gateways_metrics(m, b, v);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_free(struct status_conn *c)
{
	TAILQ_REMOVE(&c->st->conns, c, link);
	c->st->n_conns--;
	ev_io_stop(c->m->loop, &c->io);
	ev_timer_stop(c->m->loop, &c->timer);
	close(c->fd);
	free(c->out);
	free(c);
}

static void conn_answer(struct status_conn *c)
{
	struct strbuf b = { 0 };

	c->in[strcspn(c->in, "\r\n")] = '\0';
	if (strcmp(c->in, "json") == 0)
		reply_json(c->m, &b);
	else if (strcmp(c->in, "text") == 0)
		reply_text(c->m, &b);
	else if (strcmp(c->in, "metrics") == 0)
		reply_metrics(c->m, &b);
	else
		strbuf_printf(&b, "error: unknown request '%.40s' (json, text, metrics)\n", c->in);
	c->out = b.p;
	c->out_len = b.len;
	ev_io_stop(c->m->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->m->loop, &c->io);
}

static void conn_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct status_conn *c = container_of(w, struct status_conn, io);
	ssize_t n;

	(void)loop, (void)revents;
	if (!c->out) {
		n = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, MSG_DONTWAIT);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				conn_free(c);
			return;
		}
		if (memchr(c->in + c->in_len, '\0', (size_t)n))
			c->in_len = 0; /* answered at once as an unknown (empty) request */
		else
			c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (c->in_len == 0 || strchr(c->in, '\n') || c->in_len == sizeof c->in - 1)
			conn_answer(c);
		return;
	}
	n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		c->out_off += (size_t)n;
	if (n < 0 || c->out_off >= c->out_len)
		conn_free(c);
}

static void conn_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	conn_free(container_of(w, struct status_conn, timer));
}

static void status_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct status *st = container_of(w, struct status, io);

	(void)revents;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(st->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct status_conn *c;
		struct ucred uc;
		if (fd < 0)
			return;
		if (!peer_allowed(fd, &uc) || st->n_conns >= STATUS_MAX_CONNS ||
		    !(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		c->st = st;
		c->m = st->m;
		c->fd = fd;
		TAILQ_INSERT_TAIL(&st->conns, c, link);
		st->n_conns++;
		ev_io_init(&c->io, conn_event, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, conn_expired, STATUS_TIMEOUT, 0);
		ev_timer_start(loop, &c->timer);
	}
}

int status_open(struct master *m)
{
	struct sockaddr_un sun;
	socklen_t len = status_sockaddr(getpid(), &sun);
	char addr[sizeof sun.sun_path];
	struct status *st = calloc(1, sizeof *st);

	status_address(getpid(), addr, sizeof addr);
	if (!st) {
		log_errno("status socket %s", addr);
		return -1;
	}
	st->m = m;
	TAILQ_INIT(&st->conns);
	st->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (st->fd < 0 || bind(st->fd, (struct sockaddr *)&sun, len) < 0 || listen(st->fd, 64) < 0) {
		log_errno("status socket %s", addr);
		if (st->fd >= 0)
			close(st->fd);
		free(st);
		return -1;
	}
	ev_io_init(&st->io, status_accept, st->fd, EV_READ);
	ev_io_start(m->loop, &st->io);
	m->status = st;
	return 0;
}

void status_close(struct master *m)
{
	struct status *st = m->status;

	if (!st)
		return;
	while (!TAILQ_EMPTY(&st->conns))
		conn_free(TAILQ_FIRST(&st->conns));
	ev_io_stop(m->loop, &st->io);
	close(st->fd);
	free(st);
	m->status = NULL;
}
