/* monitor.h — emperor/monitor.c: inotify on the watched directory (and on its parent
 * while it is gone); every event about its entries schedules a scan. */
#ifndef EMPEROR_MONITOR_H
#define EMPEROR_MONITOR_H

struct emperor;
struct monitor;

struct monitor *monitor_open(struct emperor *e, const char *dir);
void monitor_close(struct monitor *mon);

#endif
