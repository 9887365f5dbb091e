/* output.h — vassal output in the emperor (emperor/output.c): each vassal's
 * stdout/stderr pipe is watched while open (a small struct of its own; a line buffer
 * only while one of its lines is unfinished) and every line leaves on the emperor's
 * stderr prefixed "[name] ". The
 * emperor's stderr is written without ever blocking the loop: what it cannot take at
 * once waits in one bounded queue per emperor (its own log lines go through it too,
 * in order); vassal lines that do not fit are dropped, counted, and reported in one
 * line once stderr has caught up. Each vassal's last lines are kept for
 * `emperorctl logs` (output_lines). */
#ifndef EMPEROR_OUTPUT_H
#define EMPEROR_OUTPUT_H

#include <stddef.h>

struct emperor;
struct vassal;

/* Takes over the emperor's stderr (and its log lines) for the queue. */
int output_sink_open(struct emperor *e);
/* Writes what is queued, waiting at most timeout_ms (before an exit or exec). */
void output_sink_drain(struct emperor *e, int timeout_ms);
/* Vassal lines dropped so far because stderr could not keep up. */
unsigned long long output_dropped(const struct emperor *e);

/* Starts passing the vassal's output on from fd (the pipe's read end, now ours). */
void output_start(struct vassal *v, int fd);
/* Passes on what is in the pipe now, then closes it and frees the buffer. */
void output_stop(struct vassal *v);
/* The pipe's fd (handed across an upgrade), -1 if none. */
int output_fd(const struct vassal *v);

/* The vassal's recent lines (a ring growing with them up to 64 KiB, kept from its
 * first line until its record goes): those numbered from `from` on (0: all kept), at
 * most max of the last (0: no cap), appended to b one a line, each led by the time it
 * arrived unless it starts with a date of its own. Returns the number of the next
 * line to come. */
struct strbuf;
unsigned long long output_lines(const struct vassal *v, unsigned long long from, size_t max,
				struct strbuf *b);
void output_ring_free(struct vassal *v);
/* One line as `logs` shows it: led by the time t it arrived unless it has its own. */
void output_show_line(double t, const char *line, size_t len, struct strbuf *b);

#endif
