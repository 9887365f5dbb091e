/* control.c — the emperor's control socket and its metrics.
 *
 * A unix stream socket (mode 0600; only root and the emperor's own uid are served),
 * one request line per connection, answered with "OK\n" or "ERR reason\n" and then a
 * body, and closed. emperorctl (ctl/emperorctl.c) is a thin client of it:
 *   status [--json]          a line (or object) per vassal
 *   status NAME [--json]     the vassal and each of its children (from its master)
 *   reload NAME|--all        answers once reloaded; chain-reload NAME likewise
 *   stop NAME / start NAME   answers once stopped / ready; a stopped vassal stays
 *                            halted until `start` or a change of its file
 *   reopen-logs              every master reopens its log file
 *   metrics                  Prometheus text format (also on --metrics ADDR, HTTP)
 * Nothing blocks: every client and every query to a master's status socket
 * (vassal/status.c) has its own watchers and a deadline. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "emperor.h"
#include "log.h"
#include "notify.h"
#include "parse.h"
#include "runpath.h"
#include "util.h"

#define CTL_READ_TIMEOUT 5.0   /* a client has this long to send its request line */
#define CTL_WAIT_TIMEOUT 120.0 /* reload/stop/start answer at the latest after this */
#define CTL_FETCH_TIMEOUT 2.0  /* a master has this long to answer a status query */

