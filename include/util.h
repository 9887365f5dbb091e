/* util.h — small helpers every module uses: container_of, fd flags, monotonic time. */
#ifndef EMPEROR_UTIL_H
#define EMPEROR_UTIL_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

int fd_set_cloexec(int fd, int on);
/* Reads fd to its end, at most max + 1 bytes (so that "over max" can be told);
 * malloc'd and NUL-terminated, length in *len; NULL on a read error (errno). */
char *fd_read_all(int fd, size_t max, size_t *len);
/* Writes all of buf (EINTR and short writes handled); 0, or -1 (errno). */
int fd_write_all(int fd, const void *buf, size_t len);
int fd_set_nonblock(int fd, int on);
/* /proc/PID/stat read into buf, returned from its state field on ("S 1 2 ..."), past
 * the command name (which may hold spaces and parentheses); NULL when the process (or
 * /proc) is not there. */
const char *proc_stat_fields(int pid, char *buf, size_t len);
/* Seconds on CLOCK_MONOTONIC: comparable across processes and exec. */
double mono_now(void);
/* NULL-terminated string vectors. */
size_t strv_len(char *const *v);
char **strv_dup(char *const *v);
void strv_free(char **v);
/* Builds an environment: base (NULL = environ) with each name in del removed, then
 * each "K=V" of add set (added or replaced). Result is malloc'd (strv_free); NULL if
 * out of memory. */
char **env_build(char *const *base, char *const *add, const char *const *del);
/* Returns v with "K=V" set (replacing K), reallocating; v must come from env_build.
 * Out of memory (or v NULL): v is freed and NULL returned, so a chain of calls needs
 * one check at its end. */
char **env_set(char **v, const char *key, const char *value);
/* The variables the emperor and the vassal master use among themselves (EMPEROR_FD,
 * VASSAL_*, their own LISTEN_* and NOTIFY_SOCKET...): the one list; NULL-terminated. */
extern const char *const env_internal[];
/* A child's environment: base (NULL = ours; an empty vector for clear-env) without any
 * env_internal variable, then add applied. As env_build. Every kind of child gets its
 * environment from here (workers, mules, spooler, daemons, nested emperor, vassals). */
char **env_for_child(char *const *base, char *const *add);

/* A growing string; out of memory or past STRBUF_MAX truncates, never fails. */
#define STRBUF_MAX (4 * 1024 * 1024)
struct strbuf {
	char *p;
	size_t len, cap;
};
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_append(struct strbuf *b, const char *s, size_t n);
void strbuf_free(struct strbuf *b);

#endif
