/* control_render.c — what the control module shows: the status table, the status
 * JSON (json-c), the Prometheus text (the emperor's families, and the masters'
 * samples merged under theirs), and the reload-duration histogram behind it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_int.h"
#include "emperor.h"
#include "jsonout.h"
#include "prom.h"
#include "version.h"

static const double bucket_le[CTL_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

/* ---- figures ------------------------------------------------------------------------ */

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the control module counts of a vassal, reached from it by one pointer and
 * allocated at its first reload. */
struct ctl_figures {
	unsigned reloads;                     /* reloads completed */
	unsigned reload_buckets[CTL_BUCKETS]; /* their durations, a cumulative histogram */
	double reload_seconds_sum;
	double recent[CTL_RECENT];            /* the last durations, a ring (the page's chart) */
	double last_reload_at;                /* when the last one completed, Unix time */
};

void control_reload_done(struct vassal *v, double seconds)
{
	if (!v->figures && !(v->figures = calloc(1, sizeof *v->figures)))
		return;
	v->figures->recent[v->figures->reloads % CTL_RECENT] = seconds;
	v->figures->reloads++;
	v->figures->reload_seconds_sum += seconds;
	v->figures->last_reload_at = wall_now();
	for (int i = 0; i < CTL_BUCKETS; i++)
		if (seconds <= bucket_le[i])
			v->figures->reload_buckets[i]++;
}

void control_vassal_free(struct vassal *v)
{
	free(v->figures);
	v->figures = NULL;
}