static const double bucket_le[CTL_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

enum wait_kind { WAIT_NONE, WAIT_READY, WAIT_STOPPED };

struct client;

/* A query to a master's status socket, on behalf of a client. */
struct fetch {
	TAILQ_ENTRY(fetch) link;
	struct client *cl;
	int fd;
	ev_io io;
	char request[16];
	size_t req_off;
	struct strbuf reply;
};
TAILQ_HEAD(fetch_list, fetch);

struct client {
	TAILQ_ENTRY(client) link;
	struct control *ctl;
	int fd;
	bool http;                  /* the metrics listener: answer in HTTP */
	ev_io io;
	ev_timer timer;
	char in[1024];
	size_t in_len;
	struct strbuf out;
	size_t out_off;
	bool answering;
	enum wait_kind wait;
	char **waiting_for;         /* names still to become ready / stopped */
	int n_failed;
	struct strbuf notes;        /* per-vassal outcome lines */
	struct fetch_list fetches;
	struct strbuf gathered;
	bool json;
	char name[256];
};
TAILQ_HEAD(client_list, client);

struct control {
	struct emperor *e;
	char path[PATH_MAX];
	int fd, http_fd;
	ev_io io, http_io;
	struct client_list clients;
};

static void client_answer(struct client *cl, bool ok, const char *err);

/* ---- paths ------------------------------------------------------------------------------- */

/* ---- figures ------------------------------------------------------------------------------ */

void control_vassal_event(struct emperor *e, struct vassal *v, enum ctl_event ev)
{
	struct control *ctl = e->control;
	struct client *cl, *next;

	if (!ctl)
		return;
	for (cl = TAILQ_FIRST(&ctl->clients); cl; cl = next) {
		next = TAILQ_NEXT(cl, link);
		size_t n = strv_len(cl->waiting_for);
		for (size_t i = 0; i < n; i++) {
			if (strcmp(cl->waiting_for[i], v->name) != 0)
				continue;
			/* Waiting for "ready", any outcome answers: a vassal that stops
			 * (its file removed, `stop` from another client) never gets ready. */
			if (cl->wait == WAIT_STOPPED && ev == CTL_READY)
				break;
			bool good = (cl->wait == WAIT_READY && ev == CTL_READY) ||
				    (cl->wait == WAIT_STOPPED && ev == CTL_STOPPED);
			if (good)
				strbuf_printf(&cl->notes, "%s: done\n", v->name);
			else if (ev == CTL_STOPPED)
				strbuf_printf(&cl->notes, "%s: stopped before it was ready (%s)\n",
					      v->name, v->last_exit);
			else
				strbuf_printf(&cl->notes, "%s: %s\n", v->name,
					      v->config_error ? v->config_error : v->last_exit);
			cl->n_failed += !good;
			free(cl->waiting_for[i]);
			cl->waiting_for[i] = cl->waiting_for[n - 1];
			cl->waiting_for[n - 1] = NULL;
			break;
		}
		if (cl->wait != WAIT_NONE && n > 0 && strv_len(cl->waiting_for) == 0)
			client_answer(cl, cl->n_failed == 0, "some vassals failed");
	}
}

static void observe_reload(struct vassal *v, double seconds)
{
	v->reloads++;
	v->reload_seconds_sum += seconds;
	for (int i = 0; i < CTL_BUCKETS; i++)
		if (seconds <= bucket_le[i])
			v->reload_buckets[i]++;
}

/* ---- replies -------------------------------------------------------------------------------- */

static const char *uptime_text(double s, char *buf, size_t len)
{
	if (s < 120)
		snprintf(buf, len, "%.0fs", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0fm", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%.1fh", s / 3600);
	else
		snprintf(buf, len, "%.1fd", s / 86400);
	return buf;
}


static void status_json(struct emperor *e, struct strbuf *b)
{
	struct vassal *v;
	const char *sep = "";

	strbuf_printf(b, "{\"emperor\":{\"pid\":%d,\"dir\":", (int)getpid());
	strbuf_json(b, e->dir);
	strbuf_printf(b, ",\"uptime\":%.1f,\"state\":\"%s\"},\"vassals\":[",
		      mono_now() - e->started_at, e->stopping ? "stopping" : "running");
	TAILQ_FOREACH(v, &e->vassals, link) {
		strbuf_printf(b, "%s{\"name\":", sep);
		strbuf_json(b, v->name);
		strbuf_printf(b, ",\"state\":\"%s\",\"pid\":%d,\"uptime\":%.1f,"
			      "\"workers_ready\":%d,\"workers_total\":%d,\"restarts\":%u,"
			      "\"reloads\":%u,\"last_exit\":", vtable_state_name(v->state),
			      (int)v->child.pid, child_uptime(&v->child), v->workers_ready,
			      v->workers_total, v->restarts, v->reloads);
		strbuf_json(b, v->last_exit);
		strbuf_printf(b, ",\"config_error\":");
		if (v->config_error)
			strbuf_json(b, v->config_error);
		else
			strbuf_printf(b, "null");
		strbuf_printf(b, "}");
		sep = ",";
	}
	strbuf_printf(b, "]}\n");
}

static void status_table(struct emperor *e, struct strbuf *b)
{
	struct vassal *v;
	char up[16], workers[24];

	strbuf_printf(b, "%-20s %-10s %8s %7s %8s %8s %7s  %-22s %s\n", "VASSAL", "STATE", "PID",
		      "UPTIME", "WORKERS", "RESTARTS", "RELOADS", "LAST EXIT", "CONFIG ERROR");
	TAILQ_FOREACH(v, &e->vassals, link) {
		snprintf(workers, sizeof workers, "%d/%d", v->workers_ready, v->workers_total);
		strbuf_printf(b, "%-20s %-10s %8d %7s %8s %8u %7u  %-22s %s\n", v->name,
			      vtable_state_name(v->state), (int)v->child.pid,
			      child_running(&v->child) ? uptime_text(child_uptime(&v->child), up, sizeof up) : "-",
			      workers, v->restarts, v->reloads, v->last_exit[0] ? v->last_exit : "-",
			      v->config_error ? v->config_error : "-");
	}
}


/* Prometheus: families in order, each with HELP and TYPE once. */
static void metrics_emperor(struct emperor *e, struct strbuf *b)
{
	static const char *const states[] = { "starting", "ready", "reloading", "stopping", "waiting", "halted" };
	int counts[VASSAL_HALTED + 1] = { 0 };
	struct vassal *v;
	char name[2 * NAME_MAX + 4];

	TAILQ_FOREACH(v, &e->vassals, link)
		counts[v->state]++;
	strbuf_printf(b, "# HELP emperor_vassals Vassals by state.\n# TYPE emperor_vassals gauge\n");
	for (int s = 0; s <= VASSAL_HALTED; s++)
		strbuf_printf(b, "emperor_vassals{state=\"%s\"} %d\n", states[s], counts[s]);
	strbuf_printf(b, "# HELP emperor_vassal_restarts_total Respawns after a vassal died unasked.\n"
		      "# TYPE emperor_vassal_restarts_total counter\n");
	TAILQ_FOREACH(v, &e->vassals, link)
		strbuf_printf(b, "emperor_vassal_restarts_total{vassal=\"%s\"} %u\n",
			      label_escape(v->name, name, sizeof name), v->restarts);
	strbuf_printf(b, "# HELP emperor_vassal_reload_duration_seconds From the reload request to READY=1.\n"
		      "# TYPE emperor_vassal_reload_duration_seconds histogram\n");
	TAILQ_FOREACH(v, &e->vassals, link) {
		label_escape(v->name, name, sizeof name);
		for (int i = 0; i < CTL_BUCKETS; i++)
			strbuf_printf(b, "emperor_vassal_reload_duration_seconds_bucket{vassal=\"%s\",le=\"%g\"} %u\n",
				      name, bucket_le[i], v->reload_buckets[i]);
		strbuf_printf(b, "emperor_vassal_reload_duration_seconds_bucket{vassal=\"%s\",le=\"+Inf\"} %u\n"
			      "emperor_vassal_reload_duration_seconds_sum{vassal=\"%s\"} %.6f\n"
			      "emperor_vassal_reload_duration_seconds_count{vassal=\"%s\"} %u\n",
			      name, v->reloads, name, v->reload_seconds_sum, name, v->reloads);
	}
}

static const struct {
	const char *family, *type, *help;
} master_families[] = {
	{ "emperor_vassal_workers", "gauge", "Workers by state, as the master reports them." },
	{ "emperor_vassal_workers_configured", "gauge", "workers.count of the running config." },
	{ "emperor_vassal_worker_respawns_total", "counter", "Worker spawns after the first, this master generation." },
	{ "emperor_vassal_generation", "gauge", "Graceful reloads since the master started, plus one." },
	{ "emperor_vassal_children", "gauge", "Running children of the master by kind." },
	{ "emperor_spool_queued_tasks", "gauge", "Task files waiting in the spool directory." },
	{ "emperor_spool_failed_tasks", "gauge", "Task files in the spool directory's failed/." },
	{ "emperor_gateway_requests_total", "counter", "Requests a gateway's router answered, by status class." },
	{ "emperor_gateway_key_requests_total", "counter", "Requests a gateway's router answered, by routing key and status class." },
};

/* Groups the masters' samples by family (a family's samples must be contiguous). */
static void metrics_merge(struct strbuf *gathered, struct strbuf *b)
{
	for (size_t f = 0; f < ARRAY_LEN(master_families); f++) {
		size_t flen = strlen(master_families[f].family);
		bool header = false;
		for (char *line = gathered->p; line && *line;) {
			char *nl = strchr(line, '\n');
			size_t len = nl ? (size_t)(nl - line) : strlen(line);
			if (strncmp(line, master_families[f].family, flen) == 0 && line[flen] == '{') {
				if (!header)
					strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", master_families[f].family,
						      master_families[f].help, master_families[f].family,
						      master_families[f].type);
				header = true;
				strbuf_append(b, line, len);
				strbuf_append(b, "\n", 1);
			}
			line = nl ? nl + 1 : NULL;
		}
	}
}

