/* log.c — the logging verbs used everywhere (log_debug, log_info, log_warn, log_errno,
 * log_fatal); debug lines only once log_set_debug(1). Each line is
 * "YYYY-MM-DD HH:MM:SS.mmm ident[pid]: message", formatted into one buffer and written
 * with one write(2), so concurrent writers to one pipe or O_APPEND file never cut each
 * other's lines (or handed whole to a writer the program installs: the emperor queues
 * its lines so that stderr never blocks it). With log_set_format(LOG_FORMAT_JSON) each
 * line is one JSON object instead: time (RFC 3339, UTC), ident, pid, level, message;
 * log_json_line() writes a child's line the same way, taking the fields of our text
 * format apart when the line has it. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jsonout.h"
#include "util.h"

#define LOG_LINE_MAX 4000 /* below PIPE_BUF * 1 would be 4096: keep lines atomic */

static char log_ident[64] = "emperor";
static int log_fd = 2;
static int log_debug_on;
static log_writer *log_writer_fn;       /* NULL: write(2) to log_fd */
static void *log_writer_arg;
static enum log_format log_format = LOG_FORMAT_TEXT;

void log_set_format(enum log_format f)
{
	log_format = f;
}

enum log_format log_get_format(void)
{
	return log_format;
}

double log_wall_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

void log_format_time(double t, char *buf, size_t len)
{
	time_t sec = (time_t)t;
	struct tm tm;
	size_t n;

	localtime_r(&sec, &tm);
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03d", (int)((t - (double)sec) * 1000));
}

/* {"time":...,"ident":...,"vassal":...,"pid":...,"level":...,"message":...}\n */
static void json_record(struct strbuf *b, double t, const char *ident, const char *vassal, int pid,
			const char *level, const char *msg, size_t len)
{
	struct json_object *o = json_object_new_object();
	time_t sec = (time_t)t;
	char when[40], *text = utf8_sanitize(msg, len);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03dZ", (int)((t - (double)sec) * 1000));
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "ident", jsonout_string(ident));
	if (vassal)
		json_object_object_add(o, "vassal", jsonout_string(vassal));
	json_object_object_add(o, "pid", json_object_new_int(pid));
	json_object_object_add(o, "level", json_object_new_string(level));
	json_object_object_add(o, "message", json_object_new_string(text ? text : ""));
	free(text);
	jsonout_append(b, o);
}

/* "debug: ", "warning: "... at the start of msg: the level's name and its length. */
static const char *level_of(const char *msg, size_t len, size_t *skip)
{
	static const char *const levels[] = { "debug", "warning", "error", "fatal" };

	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		size_t n = strlen(levels[i]);
		if (len > n + 1 && strncmp(msg, levels[i], n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') {
			*skip = n + 2;
			return levels[i];
		}
	}
	*skip = 0;
	return "info";
}

void log_json_line(struct strbuf *b, double t, const char *vassal, int pid, const char *line, size_t len)
{
	/* our text format: "YYYY-MM-DD HH:MM:SS.mmm ident[pid]: [level: ]message" */
	const char *end = line + len, *id = line + 24, *br, *msg;
	char ident[128];
	size_t skip;
	const char *level;

	if (len > 24 && isdigit((unsigned char)line[0]) && line[10] == ' ' && line[23] == ' ' &&
	    (br = memchr(id, '[', (size_t)(end - id))) && (msg = memchr(br, ']', (size_t)(end - br))) &&
	    msg + 2 < end && msg[1] == ':' && msg[2] == ' ' && (size_t)(br - id) < sizeof ident) {
		snprintf(ident, sizeof ident, "%.*s", (int)(br - id), id);
		pid = atoi(br + 1);
		msg += 3;
		level = level_of(msg, (size_t)(end - msg), &skip);
		json_record(b, t, ident, vassal, pid, level, msg + skip, (size_t)(end - msg) - skip);
		return;
	}
	json_record(b, t, vassal, vassal, pid, "info", line, len);
}

/* Our own line as JSON: the text after "level: " taken apart again. */
static void write_json(const char *level, const char *msg, size_t len)
{
	struct strbuf b = { 0 };
	char name[16];

	snprintf(name, sizeof name, "%.*s", (int)strcspn(level, ":"), level);
	json_record(&b, log_wall_now(), log_ident, NULL, (int)getpid(), name[0] ? name : "info", msg, len);
	if (!b.len)
		return;
	if (log_writer_fn)
		log_writer_fn(b.p, b.len, log_writer_arg);
	else
		while (write(log_fd, b.p, b.len) < 0 && errno == EINTR)
			;
	strbuf_free(&b);
}

void log_init(const char *ident)
{
	snprintf(log_ident, sizeof log_ident, "%s", ident);
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

int log_get_fd(void)
{
	return log_fd;
}

void log_set_debug(int on)
{
	log_debug_on = on;
}

int log_debug_enabled(void)
{
	return log_debug_on;
}

void log_set_writer(log_writer *fn, void *arg)
{
	log_writer_fn = fn;
	log_writer_arg = arg;
}

void log_vwrite(const char *level, const char *fmt, va_list ap, int errnum)
{
	char line[LOG_LINE_MAX];
	struct timeval tv;
	struct tm tm;
	size_t len;
	int n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	len = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line + len, sizeof line - len, ".%03ld %s[%d]: %s", (long)tv.tv_usec / 1000,
		     log_ident, (int)getpid(), level);
	if (n > 0)
		len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
	n = vsnprintf(line + len, sizeof line - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
	if (errnum && len < sizeof line - 1) {
		n = snprintf(line + len, sizeof line - len, ": %s", strerror(errnum));
		if (n > 0)
			len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
	}
	if (len >= sizeof line - 1)
		len = sizeof line - 2;
	line[len++] = '\n';
	if (log_format == LOG_FORMAT_JSON) {
		const char *msg = strstr(line + 24, "]: ");
		msg = msg ? msg + 3 + strlen(level) : line;
		write_json(level, msg, (size_t)(line + len - 1 - msg));
		return;
	}
	if (log_writer_fn) {
		log_writer_fn(line, len, log_writer_arg);
		return;
	}
	while (write(log_fd, line, len) < 0 && errno == EINTR)
		;
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite("", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vwrite("debug: ", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite("warning: ", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void log_errno(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vwrite("error: ", fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
