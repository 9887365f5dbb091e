/* control_logs.c — `emperorctl logs NAME [-n N] [-f]`: a vassal's last lines from the
 * ring output.c keeps, and with -f every line that comes after, for as long as the
 * client stays (it is never answered "done": it goes by closing). output.c hands each
 * new line over (control_vassal_line); a follower that does not read fast enough
 * loses lines, counted and said in its stream, never the emperor's memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "emperor.h"
#include "output.h"

#define FOLLOW_MAX (1024 * 1024) /* bytes waiting for one follower, at most */

static struct vassal *by_name(struct emperor *e, const char *name)
{
	struct vassal *v;

	TAILQ_FOREACH(v, &e->vassals, link)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

/* logs NAME [N] [follow]: N lines at most (0 or none: every line kept). */
void ctl_cmd_logs(struct client *cl, const char *name, const char *count, const char *follow)
{
	struct vassal *v = name ? by_name(cl->ctl->e, name) : NULL;
	char *end = NULL;
	long n = count ? strtol(count, &end, 10) : 0;

	if (!name) {
		ctl_answer(cl, false, "logs needs a NAME");
		return;
	}
	if ((count && (*end || n < 0)) || (follow && strcmp(follow, "follow") != 0)) {
		ctl_answer(cl, false, "usage: logs NAME [N] [follow]");
		return;
	}
	if (!v) {
		char why[320];
		snprintf(why, sizeof why, "no such vassal '%.256s'", name);
		ctl_answer(cl, false, why);
		return;
	}
	output_lines(v, 0, (size_t)n, &cl->out);
	if (follow) {
		cl->following = true;
		snprintf(cl->name, sizeof cl->name, "%s", name);
		cl->ctl->n_followers++;
	}
	ctl_answer(cl, true, NULL);
}

bool control_following(const struct emperor *e)
{
	return e->control && e->control->n_followers > 0;
}

void control_vassal_line(struct vassal *v, double t, const char *line, size_t len)
{
	struct control *ctl = v->e->control;
	struct client *cl;

	if (!ctl || ctl->n_followers == 0)
		return;
	TAILQ_FOREACH(cl, &ctl->clients, link) {
		if (!cl->following || strcmp(cl->name, v->name) != 0)
			continue;
		if (cl->out.len - cl->out_off > FOLLOW_MAX) {
			cl->dropped++;
			continue;
		}
		if (cl->dropped) {
			strbuf_printf(&cl->out, "(%llu lines not shown: this reader was too slow)\n",
				      cl->dropped);
			cl->dropped = 0;
		}
		output_show_line(t, line, len, &cl->out);
		ctl_follow_wake(cl);
	}
}