/* ---- queries to masters ------------------------------------------------------------------ */

static void fetch_free(struct fetch *f)
{
	ev_io_stop(f->cl->ctl->e->loop, &f->io);
	close(f->fd);
	TAILQ_REMOVE(&f->cl->fetches, f, link);
	strbuf_free(&f->reply);
	free(f);
}

static void gathered_all(struct client *cl);

static void fetch_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fetch *f = container_of(w, struct fetch, io);
	struct client *cl = f->cl;
	char buf[8192];
	ssize_t n;

	(void)loop, (void)revents;
	if (f->req_off < strlen(f->request)) {
		n = send(f->fd, f->request + f->req_off, strlen(f->request) - f->req_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			f->req_off += (size_t)n;
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN)
			goto done;
		if (f->req_off == strlen(f->request)) {
			ev_io_stop(cl->ctl->e->loop, &f->io);
			ev_io_set(&f->io, f->fd, EV_READ);
			ev_io_start(cl->ctl->e->loop, &f->io);
		}
		return;
	}
	n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		strbuf_append(&f->reply, buf, (size_t)n);
		return;
	}
done:
	if (f->reply.len)
		strbuf_append(&cl->gathered, f->reply.p, f->reply.len);
	fetch_free(f);
	if (TAILQ_EMPTY(&cl->fetches))
		gathered_all(cl);
}

