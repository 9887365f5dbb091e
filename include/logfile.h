/* logfile.h — the vassal's own log file (`log:` in the vassal file): opened onto the
 * master's stdout and stderr, which its own lines and its workers' relayed lines
 * (relay.h) go to; rotated by size (`log.max-size`, to .1 ... .keep) by the master
 * between two whole lines, so no line is lost or written twice. A file that cannot be
 * opened (EACCES, a missing directory) never stops the vassal: the master runs on its
 * inherited output and retries every LOGFILE_RETRY seconds; a file that cannot be
 * written (ENOSPC, /dev/full) loses lines, which are counted; both show in status and
 * metrics. Its own struct, one pointer from the master. */
#ifndef EMPEROR_LOGFILE_H
#define EMPEROR_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

struct master;
struct relay_sink;

#define LOGFILE_RETRY 5.0

/* At start-up, after the chdir: opens log.file if set. Never fails the master. */
void logfile_open(struct master *m);
/* REOPEN_LOGS from the emperor (a logrotate that renamed the file): a new file. */
void logfile_reopen(struct master *m);
/* The workers' sink writes to our stdout: rotation follows its writes. */
void logfile_attach(struct master *m, struct relay_sink *s);

/* For status: the errno of the failing open or of the last failed write (0 = fine),
 * lines lost, rotations done. */
int logfile_error(const struct master *m);
unsigned long logfile_lost_lines(const struct master *m);
unsigned long logfile_rotations(const struct master *m);

/* Pure part: "PATH.N" into buf (N = 0: PATH itself); -1 if it does not fit. */
int logfile_name(const char *path, int n, char *buf, size_t size);

#endif