unsigned ctl_reloads(const struct vassal *v)
{
	return v->figures ? v->figures->reloads : 0;
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

/* The last reload durations, oldest first. */
static struct json_object *recent_json(const struct ctl_figures *fig)
{
	struct json_object *a = json_object_new_array();
	unsigned n = fig ? (fig->reloads < CTL_RECENT ? fig->reloads : CTL_RECENT) : 0;

	for (unsigned i = 0; i < n; i++)
		json_object_array_add(a, jsonout_fixed(fig->recent[(fig->reloads - n + i) % CTL_RECENT], 3));
	return a;
}

static struct json_object *vassal_json(const struct vassal *v, struct json_object *masters)
{
	struct json_object *o = json_object_new_object(), *master = NULL, *gen = NULL;

	json_object_object_add(o, "name", jsonout_string(v->name));
	json_object_object_add(o, "state", json_object_new_string(vtable_state_name(v->state)));
	json_object_object_add(o, "on_demand", json_object_new_boolean(v->on_demand));
	json_object_object_add(o, "pid", json_object_new_int((int)v->child.pid));
	json_object_object_add(o, "uptime", jsonout_fixed(child_uptime(&v->child), 1));
	json_object_object_add(o, "workers_ready", json_object_new_int(v->workers_ready));
	json_object_object_add(o, "workers_total", json_object_new_int(v->workers_total));
	json_object_object_add(o, "restarts", json_object_new_int64(v->restarts));
	json_object_object_add(o, "reloads", json_object_new_int64(ctl_reloads(v)));
	json_object_object_add(o, "last_exit", jsonout_string(v->last_exit));
	json_object_object_add(o, "config_error", jsonout_string(v->config_error));
	json_object_object_add(o, "reload_seconds", recent_json(v->figures));
	json_object_object_add(o, "last_reload_at", v->figures ? jsonout_fixed(v->figures->last_reload_at, 3) : NULL);
	if (masters && json_object_object_get_ex(masters, v->name, &master) &&
	    json_object_object_get_ex(master, "generation", &gen) && json_object_is_type(gen, json_type_int))
		json_object_object_add(o, "generation", json_object_get(gen));
	return o;
}

struct json_object *ctl_render_status_doc(struct emperor *e, struct json_object *masters)
{
	struct json_object *doc = json_object_new_object(), *me = json_object_new_object();
	struct json_object *list = json_object_new_array();
	struct vassal *v;
	char version[24];

	json_object_object_add(me, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(me, "dir", jsonout_string(e->dir));
	json_object_object_add(me, "uptime", jsonout_fixed(mono_now() - e->started_at, 1));
	json_object_object_add(me, "state", json_object_new_string(e->stopping ? "stopping" : "running"));
	json_object_object_add(me, "page_watchers", json_object_new_int(e->control ? e->control->n_watchers : 0));
	TAILQ_FOREACH(v, &e->vassals, link)
		json_object_array_add(list, vassal_json(v, masters));
	ctl_page_version(e, version, sizeof version);
	json_object_object_add(doc, "version", json_object_new_string(version));
	json_object_object_add(doc, "emperor", me);
	json_object_object_add(doc, "vassals", list);
	return doc;
}

void ctl_render_json(struct emperor *e, struct strbuf *b)
{
	jsonout_append(b, ctl_render_status_doc(e, NULL));
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

	strbuf_printf(b, "%-20s %-13s %8s %7s %8s %8s %7s  %-22s %s\n", "VASSAL", "STATE", "PID",
		      "UPTIME", "WORKERS", "RESTARTS", "RELOADS", "LAST EXIT", "CONFIG ERROR");
	TAILQ_FOREACH(v, &e->vassals, link) {
		snprintf(workers, sizeof workers, "%d/%d", v->workers_ready, v->workers_total);
		strbuf_printf(b, "%-20s %-13s %8d %7s %8s %8u %7u  %-22s %s\n", v->name,
			      vtable_state_name(v->state), (int)v->child.pid,
			      child_running(&v->child) ? uptime_text(child_uptime(&v->child), up, sizeof up) : "-",
			      workers, v->restarts, ctl_reloads(v), v->last_exit[0] ? v->last_exit : "-",
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

static void metrics_vassals(struct emperor *e, struct strbuf *b)
{
	int counts[VASSAL_N_STATES] = { 0 };
	const char *name = prom_families[PROM_VASSALS].name;
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link)
		counts[v->state]++;
	prom_header(b, PROM_VASSALS);
	for (int s = 0; s < VASSAL_N_STATES; s++)
		strbuf_printf(b, "%s{state=\"%s\"} %d\n", name, vstate_name(s), counts[s]);
}

static void metrics_reload_histogram(const struct vassal *v, const char *label, struct strbuf *b)
{
	static const struct ctl_figures none;
	const struct ctl_figures *fig = v->figures ? v->figures : &none;
	const char *name = prom_families[PROM_RELOAD_DURATION].name;

	for (int i = 0; i < CTL_BUCKETS; i++)
		strbuf_printf(b, "%s_bucket{vassal=\"%s\",le=\"%g\"} %u\n", name, label, bucket_le[i],
			      fig->reload_buckets[i]);
	strbuf_printf(b, "%s_bucket{vassal=\"%s\",le=\"+Inf\"} %u\n%s_sum{vassal=\"%s\"} %.6f\n"
		      "%s_count{vassal=\"%s\"} %u\n", name, label, fig->reloads, name, label,
		      fig->reload_seconds_sum, name, label, fig->reloads);
}

/* The first number of a /proc file's line that starts with key; key "": the first
 * line's field number `field` counted after the ")" of /proc/self/stat, or with field
 * -1 the second number of /proc/self/statm. */
static double proc_number(const char *path, const char *key, int field)
{
	char line[1024], *p;
	double value = 0;
	FILE *fp = fopen(path, "re");

	if (!fp)
		return 0;
	while (fgets(line, sizeof line, fp)) {
		if (key[0] && strncmp(line, key, strlen(key)) == 0) {
			value = strtod(line + strlen(key), NULL);
			break;
		}
		if (!key[0] && field < 0) { /* /proc/self/statm: its second number */
			if (sscanf(line, "%*s %lf", &value) != 1)
				value = 0;
			break;
		}
		if (!key[0]) {
			p = strrchr(line, ')'); /* the command name may hold spaces */
			for (int i = 0; p && i < field; i++)
				p = strchr(p + 1, ' ');
			value = p ? strtod(p + 1, NULL) : 0;
			break;
		}
	}
	fclose(fp);
	return value;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* The emperor's own process, as every Prometheus client library names it. */
static void metrics_process(struct strbuf *b)
{
	static double started;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rusage ru = { 0 };
	struct rlimit rl = { 0 };

	if (!started && ticks > 0) /* starttime is field 22; 20 after the ")" */
		started = proc_number("/proc/stat", "btime ", 0) +
			  proc_number("/proc/self/stat", "", 20) / (double)ticks;
	getrusage(RUSAGE_SELF, &ru);
	getrlimit(RLIMIT_NOFILE, &rl);
	prom_header(b, PROM_PROCESS_CPU);
	strbuf_printf(b, "%s %.3f\n", prom_families[PROM_PROCESS_CPU].name,
		      (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	prom_header(b, PROM_PROCESS_RSS);
	strbuf_printf(b, "%s %.0f\n", prom_families[PROM_PROCESS_RSS].name,
		      proc_number("/proc/self/statm", "", -1) * (double)page);
	prom_header(b, PROM_PROCESS_FDS);
	strbuf_printf(b, "%s %d\n", prom_families[PROM_PROCESS_FDS].name, open_fds());
	prom_header(b, PROM_PROCESS_MAX_FDS);
	strbuf_printf(b, "%s %.0f\n", prom_families[PROM_PROCESS_MAX_FDS].name, (double)rl.rlim_cur);
	prom_header(b, PROM_PROCESS_START);
	strbuf_printf(b, "%s %.2f\n", prom_families[PROM_PROCESS_START].name, started);
}

/* The emperor's families, from its table, each with HELP and TYPE once. */
static void metrics_emperor(struct emperor *e, struct strbuf *b)
{
	struct vassal *v;
	char label[2 * NAME_MAX + 4];

	prom_header(b, PROM_BUILD_INFO);
	strbuf_printf(b, "%s{version=\"%s\",features=\"%s\"} 1\n", prom_families[PROM_BUILD_INFO].name,
		      EMPEROR_VERSION, EMPEROR_FEATURES);
	metrics_process(b);
	metrics_vassals(e, b);
	prom_header(b, PROM_RESTARTS);
	TAILQ_FOREACH(v, &e->vassals, link)
		strbuf_printf(b, "%s{vassal=\"%s\"} %u\n", prom_families[PROM_RESTARTS].name,
			      prom_label(v->name, label, sizeof label), v->restarts);
	prom_header(b, PROM_CONFIG_ERROR);
	TAILQ_FOREACH(v, &e->vassals, link)
		strbuf_printf(b, "%s{vassal=\"%s\"} %d\n", prom_families[PROM_CONFIG_ERROR].name,
			      prom_label(v->name, label, sizeof label), v->config_error != NULL);
	prom_header(b, PROM_LAST_RELOAD);
	TAILQ_FOREACH(v, &e->vassals, link)
		strbuf_printf(b, "%s{vassal=\"%s\"} %.3f\n", prom_families[PROM_LAST_RELOAD].name,
			      prom_label(v->name, label, sizeof label),
			      v->figures ? v->figures->last_reload_at : 0.0);
	prom_header(b, PROM_RELOAD_DURATION);
	TAILQ_FOREACH(v, &e->vassals, link)
		metrics_reload_histogram(v, prom_label(v->name, label, sizeof label), b);
}

/* Groups the masters' samples by family (a family's samples must be contiguous),
 * under the family's HELP and TYPE; a line of no known family is left out. */
static void metrics_merge(const struct strbuf *gathered, struct strbuf *b)
{
	for (int f = PROM_FIRST_MASTER_FAMILY; f < PROM_N_FAMILIES; f++) {
		size_t flen = strlen(prom_families[f].name);
		bool header = false;
		for (char *line = gathered->p; line && *line;) {
			char *nl = strchr(line, '\n');
			size_t len = nl ? (size_t)(nl - line) : strlen(line);
			if (strncmp(line, prom_families[f].name, flen) == 0 && line[flen] == '{') {
				if (!header)
					prom_header(b, (enum prom_family)f);
				header = true;
				strbuf_append(b, line, len);
				strbuf_append(b, "\n", 1);
			}
			line = nl ? nl + 1 : NULL;
		}
	}
}

/* One line of a master's metrics: a sample of one of the masters' families whose
 * first label is vassal="<label>", and nothing but printable bytes. */
static bool master_sample(const char *line, size_t len, const char *label)
{
	size_t llen = strlen(label), at;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return false;
	for (int f = PROM_FIRST_MASTER_FAMILY; f < PROM_N_FAMILIES; f++) {
		size_t flen = strlen(prom_families[f].name);
		at = flen + sizeof "{vassal=\"" - 1;
		if (len > at + llen + 1 && strncmp(line, prom_families[f].name, flen) == 0 &&
		    strncmp(line + flen, "{vassal=\"", at - flen) == 0 &&
		    strncmp(line + at, label, llen) == 0 && line[at + llen] == '"' &&
		    (line[at + llen + 1] == ',' || line[at + llen + 1] == '}'))
			return true;
	}
	return false;
}

int ctl_render_master_samples(const char *reply, size_t len, const char *vassal, struct strbuf *b)
{
	char label[2 * NAME_MAX + 4];
	const char *end = reply + len;
	int dropped = 0;

	prom_label(vassal, label, sizeof label);
	for (const char *line = reply; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
		if (nl && master_sample(line, n, label)) {
			strbuf_append(b, line, n + 1);
		} else if (n > 0) {
			dropped++;
		}
		line += n + 1;
	}
	return dropped;
}

void ctl_render_master_text(const char *reply, size_t len, struct strbuf *b)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)reply[i];
		strbuf_append(b, (c < 0x20 && c != '\n') || c == 0x7f ? "?" : &reply[i], 1);
	}
}

void ctl_render_metrics(struct emperor *e, const struct strbuf *gathered, struct strbuf *b)
{
	metrics_emperor(e, b);
	metrics_merge(gathered, b);
}