static int fetch_start(struct client *cl, pid_t master, const char *request)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct fetch *f = calloc(1, sizeof *f);
	int len = snprintf(sun.sun_path, sizeof sun.sun_path, "@emperor-vassal/%d", (int)master);

	if (!f)
		return -1;
	sun.sun_path[0] = '\0';
	f->cl = cl;
	snprintf(f->request, sizeof f->request, "%s\n", request);
	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f->fd < 0 || (connect(f->fd, (struct sockaddr *)&sun,
				  (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)len)) < 0 &&
			  errno != EINPROGRESS)) {
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return -1;
	}
	ev_io_init(&f->io, fetch_event, f->fd, EV_WRITE);
	ev_io_start(cl->ctl->e->loop, &f->io);
	TAILQ_INSERT_TAIL(&cl->fetches, f, link);
	return 0;
}

/* The masters asked have CTL_FETCH_TIMEOUT to answer (client_expired); none asked:
 * the answer goes now. */
static void fetch_deadline(struct client *cl)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	if (TAILQ_EMPTY(&cl->fetches)) {
		gathered_all(cl);
		return;
	}
	ev_timer_stop(loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_FETCH_TIMEOUT, 0);
	ev_timer_start(loop, &cl->timer);
}

static void gathered_all(struct client *cl)
{
	struct emperor *e = cl->ctl->e;

	if (cl->name[0]) { /* status NAME */
		if (!cl->gathered.len)
			strbuf_printf(&cl->gathered, cl->json ? "null\n" : "(the master did not answer)\n");
		strbuf_append(&cl->out, cl->gathered.p, cl->gathered.len);
		client_answer(cl, true, NULL);
		return;
	}
	metrics_emperor(e, &cl->out);
	metrics_merge(&cl->gathered, &cl->out);
	client_answer(cl, true, NULL);
}

/* ---- commands ------------------------------------------------------------------------------ */

static struct vassal *find(struct emperor *e, const char *name)
{
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link)
		if (strcmp(v->name, name) == 0 && (v->state != VASSAL_STOPPING || v->halting))
			return v;
	return NULL;
}

