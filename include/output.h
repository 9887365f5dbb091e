/* output.h — vassal output in the emperor (emperor/output.c): each vassal's
 * stdout/stderr pipe is watched while open (a small struct of its own; a line buffer
 * only while one of its lines is unfinished) and every line leaves on the emperor's
 * stderr prefixed "[name] ". The
 * emperor's stderr is written without ever blocking the loop: what it cannot take at
 * once waits in one bounded queue per emperor (its own log lines go through it too,
 * in order); vassal lines that do not fit are dropped, counted, and reported in one
 * line once stderr has caught up. */
#ifndef EMPEROR_OUTPUT_H
#define EMPEROR_OUTPUT_H

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

#endif
