/* control_page.c — the read-only status page of the --metrics listener: the page
 * itself (emperor/page.html, compiled in by the Makefile with xxd -i) and
 * /status.json, the status JSON with each running master's generation. With
 * ?after=V (V: the "version" of the answer the page has) the answer is held until
 * what the page shows changes (checked every CTL_PAGE_TICK s while a page waits) or
 * CTL_PAGE_HOLD s have passed: live updates within a fraction of a second, one
 * request per connection like every other answer of the listener. Nothing here
 * changes anything: the page has no action to take. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "emperor.h"
#include "jsonout.h"

static const char page_html[] = {
#include "page_html.inc"
};

const char *ctl_page_html(size_t *len)
{
	*len = sizeof page_html;
	return page_html;
}

/* ---- the version: FNV-1a over what the page shows ------------------------------------ */

static void mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ c[i]) * 1099511628211ULL;
}

static void mix_str(uint64_t *h, const char *s)
{
	mix(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

void ctl_page_version(struct emperor *e, char *buf, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link) {
		int figures[6] = { (int)v->state, (int)v->child.pid, v->workers_ready, v->workers_total,
				   (int)v->restarts, (int)ctl_reloads(v) };
		mix_str(&h, v->name);
		mix(&h, figures, sizeof figures);
		mix_str(&h, v->config_error);
		mix_str(&h, v->last_exit);
	}
	mix(&h, &e->stopping, sizeof e->stopping);
	snprintf(buf, len, "%016llx", (unsigned long long)h);
}

/* ---- /status.json ------------------------------------------------------------------ */

/* Asks every running master for its JSON (the generation); the answer goes once they
 * have answered (ctl_page_gathered) or CTL_FETCH_TIMEOUT has passed. */
static void page_answer(struct client *cl)
{
	struct vassal *v;

	cl->page = true;
	TAILQ_FOREACH(v, &cl->ctl->e->vassals, link)
		if (child_running(&v->child) && v->state != VASSAL_STOPPING)
			ctl_fetch_queue(cl, v, "json");
	ctl_fetch_start(cl);
}

static void page_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct control *ctl = container_of(w, struct control, page_tick);
	struct client *cl, *next;
	char now[24];

	(void)loop, (void)revents;
	ctl_page_version(ctl->e, now, sizeof now);
	for (cl = TAILQ_FIRST(&ctl->clients); cl; cl = next) {
		next = TAILQ_NEXT(cl, link);
		if (cl->wait == WAIT_CHANGE && strcmp(cl->after, now) != 0) {
			ctl_page_unwatch(cl);
			page_answer(cl);
		}
	}
}

/* The value of after= in a query string, or "". */
static void query_after(const char *query, char *buf, size_t len)
{
	buf[0] = '\0';
	for (const char *p = query; p && *p; p += strcspn(p, "&"), p += *p == '&')
		if (strncmp(p, "after=", 6) == 0)
			snprintf(buf, len, "%.*s", (int)strcspn(p + 6, "&"), p + 6);
}

void ctl_page_status(struct client *cl, const char *query)
{
	struct control *ctl = cl->ctl;
	struct ev_loop *loop = ctl->e->loop;
	char now[24];

	ctl_http_set_type(cl, "application/json");
	query_after(query, cl->after, sizeof cl->after);
	ctl_page_version(ctl->e, now, sizeof now);
	if (!cl->after[0] || strcmp(cl->after, now) != 0) {
		page_answer(cl);
		return;
	}
	if (ctl->n_watchers >= CTL_MAX_WATCHERS) {
		page_answer(cl);
		return;
	}
	cl->wait = WAIT_CHANGE;
	ctl->n_http--; /* a held page leaves its place to a scrape */
	ev_timer_stop(loop, &cl->timer);
	ev_timer_set(&cl->timer, CTL_PAGE_HOLD, 0);
	ev_timer_start(loop, &cl->timer);
	/* a page closed meanwhile (EOF) goes at once: control.c watches for it */
	ev_io_stop(loop, &cl->io);
	ev_io_set(&cl->io, cl->fd, EV_READ);
	ev_io_start(loop, &cl->io);
	if (ctl->n_watchers++ == 0) {
		ev_timer_init(&ctl->page_tick, page_tick, CTL_PAGE_TICK, CTL_PAGE_TICK);
		ev_timer_start(loop, &ctl->page_tick);
	}
}

void ctl_page_unwatch(struct client *cl)
{
	struct control *ctl = cl->ctl;

	if (cl->wait != WAIT_CHANGE)
		return;
	cl->wait = WAIT_NONE;
	ctl->n_http++;
	ev_io_stop(ctl->e->loop, &cl->io);
	if (--ctl->n_watchers == 0)
		ev_timer_stop(ctl->e->loop, &ctl->page_tick);
}

void ctl_page_expired(struct client *cl)
{
	ctl_page_unwatch(cl);
	page_answer(cl);
}

void ctl_page_keep(struct client *cl, const char *vassal, const struct strbuf *reply)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		return;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, reply->p, (int)reply->len);
	if (json_tokener_get_error(tok) == json_tokener_success && json_object_is_type(o, json_type_object)) {
		if (!cl->masters)
			cl->masters = json_object_new_object();
		if (cl->masters)
			json_object_object_add(cl->masters, vassal, o);
		else
			json_object_put(o);
	} else {
		json_object_put(o);
	}
	json_tokener_free(tok);
}

void ctl_page_gathered(struct client *cl)
{
	struct json_object *doc = ctl_render_status_doc(cl->ctl->e, cl->masters);

	jsonout_append(&cl->out, doc);
	ctl_answer(cl, true, NULL);
}

void ctl_page_close(struct control *ctl)
{
	if (ctl->n_watchers > 0)
		ev_timer_stop(ctl->e->loop, &ctl->page_tick);
	ctl->n_watchers = 0;
}