/* An error answer that names the vassal: "no such vassal 'x'". */
static void answer_error(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void answer_error(struct client *cl, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	client_answer(cl, false, why);
}

static void wait_for(struct client *cl, enum wait_kind kind, const char *name)
{
	size_t n = strv_len(cl->waiting_for);
	char **grown = realloc(cl->waiting_for, (n + 2) * sizeof *grown);

	if (!grown)
		return;
	cl->waiting_for = grown;
	grown[n] = strdup(name);
	grown[n + 1] = NULL;
	cl->wait = kind;
	ev_timer_stop(cl->ctl->e->loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_WAIT_TIMEOUT, 0);
	ev_timer_start(cl->ctl->e->loop, &cl->timer);
}

static void cmd_status(struct client *cl, const char *name)
{
	struct emperor *e = cl->ctl->e;
	struct vassal *v;

	if (!name) {
		if (cl->json)
			status_json(e, &cl->out);
		else
			status_table(e, &cl->out);
		client_answer(cl, true, NULL);
		return;
	}
	if (!(v = find(e, name))) {
		answer_error(cl, "no such vassal '%.256s'", name);
		return;
	}
	snprintf(cl->name, sizeof cl->name, "%s", name);
	if (!cl->json)
		strbuf_printf(&cl->out, "vassal %s: %s, pid %d, workers %d/%d, restarts %u, reloads %u\n",
			      v->name, vtable_state_name(v->state), (int)v->child.pid, v->workers_ready,
			      v->workers_total, v->restarts, v->reloads);
	if (child_running(&v->child))
		fetch_start(cl, v->child.pid, cl->json ? "json" : "text");
	fetch_deadline(cl);
}

static void cmd_metrics(struct client *cl)
{
	struct vassal *v;

	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (child_running(&v->child) && v->state != VASSAL_STOPPING)
			fetch_start(cl, v->child.pid, "metrics");
	fetch_deadline(cl);
}

static void cmd_reload(struct client *cl, const char *name, bool chain)
{
	struct emperor *e = cl->ctl->e;
	struct vassal *v;

	if (name && strcmp(name, "--all") == 0 && !chain) {
		TAILQ_FOREACH(v, &e->vassals, link)
			if (child_running(&v->child) && v->state != VASSAL_STOPPING) {
				wait_for(cl, WAIT_READY, v->name);
				vtable_reload(v, "emperorctl");
			}
		if (!cl->waiting_for)
			client_answer(cl, true, NULL);
		return;
	}
	if (!name) {
		client_answer(cl, false, chain ? "chain-reload needs a NAME" : "reload needs a NAME or --all");
		return;
	}
	if (!(v = find(e, name)) || !child_running(&v->child) || v->state == VASSAL_STOPPING) {
		answer_error(cl, v ? "vassal '%.256s' is not running" : "no such vassal '%.256s'", name);
		return;
	}
	wait_for(cl, WAIT_READY, v->name);
	if (!chain) {
		vtable_reload(v, "emperorctl");
		return;
	}
	vtable_chain_reload(v, "emperorctl");
}

static void cmd_stop_start(struct client *cl, const char *name, bool stop)
{
	struct vassal *v = name ? find(cl->ctl->e, name) : NULL;

	if (!v) {
		if (name)
			answer_error(cl, "no such vassal '%.256s'", name);
		else
			client_answer(cl, false, stop ? "stop needs a NAME" : "start needs a NAME");
		return;
	}
	if (stop && !child_running(&v->child)) {
		/* Halted already, or waiting to respawn: no respawn now, it stays halted
		 * until `start` or a change of its file, as after a stop of a running one. */
		strbuf_printf(&cl->out, "%s: %s\n", v->name, v->state == VASSAL_WAITING ?
			      "was waiting to respawn; halted" : "already stopped");
		vtable_halt(v);
		client_answer(cl, true, NULL);
		return;
	}
	if (!stop && v->halting && child_running(&v->child)) {
		answer_error(cl, "vassal '%.256s' is stopping: start it once it has stopped", name);
		return;
	}
	if (!stop && child_running(&v->child)) {
		strbuf_printf(&cl->out, "%s: already running\n", v->name);
		client_answer(cl, true, NULL);
		return;
	}
	wait_for(cl, stop ? WAIT_STOPPED : WAIT_READY, v->name);
	if (stop) {
		vtable_halt(v);
		return;
	}
	child_cancel_respawn(&v->child);
	vtable_start(v);
	if (!child_running(&v->child))
		control_vassal_event(cl->ctl->e, v, CTL_FAILED);
}

static void cmd_reopen_logs(struct client *cl)
{
	struct vassal *v;
	int n = 0;

	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (v->chan_fd >= 0 && notify_fd(v->chan_fd, "REOPEN_LOGS=1") == 0)
			n++;
	strbuf_printf(&cl->out, "asked %d vassals to reopen their logs\n", n);
	client_answer(cl, true, NULL);
}

static void dispatch(struct client *cl)
{
	char *save = NULL, *words[4] = { 0 };
	int n = 0;

	cl->in[strcspn(cl->in, "\r\n")] = '\0';
	for (char *w = strtok_r(cl->in, " \t", &save); w && n < 4; w = strtok_r(NULL, " \t", &save))
		if (strcmp(w, "--json") == 0)
			cl->json = true;
		else
			words[n++] = w;
	if (!words[0])
		client_answer(cl, false, "empty request");
	else if (strcmp(words[0], "status") == 0)
		cmd_status(cl, words[1]);
	else if (strcmp(words[0], "metrics") == 0)
		cmd_metrics(cl);
	else if (strcmp(words[0], "reload") == 0)
		cmd_reload(cl, words[1], false);
	else if (strcmp(words[0], "chain-reload") == 0)
		cmd_reload(cl, words[1], true);
	else if (strcmp(words[0], "stop") == 0 || strcmp(words[0], "start") == 0)
		cmd_stop_start(cl, words[1], words[0][2] == 'o');
	else if (strcmp(words[0], "reopen-logs") == 0)
		cmd_reopen_logs(cl);
	else
		client_answer(cl, false, "unknown command");
}

/* ---- clients --------------------------------------------------------------------------------- */

static void client_free(struct client *cl)
{
	struct ev_loop *loop = cl->ctl->e->loop;

	while (!TAILQ_EMPTY(&cl->fetches))
		fetch_free(TAILQ_FIRST(&cl->fetches));
	ev_io_stop(loop, &cl->io);
	ev_timer_stop(loop, &cl->timer);
	close(cl->fd);
	TAILQ_REMOVE(&cl->ctl->clients, cl, link);
	strbuf_free(&cl->out);
	strbuf_free(&cl->notes);
	strbuf_free(&cl->gathered);
	strv_free(cl->waiting_for);
	free(cl);
}

static void client_answer(struct client *cl, bool ok, const char *err)
{
	struct strbuf head = { 0 };
	struct ev_loop *loop = cl->ctl->e->loop;

	if (cl->http)
		strbuf_printf(&head, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
			      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			      ok ? "200 OK" : "500 Internal Server Error", cl->out.len);
	else if (ok)
		strbuf_printf(&head, "OK\n");
	else
		strbuf_printf(&head, "ERR %s\n", err);
	if (cl->notes.len)
		strbuf_append(&head, cl->notes.p, cl->notes.len);
	strbuf_append(&head, cl->out.p ? cl->out.p : "", cl->out.len);
	strbuf_free(&cl->out);
	cl->out = head;
	cl->out_off = 0;
	cl->answering = true;
	cl->wait = WAIT_NONE;
	ev_io_stop(loop, &cl->io);
	ev_io_set(&cl->io, cl->fd, EV_WRITE);
	ev_io_start(loop, &cl->io);
	ev_timer_stop(loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_READ_TIMEOUT, 0);
	ev_timer_start(loop, &cl->timer);
}

/* A request line; over HTTP, the whole head: answering (and closing) with part of
 * it unread would reset the connection under the client's feet. Any path answers,
 * so a long head is not kept, only its last bytes, to see where it ends. */
static bool request_read(struct client *cl)
{
	if (!cl->http)
		return strchr(cl->in, '\n') || cl->in_len == sizeof cl->in - 1;
	if (strstr(cl->in, "\r\n\r\n") || strstr(cl->in, "\n\n"))
		return true;
	if (cl->in_len == sizeof cl->in - 1) {
		memmove(cl->in, cl->in + cl->in_len - 3, 4);
		cl->in_len = 3;
	}
	return false;
}

static void client_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = container_of(w, struct client, io);
	ssize_t n;

	(void)loop, (void)revents;
	if (cl->answering) {
		n = send(cl->fd, cl->out.p + cl->out_off, cl->out.len - cl->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			cl->out_off += (size_t)n;
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || cl->out_off >= cl->out.len)
			client_free(cl);
		return;
	}
	n = recv(cl->fd, cl->in + cl->in_len, sizeof cl->in - 1 - cl->in_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_free(cl);
		return;
	}
	if (n < 0)
		return;
	cl->in_len += (size_t)n;
	cl->in[cl->in_len] = '\0';
	if (!request_read(cl))
		return;
	ev_io_stop(loop, &cl->io); /* one request per connection */
	if (cl->http)
		cmd_metrics(cl);
	else
		dispatch(cl);
}

