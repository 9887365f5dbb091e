/* control.h — emperor/control.c: the control socket (emperorctl) and the metrics. */
#ifndef EMPEROR_CONTROL_H
#define EMPEROR_CONTROL_H

struct emperor;
struct vassal;

enum ctl_event { CTL_READY, CTL_STOPPED, CTL_FAILED };
int control_open(struct emperor *e);
void control_close(struct emperor *e);
/* A vassal became ready (started or reloaded), stopped, or failed: answers waiting
 * emperorctl requests and records the figures. */
void control_vassal_event(struct emperor *e, struct vassal *v, enum ctl_event ev);
/* Records a completed reload's duration (for the metrics). */
void control_reload_done(struct vassal *v, double seconds);

#endif
