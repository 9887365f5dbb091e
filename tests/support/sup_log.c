/* sup_log.c — waiting on log files. A "mark" is a byte offset taken with
 * sup_log_size() before the action whose effect is awaited, so a line written by an
 * earlier event is never mistaken for the awaited one. On a timeout the file's last
 * lines are printed to stderr, which is usually all it takes to see why. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_LINES 40

size_t sup_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* The file's bytes from offset on, malloc'd and NUL-terminated (*len without the NUL);
 * an empty string if the file is absent or shorter. NULL only when out of memory. */
static char *read_from(const char *path, size_t offset, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t size = fd >= 0 ? sup_file_size(path) : 0;
	size_t want = size > offset ? size - offset : 0;
	char *buf = malloc(want + 1);
	ssize_t n = 0;

	if (buf && want > 0)
		n = pread(fd, buf, want, (off_t)offset);
	if (fd >= 0 && close(fd) < 0)
		fprintf(stderr, "sup: close(%s): %s\n", path, strerror(errno));
	if (!buf)
		return NULL;
	*len = n > 0 ? (size_t)n : 0;
	buf[*len] = '\0';
	return buf;
}

int sup_count_file(const char *path, size_t from_mark, const char *needle)
{
	return sup_count_file_range(path, from_mark, SIZE_MAX, needle);
}

int sup_count_file_range(const char *path, size_t from_mark, size_t to_mark, const char *needle)
{
	size_t len, nlen = strlen(needle);
	char *buf = read_from(path, from_mark, &len);
	const char *p;
	int count = 0;

	if (!buf)
		return -1;
	if (to_mark < from_mark + len)
		len = to_mark > from_mark ? to_mark - from_mark : 0;
	if (nlen == 0) { /* "" would match forever: it means "the file exists" */
		free(buf);
		return 1;
	}
	for (p = buf; (p = memmem(p, len - (size_t)(p - buf), needle, nlen)); p += nlen)
		count++;
	free(buf);
	return count;
}

int sup_wait_file(const char *path, size_t from_mark, const char *needle, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (sup_count_file(path, from_mark, needle) <= 0) {
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "sup: no \"%s\" in %s (from byte %zu) after %d ms; its tail:\n",
				needle, path, from_mark, timeout_ms);
			sup_print_tail(path, TAIL_LINES);
			return -1;
		}
		sup_poll_pause();
	}
	return 0;
}

void sup_print_tail(const char *path, int lines)
{
	size_t len;
	char *buf = read_from(path, 0, &len);
	const char *start;
	int seen = 0;

	if (!buf)
		return;
	for (start = buf + len; start > buf; start--)
		if (start[-1] == '\n' && start != buf + len && ++seen >= lines)
			break;
	fprintf(stderr, "---- %s ----\n%s%s---- end of %s ----\n", path, start,
		len && buf[len - 1] != '\n' ? "\n" : "", path);
	free(buf);
}

size_t sup_log_size(struct sup_proc *p)
{
	return sup_file_size(p->logpath);
}

int sup_wait_log(struct sup_proc *p, size_t from_mark, const char *needle, int timeout_ms)
{
	return sup_wait_file(p->logpath, from_mark, needle, timeout_ms);
}

int sup_count_log(struct sup_proc *p, size_t from_mark, const char *needle)
{
	return sup_count_file(p->logpath, from_mark, needle);
}
