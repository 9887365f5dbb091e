/* control_cmd.c — the commands of a control request line (see emperorctl(8)):
 *   status [NAME] [--json]   reload NAME|--all   chain-reload NAME
 *   stop NAME|--all   start NAME   reopen-logs   metrics   logs NAME [N] [follow]
 *   cluster [--json]
 * reload, chain-reload, stop, start and reopen-logs answer once done: the client waits
 * for the vassal's event (control_vassal_event) with a deadline of CTL_WAIT_TIMEOUT. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "emperor.h"
#include "etcd_status.h"
#include "notify.h"

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
			if ((ev == CTL_READY && cl->wait != WAIT_READY) ||
			    (ev == CTL_LOGS_REOPENED && cl->wait != WAIT_LOGS))
				break;
			bool good = (cl->wait == WAIT_READY && ev == CTL_READY) ||
				    (cl->wait == WAIT_STOPPED && ev == CTL_STOPPED) ||
				    (cl->wait == WAIT_LOGS && ev == CTL_LOGS_REOPENED);
			if (good)
				strbuf_printf(&cl->notes, "%s: done\n", v->name);
			else if (cl->wait == WAIT_LOGS)
				strbuf_printf(&cl->notes, "%s: gone before it reopened its log (%s)\n",
					      v->name, v->last_exit);
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
			ctl_answer(cl, cl->n_failed == 0, "some vassals failed");
	}
}

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
	ctl_answer(cl, false, why);
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
			ctl_render_json(e, &cl->out);
		else
			ctl_render_table(e, &cl->out);
		ctl_answer(cl, true, NULL);
		return;
	}
	if (!(v = find(e, name))) {
		answer_error(cl, "no such vassal '%.256s'", name);
		return;
	}
	snprintf(cl->name, sizeof cl->name, "%s", name);
	if (!cl->json)
		ctl_render_vassal_line(v, &cl->out);
	if (child_running(&v->child))
		ctl_fetch_queue(cl, v, cl->json ? "json" : "text");
	ctl_fetch_start(cl);
}

void ctl_cmd_metrics(struct client *cl)
{
	struct vassal *v;

	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (child_running(&v->child) && v->state != VASSAL_STOPPING)
			ctl_fetch_queue(cl, v, "metrics");
	ctl_fetch_start(cl);
}

static void cmd_reload(struct client *cl, const char *name, bool chain)
{
	struct emperor *e = cl->ctl->e;
	struct vassal *v;

	if (name && strcmp(name, "--all") == 0 && !chain) {
		TAILQ_FOREACH(v, &e->vassals, link)
			if (child_running(&v->child) && !vstate_leaving(v->state)) {
				wait_for(cl, WAIT_READY, v->name);
				vtable_reload(v, "emperorctl");
			}
		if (!cl->waiting_for)
			ctl_answer(cl, true, NULL);
		return;
	}
	if (!name) {
		ctl_answer(cl, false, chain ? "chain-reload needs a NAME" : "reload needs a NAME or --all");
		return;
	}
	v = find(e, name);
	if (v && child_running(&v->child) && vstate_leaving(v->state)) {
		answer_error(cl, "vassal '%.256s' is stopping: no reload", name);
		return;
	}
	if (!v || !child_running(&v->child)) {
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

/* stop --all: every running vassal halted; answers once every one has stopped. */
static void cmd_stop_all(struct client *cl)
{
	struct vassal *v, *next;

	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (child_running(&v->child) && v->state != VASSAL_STOPPING)
			wait_for(cl, WAIT_STOPPED, v->name);
	for (v = TAILQ_FIRST(&cl->ctl->e->vassals); v; v = next) {
		next = TAILQ_NEXT(v, link);
		if (child_running(&v->child) && v->state != VASSAL_STOPPING)
			vtable_halt(v);
	}
	if (!cl->waiting_for)
		ctl_answer(cl, true, NULL);
}

