/* legion_lord.c — what being a legion's lord means on this master: taking the throne
 * (the on-lord hook, the lord-only daemons and crons, the gateway subscriptions), and
 * stepping down or fencing (those children stopped within a mercy, then on-unlord, then
 * legion_unlorded() tells legion.c's machine); and the legions' lines on the
 * status page and the metrics. The etcd side and the state machine are legion.c. */
#include "legion.h"

#include <json-c/json.h>
#include <stdio.h>

#include "cron.h"
#include "daemons.h"
#include "gateway.h"
#include "jsonout.h"
#include "log.h"
#include "master.h"
#include "prom.h"
#include "legion_internal.h"
static void hook(struct legion *l, char *const *argv, const char *which, void (*done)(void *))
{
	char name[96], token[48], lname[96];
	char *env[] = { token, lname, NULL };

	snprintf(name, sizeof name, "%s %s", which, LCFG(l)->name);
	snprintf(token, sizeof token, "LEGION_TOKEN=%lld", (long long)l->token);
	snprintf(lname, sizeof lname, "LEGION_NAME=%s", LCFG(l)->name);
	if (!argv) {
		if (done)
			done(l);
		return;
	}
	cron_run_hook(l->all->m, name, argv, env, done, l);
}

void legion_enthrone(struct legion *l)
{
	struct master *m = l->all->m;
	char token[48], lname[96];
	char *env[] = { token, lname, NULL };

	l->transitions++;
	l->lord_since = ev_now(m->loop);
	log_info("legion %s: lord (valor %d, token %lld, %zu members)", LCFG(l)->name,
		 LCFG(l)->valor, (long long)l->token, l->n_members);
	snprintf(token, sizeof token, "LEGION_TOKEN=%lld", (long long)l->token);
	snprintf(lname, sizeof lname, "LEGION_NAME=%s", LCFG(l)->name);
	hook(l, m->cfg->hooks.on_lord, "on-lord", NULL);
	daemons_legion_start(m, LCFG(l)->name, env);
	subscriptions_legion(m, LCFG(l)->name, true);
}

static void unlord_hook_done(void *arg)
{
	legion_unlorded(arg);
}

/* Each lord-only child reaped; the last one hands over to on-unlord. */
static void child_retired(void *arg)
{
	struct legion *l = arg;

	if (--l->stopping > 0)
		return;
	hook(l, l->all->m->cfg->hooks.on_unlord, "on-unlord", unlord_hook_done);
}

/* Asks each lord-only child to stop within max_mercy; returns how many are newly asked
 * (one asked again keeps its count: only its mercy shortens). */
static int stop_each(struct legion *l, double max_mercy)
{
	struct master *m = l->all->m;

	return daemons_legion_stop(m, LCFG(l)->name, max_mercy, child_retired, l) +
	       cron_legion_stop(m, LCFG(l)->name, max_mercy, child_retired, l);
}

/* Stops what only the lord runs; max_mercy bounds each one's mercy. The on-unlord hook
 * follows when they are gone (child_retired), then legion_unlorded(). */
void legion_stop_lord_children(struct legion *l, double max_mercy)
{
	struct master *m = l->all->m;

	if (l->lord_since > 0)
		log_info("legion %s: no longer lord after %.1fs", LCFG(l)->name,
			 ev_now(m->loop) - l->lord_since);
	l->lord_since = 0;
	l->transitions++;
	subscriptions_legion(m, LCFG(l)->name, false);
	l->stopping++; /* held while the counts are taken */
	l->stopping += stop_each(l, max_mercy);
	if (--l->stopping == 0)
		hook(l, m->cfg->hooks.on_unlord, "on-unlord", unlord_hook_done);
}

/* A step-down under way, the lease lost meanwhile: the children still stopping get
 * max_mercy at most; on-unlord follows the last of them as before. */
void legion_hasten_lord_children(struct legion *l, double max_mercy)
{
	l->stopping += stop_each(l, max_mercy);
}

/* ---- status ---------------------------------------------------------------------------- */

static const char *role(const struct legion *l)
{
	if (!l->etcd)
		return "off (no etcd client: see the log)";
	return legion_state_status(l->state);
}

void legion_status_text(const struct master *m, struct strbuf *b)
{
	for (size_t i = 0; m->legions && i < m->legions->n; i++) {
		const struct legion *l = &m->legions->l[i];
		strbuf_printf(b, "legion %s: %s, valor %d, %zu members", LCFG(l)->name, role(l),
			      LCFG(l)->valor, l->n_members);
		if (l->state == LG_LORD)
			strbuf_printf(b, ", token %lld", (long long)l->token);
		strbuf_printf(b, "\n");
	}
}

void legion_status_json(const struct master *m, struct json_object *doc)
{
	struct json_object *arr;

	if (!m->legions)
		return;
	arr = json_object_new_array();
	for (size_t i = 0; i < m->legions->n; i++) {
		const struct legion *l = &m->legions->l[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", jsonout_string(LCFG(l)->name));
		json_object_object_add(o, "state", json_object_new_string(role(l)));
		json_object_object_add(o, "lord", json_object_new_boolean(l->state == LG_LORD));
		json_object_object_add(o, "valor", json_object_new_int(LCFG(l)->valor));
		json_object_object_add(o, "members", json_object_new_int((int)l->n_members));
		json_object_object_add(o, "token", json_object_new_int64(l->state == LG_LORD ? l->token : 0));
		json_object_object_add(o, "transitions", json_object_new_int64(l->transitions));
		json_object_array_add(arr, o);
	}
	json_object_object_add(doc, "legions", arr);
}

void legion_metrics(const struct master *m, struct strbuf *b, const char *v)
{
	char name[2 * 64 + 4];

	for (size_t i = 0; m->legions && i < m->legions->n; i++) {
		const struct legion *l = &m->legions->l[i];
		prom_label(LCFG(l)->name, name, sizeof name);
		strbuf_printf(b, "%s{vassal=\"%s\",legion=\"%s\"} %d\n", prom_families[PROM_LEGION_LORD].name,
			      v, name, l->state == LG_LORD);
		strbuf_printf(b, "%s{vassal=\"%s\",legion=\"%s\"} %u\n",
			      prom_families[PROM_LEGION_TRANSITIONS].name, v, name, l->transitions);
	}
}
