/* log.c — the logging verbs used everywhere (log_debug, log_info, log_warn, log_errno,
 * log_fatal); debug lines only once log_set_debug(1). Each line is
 * "YYYY-MM-DD HH:MM:SS.mmm ident[pid]: message", formatted into one buffer and written
 * with one write(2), so concurrent writers to one pipe or O_APPEND file never cut each
 * other's lines (or handed whole to a writer the program installs: the emperor queues
 * its lines so that stderr never blocks it). */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4000 /* below PIPE_BUF * 1 would be 4096: keep lines atomic */

static char log_ident[64] = "emperor";
static int log_fd = 2;
static int log_debug_on;
static log_writer *log_writer_fn;       /* NULL: write(2) to log_fd */
static void *log_writer_arg;

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
