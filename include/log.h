/* log.h — one logging module for every binary. A line is written with a single
 * write(2) so lines from several processes sharing a pipe never interleave. */
#ifndef EMPEROR_LOG_H
#define EMPEROR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* ident is the prefix of every line, e.g. "emperor" or "vassal hello". */
void log_init(const char *ident);
/* Lines go to fd (default 2). The caller keeps ownership of fd. */
void log_set_fd(int fd);
int log_get_fd(void);
/* Lines go to fn instead (each whole, ending in '\n', under PIPE_BUF bytes): the
 * emperor queues them so that a slow stderr never blocks its loop. NULL: write(2). */
typedef void log_writer(const char *line, size_t len, void *arg);
void log_set_writer(log_writer *fn, void *arg);

/* Text (default): "YYYY-MM-DD HH:MM:SS.mmm ident[pid]: level: message". JSON: one
 * object a line: time (RFC 3339, UTC), ident, pid, level, message. */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
void log_set_format(enum log_format f);
enum log_format log_get_format(void);
/* The wall clock, seconds; t as our text format's "YYYY-MM-DD HH:MM:SS.mmm" (local). */
double log_wall_now(void);
void log_format_time(double t, char *buf, size_t len);
/* A child's line (time t, the vassal it came from) as one JSON object ending in '\n'
 * appended to b: a line in our text format gives its ident, pid and level; another is
 * the message of level info from the vassal's pid. */
struct strbuf;
void log_json_line(struct strbuf *b, double t, const char *vassal, int pid, const char *line, size_t len);

/* Debug lines ("debug: ...") are dropped unless turned on (emperor --debug). */
void log_set_debug(int on);
int log_debug_enabled(void);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends ": strerror(errno)" (errno as it was on entry). */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vwrite(const char *level, const char *fmt, va_list ap, int errnum);

#endif