static void cmd_stop_start(struct client *cl, const char *name, bool stop)
{
	struct vassal *v = name ? find(cl->ctl->e, name) : NULL;

	if (stop && name && strcmp(name, "--all") == 0) {
		cmd_stop_all(cl);
		return;
	}
	if (!v) {
		if (name)
			answer_error(cl, "no such vassal '%.256s'", name);
		else
			ctl_answer(cl, false, stop ? "stop needs a NAME" : "start needs a NAME");
		return;
	}
	if (stop && !child_running(&v->child)) {
		/* Halted already, or waiting to respawn: no respawn now, it stays halted
		 * until `start` or a change of its file, as after a stop of a running one. */
		strbuf_printf(&cl->out, "%s: %s\n", v->name, v->state == VASSAL_WAITING ?
			      "was waiting to respawn; halted" : v->state == VASSAL_QUEUED ?
			      "not started yet; halted" : "already stopped");
		vtable_halt(v);
		ctl_answer(cl, true, NULL);
		return;
	}
	if (!stop && child_running(&v->child) && (v->halting || vstate_leaving(v->state))) {
		answer_error(cl, "vassal '%.256s' is stopping: start it once it has stopped", name);
		return;
	}
	if (!stop && child_running(&v->child)) {
		strbuf_printf(&cl->out, "%s: already running\n", v->name);
		ctl_answer(cl, true, NULL);
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

	/* each master answers X_LOGS_REOPENED=1 once it has (vtable.c's on_message) */
	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (v->chan_fd >= 0 && notify_fd(v->chan_fd, "REOPEN_LOGS=1") == 0) {
			wait_for(cl, WAIT_LOGS, v->name);
			n++;
		}
	strbuf_printf(&cl->out, "asked %d vassals to reopen their logs\n", n);
	if (n == 0)
		ctl_answer(cl, true, NULL);
}

static void cluster_answered(void *arg, const char *error)
{
	struct client *cl = arg;

	cl->cluster = NULL;
	if (error)
		answer_error(cl, "etcd: %.280s", error);
	else
		ctl_answer(cl, true, NULL);
}

/* Every node's vassals, from one range read of PREFIX/status/ (etcd_status.c). */
static void cmd_cluster(struct client *cl)
{
	struct emperor *e = cl->ctl->e;

	if (!e->etcd_status) {
		ctl_answer(cl, false, "this emperor runs without --etcd");
		return;
	}
	cl->cluster = etcd_status_cluster(e->etcd_status, cl->json, &cl->out, cluster_answered, cl);
	if (!cl->cluster) {
		ctl_answer(cl, false, "out of memory");
		return;
	}
	/* the etcd client's own budget (5 s) answers first, with its reason */
	ev_timer_stop(e->loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_CLUSTER_TIMEOUT, 0);
	ev_timer_start(e->loop, &cl->timer);
}

void ctl_dispatch(struct client *cl)
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
		ctl_answer(cl, false, "empty request");
	else if (strcmp(words[0], "status") == 0)
		cmd_status(cl, words[1]);
	else if (strcmp(words[0], "metrics") == 0)
		ctl_cmd_metrics(cl);
	else if (strcmp(words[0], "reload") == 0)
		cmd_reload(cl, words[1], false);
	else if (strcmp(words[0], "chain-reload") == 0)
		cmd_reload(cl, words[1], true);
	else if (strcmp(words[0], "stop") == 0 || strcmp(words[0], "start") == 0)
		cmd_stop_start(cl, words[1], words[0][2] == 'o');
	else if (strcmp(words[0], "logs") == 0)
		ctl_cmd_logs(cl, words[1], words[2], words[3]);
	else if (strcmp(words[0], "reopen-logs") == 0)
		cmd_reopen_logs(cl);
	else if (strcmp(words[0], "cluster") == 0)
		cmd_cluster(cl);
	else
		ctl_answer(cl, false, "unknown command");
}

void ctl_gathered(struct client *cl)
{
	struct emperor *e = cl->ctl->e;

	if (cl->page) { /* /status.json */
		ctl_page_gathered(cl);
		return;
	}
	if (cl->name[0]) { /* status NAME */
		if (cl->json)
			ctl_render_master_json(&cl->gathered, &cl->out);
		else if (!cl->gathered.len)
			strbuf_printf(&cl->out, "(the master did not answer)\n");
		else
			strbuf_append(&cl->out, cl->gathered.p, cl->gathered.len);
		ctl_answer(cl, true, NULL);
		return;
	}
	ctl_render_metrics(e, &cl->gathered, &cl->out);
	ctl_answer(cl, true, NULL);
}
