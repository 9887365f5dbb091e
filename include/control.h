/* control.h — the emperor's control socket (emperorctl), its --metrics HTTP listener
 * and the figures they show: what the rest of the emperor calls (emperor/control*.c). */
#ifndef EMPEROR_CONTROL_H
#define EMPEROR_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct emperor;
struct vassal;

enum ctl_event { CTL_READY, CTL_STOPPED, CTL_FAILED, CTL_LOGS_REOPENED };

/* Opens the control socket (and the metrics listener if asked); without them the
 * emperor still runs: the error is logged. */
int control_open(struct emperor *e);
void control_close(struct emperor *e);
/* A vassal became ready (started or reloaded), stopped, failed, or reopened its log
 * (X_LOGS_REOPENED=1): answers waiting emperorctl requests. */
void control_vassal_event(struct emperor *e, struct vassal *v, enum ctl_event ev);
/* Records a completed reload's duration (for the metrics). */
void control_reload_done(struct vassal *v, double seconds);
/* Someone follows vassals' output (emperorctl logs -f): output.c hands each line over. */
bool control_following(const struct emperor *e);
void control_vassal_line(struct vassal *v, double t, const char *line, size_t len);
/* The vassal's record goes: its figures with it. */
void control_vassal_free(struct vassal *v);

#endif
