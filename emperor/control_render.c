/* control_render.c — what the control module shows: the status table, the status
 * JSON (json-c), the Prometheus text (the emperor's families, and the masters'
 * samples merged under theirs), and the reload-duration histogram behind it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control_int.h"
#include "emperor.h"
#include "jsonout.h"

static const double bucket_le[CTL_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

/* ---- figures ------------------------------------------------------------------------ */

static void observe_reload(struct vassal *v, double seconds)
{
	v->reloads++;
	v->reload_seconds_sum += seconds;
	for (int i = 0; i < CTL_BUCKETS; i++)
		if (seconds <= bucket_le[i])
			v->reload_buckets[i]++;
}

void control_reload_done(struct vassal *v, double seconds)
{
	observe_reload(v, seconds);
}

unsigned ctl_reloads(const struct vassal *v)
{
	return v->reloads;
}

/* ---- status ------------------------------------------------------------------------- */

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

static struct json_object *vassal_json(const struct vassal *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", jsonout_string(v->name));
	json_object_object_add(o, "state", json_object_new_string(vtable_state_name(v->state)));
	json_object_object_add(o, "pid", json_object_new_int((int)v->child.pid));
	json_object_object_add(o, "uptime", jsonout_fixed(child_uptime(&v->child), 1));
	json_object_object_add(o, "workers_ready", json_object_new_int(v->workers_ready));
	json_object_object_add(o, "workers_total", json_object_new_int(v->workers_total));
	json_object_object_add(o, "restarts", json_object_new_int64(v->restarts));
	json_object_object_add(o, "reloads", json_object_new_int64(ctl_reloads(v)));
	json_object_object_add(o, "last_exit", jsonout_string(v->last_exit));
	json_object_object_add(o, "config_error", jsonout_string(v->config_error));
	return o;
}

void ctl_render_json(struct emperor *e, struct strbuf *b)
{
	struct json_object *doc = json_object_new_object(), *me = json_object_new_object();
	struct json_object *list = json_object_new_array();
	struct vassal *v;

	json_object_object_add(me, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(me, "dir", jsonout_string(e->dir));
	json_object_object_add(me, "uptime", jsonout_fixed(mono_now() - e->started_at, 1));
	json_object_object_add(me, "state", json_object_new_string(e->stopping ? "stopping" : "running"));
	TAILQ_FOREACH(v, &e->vassals, link)
		json_object_array_add(list, vassal_json(v));
	json_object_object_add(doc, "emperor", me);
	json_object_object_add(doc, "vassals", list);
	jsonout_append(b, doc);
}

/* A master's JSON, parsed and written again: only valid JSON (and UTF-8) reaches
 * the client, whatever the master (maybe running as another user) sent; else null. */
void ctl_render_master_json(const struct strbuf *reply, struct strbuf *b)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;

	if (tok && reply->len) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		o = json_tokener_parse_ex(tok, reply->p, (int)reply->len);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(o);
			o = NULL;
		}
	}
	if (tok)
		json_tokener_free(tok);
	jsonout_append(b, o);
}

void ctl_render_table(struct emperor *e, struct strbuf *b)
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

void ctl_render_vassal_line(const struct vassal *v, struct strbuf *b)
{
	strbuf_printf(b, "vassal %s: %s, pid %d, workers %d/%d, restarts %u, reloads %u\n",
		      v->name, vtable_state_name(v->state), (int)v->child.pid, v->workers_ready,
		      v->workers_total, v->restarts, ctl_reloads(v));
}

/* ---- Prometheus ----------------------------------------------------------------------- */

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
			      name, v->reloads, name, v->reload_seconds_sum, name, ctl_reloads(v));
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
};

/* Groups the masters' samples by family (a family's samples must be contiguous). */
static void metrics_merge(const struct strbuf *gathered, struct strbuf *b)
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

void ctl_render_metrics(struct emperor *e, const struct strbuf *gathered, struct strbuf *b)
{
	metrics_emperor(e, b);
	metrics_merge(gathered, b);
}