static void client_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client *cl = container_of(w, struct client, timer);

	(void)loop, (void)revents;
	if (!TAILQ_EMPTY(&cl->fetches)) { /* some masters did not answer: use what came */
		while (!TAILQ_EMPTY(&cl->fetches))
			fetch_free(TAILQ_FIRST(&cl->fetches));
		gathered_all(cl);
	} else if (cl->wait != WAIT_NONE) {
		client_answer(cl, false, "timed out waiting");
	} else {
		client_free(cl);
	}
}

/* Only root and our own uid are served (SO_PEERCRED); uc says who it was. */
static bool peer_allowed(int fd, struct ucred *uc)
{
	socklen_t len = sizeof *uc;

	uc->pid = 0;
	uc->uid = (uid_t)-1;
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &len) == 0 &&
	       (uc->uid == 0 || uc->uid == getuid());
}

/* Says why before closing, so that the refused client can tell the user. */
static void refuse(int fd, const struct ucred *uc)
{
	static const char answer[] = "ERR refused: only root and the emperor's own uid are served\n";

	log_warn("control: refused a client of uid %d (pid %d): only root and uid %d are served",
		 (int)uc->uid, (int)uc->pid, (int)getuid());
	if (send(fd, answer, sizeof answer - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EPIPE)
		log_errno("control: send to the refused client");
	close(fd);
}

static void accept_clients(struct control *ctl, int lfd, bool http)
{
	for (int i = 0; i < 32; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct client *cl;
		struct ucred uc;
		if (fd < 0)
			return;
		if (!http && !peer_allowed(fd, &uc)) {
			refuse(fd, &uc);
			continue;
		}
		if (!(cl = calloc(1, sizeof *cl))) {
			log_errno("control: a client");
			close(fd);
			continue;
		}
		cl->ctl = ctl;
		cl->fd = fd;
		cl->http = http;
		TAILQ_INIT(&cl->fetches);
		ev_io_init(&cl->io, client_event, fd, EV_READ);
		ev_io_start(ctl->e->loop, &cl->io);
		ev_timer_init(&cl->timer, client_expired, CTL_READ_TIMEOUT, 0);
		ev_timer_start(ctl->e->loop, &cl->timer);
		TAILQ_INSERT_TAIL(&ctl->clients, cl, link);
	}
}

static void control_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	accept_clients(container_of(w, struct control, io), w->fd, false);
}

