/* status.c — the master's status socket (see status.h). */
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

#include "gateway.h"
#include "log.h"
#include "master.h"
#include "spool_gauge.h"
#include "util.h"
#include "workers.h"

#define STATUS_TIMEOUT 2.0

struct status_conn {
	struct master *m;
	int fd;
	ev_io io;
	ev_timer timer;
	char in[256];
	size_t in_len;
	char *out;
	size_t out_len, out_off;
};

static const char *const kind_names[] = {
	[KIND_WORKER] = "worker", [KIND_MULE] = "mule", [KIND_SPOOLER] = "spooler",
	[KIND_DAEMON] = "daemon", [KIND_GATEWAY] = "gateway", [KIND_EMPEROR] = "emperor",
};

static const char *const master_states[] = { "starting", "running", "reloading", "stopping" };

void status_address(pid_t master_pid, char *buf, size_t len)
{
	snprintf(buf, len, "@emperor-vassal/%d", (int)master_pid);
}

/* ---- what a reply says ------------------------------------------------------------- */



struct proc_usage {
	long rss_kb;
	double cpu_s;
};

static void usage_of(pid_t pid, struct proc_usage *u)
{
	char path[64], buf[1024];
	FILE *f;

	u->rss_kb = 0;
	u->cpu_s = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (pid <= 0 || !(f = fopen(path, "re")))
		return;
	if (fgets(buf, sizeof buf, f)) {
		char *p = strrchr(buf, ')');
		unsigned long utime = 0, stime = 0;
		long rss = 0;
		/* fields after ")": state(3) ... utime(14) stime(15) ... rss(24) */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
				"%*d %*d %*d %*d %*d %*d %*u %*u %ld", &utime, &stime, &rss) == 3) {
			u->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
			u->rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
		}
	}
	fclose(f);
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

static void reply_json(const struct master *m, struct strbuf *b)
{
	const struct child *c;
	int queued, failed;
	const char *sep = "";

	spool_counts(m, &queued, &failed);
	strbuf_printf(b, "{\"name\":");
	strbuf_json(b, m->cfg->name);
	strbuf_printf(b, ",\"pid\":%d,\"state\":\"%s\",\"generation\":%u,"
		  "\"workers\":{\"ready\":%d,\"total\":%d,\"respawns\":%u},"
		  "\"spooler\":{\"queued\":%d,\"failed\":%d},\"children\":[",
		  (int)getpid(), master_states[m->state], m->generation,
		  workers_ready_count(m), m->cfg->has_workers ? m->cfg->workers.count : 0,
		  worker_respawns(m), queued, failed);
	TAILQ_FOREACH(c, &m->children.children, link) {
		struct proc_usage u;
		usage_of(c->pid, &u);
		strbuf_printf(b, "%s{\"kind\":\"%s\",\"name\":", sep, kind_names[c->kind]);
		strbuf_json(b, c->name);
		strbuf_printf(b, ",\"pid\":%d,\"state\":\"%s\","
			  "\"uptime\":%.1f,\"respawns\":%u,\"rss_kb\":%ld,\"cpu_seconds\":%.2f}",
			  (int)c->pid, child_state_name(c->state),
			  child_uptime(c), c->respawns, u.rss_kb, u.cpu_s);
		sep = ",";
	}
	strbuf_printf(b, "]}\n");
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
}

static void reply_metrics(const struct master *m, struct strbuf *b)
{
	char v[2 * NAME_MAX + 4];
	int queued, failed;

	label_escape(m->cfg->name, v, sizeof v);
	spool_counts(m, &queued, &failed);
	strbuf_printf(b, "emperor_vassal_workers{vassal=\"%s\",state=\"ready\"} %d\n", v,
		  workers_ready_count(m));
	strbuf_printf(b, "emperor_vassal_workers_configured{vassal=\"%s\"} %d\n", v,
		  m->cfg->has_workers ? m->cfg->workers.count : 0);
	strbuf_printf(b, "emperor_vassal_worker_respawns_total{vassal=\"%s\"} %u\n", v,
		  worker_respawns(m));
	strbuf_printf(b, "emperor_vassal_generation{vassal=\"%s\"} %u\n", v, m->generation);
	for (int k = KIND_WORKER; k <= KIND_EMPEROR; k++)
		strbuf_printf(b, "emperor_vassal_children{vassal=\"%s\",kind=\"%s\"} %d\n", v,
			  kind_names[k], child_set_running(&m->children, k));
	if (m->cfg->has_spooler) {
		strbuf_printf(b, "emperor_spool_queued_tasks{vassal=\"%s\"} %d\n", v, queued);
		strbuf_printf(b, "emperor_spool_failed_tasks{vassal=\"%s\"} %d\n", v, failed);
	}
	gateways_metrics(m, b, v);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_free(struct status_conn *c)
{
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
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (strchr(c->in, '\n') || c->in_len == sizeof c->in - 1)
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

static bool peer_allowed(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof uc;

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 &&
	       (uc.uid == 0 || uc.uid == getuid());
}

static void status_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct master *m = w->data;

	(void)revents;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(m->status_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct status_conn *c;
		if (fd < 0)
			return;
		if (!peer_allowed(fd) || !(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		c->m = m;
		c->fd = fd;
		ev_io_init(&c->io, conn_event, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_timer_init(&c->timer, conn_expired, STATUS_TIMEOUT, 0);
		ev_timer_start(loop, &c->timer);
	}
}

int status_open(struct master *m)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char addr[sizeof sun.sun_path];
	size_t len;

	status_address(getpid(), addr, sizeof addr);
	len = strlen(addr);
	memcpy(sun.sun_path, addr, len);
	sun.sun_path[0] = '\0';
	m->status_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (m->status_fd < 0 ||
	    bind(m->status_fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0 ||
	    listen(m->status_fd, 64) < 0) {
		log_errno("status socket %s", addr);
		if (m->status_fd >= 0)
			close(m->status_fd);
		m->status_fd = -1;
		return -1;
	}
	ev_io_init(&m->status_io, status_accept, m->status_fd, EV_READ);
	m->status_io.data = m;
	ev_io_start(m->loop, &m->status_io);
	return 0;
}

void status_close(struct master *m)
{
	if (m->status_fd < 0)
		return;
	ev_io_stop(m->loop, &m->status_io);
	close(m->status_fd);
	m->status_fd = -1;
}