static void http_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	accept_clients(container_of(w, struct control, http_io), w->fd, true);
}

/* ---- sockets ---------------------------------------------------------------------------------- */

static int mkdir_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0755);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* Binds path, unless another emperor answers there. */
static int bind_control(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || strlen(path) >= sizeof sun.sun_path)
		goto fail;
	strcpy(sun.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		log_warn("control: %s: another emperor answers there; no control socket", path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(path); /* a stale socket of a previous run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask(0077);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0)
		goto fail;
	return fd;
fail:
	log_errno("control: %s", path);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int bind_metrics(const char *text)
{
	struct cfg_addr addr;
	const char *why = NULL;
	int one = 1, fd;

	if (parse_addr(text, &addr, &why) < 0) {
		log_warn("--metrics %s: %s", text, why);
		return -1;
	}
	fd = socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&addr.ss, addr.len) < 0 || listen(fd, 64) < 0) {
		log_errno("--metrics %s", text);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int control_open(struct emperor *e)
{
	struct control *ctl = calloc(1, sizeof *ctl);

	if (!ctl)
		return -1;
	ctl->e = e;
	ctl->http_fd = -1;
	TAILQ_INIT(&ctl->clients);
	if (e->opts.control_path)
		snprintf(ctl->path, sizeof ctl->path, "%s", e->opts.control_path);
	else
		runpath_control(e->dir, ctl->path, sizeof ctl->path);
	mkdir_parents(ctl->path);
	ctl->fd = bind_control(ctl->path);
	if (ctl->fd >= 0) {
		ev_io_init(&ctl->io, control_ready, ctl->fd, EV_READ);
		ev_io_start(e->loop, &ctl->io);
		log_info("control socket %s", ctl->path);
	}
	if (e->opts.metrics_addr && (ctl->http_fd = bind_metrics(e->opts.metrics_addr)) >= 0) {
		ev_io_init(&ctl->http_io, http_ready, ctl->http_fd, EV_READ);
		ev_io_start(e->loop, &ctl->http_io);
		log_info("metrics on http://%s/metrics", e->opts.metrics_addr);
	}
	e->control = ctl;
	return 0;
}

void control_close(struct emperor *e)
{
	struct control *ctl = e->control;

	if (!ctl)
		return;
	while (!TAILQ_EMPTY(&ctl->clients))
		client_free(TAILQ_FIRST(&ctl->clients));
	if (ctl->fd >= 0) {
		ev_io_stop(e->loop, &ctl->io);
		close(ctl->fd);
		unlink(ctl->path);
	}
	if (ctl->http_fd >= 0) {
		ev_io_stop(e->loop, &ctl->http_io);
		close(ctl->http_fd);
	}
	free(ctl);
	e->control = NULL;
}

/* Exposed for vtable.c: a reload finished after `seconds`. */
void control_reload_done(struct vassal *v, double seconds)
{
	observe_reload(v, seconds);
}
