/* child_env.c — an exec'd child's environment, built whole by the parent before the
 * vfork: the base (the caller's, or ours) without the variables set here, then
 * LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES (socket activation) and a caller's pid
 * variable (WATCHDOG_PID). A pid is the child's own, known only in the child: its
 * value is left as room for the digits, which the child writes without allocating
 * (child_env_fill_pid). One allocation holds the vector and the new strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child_internal.h"
#include "util.h"

extern char **environ;

enum { SET_MAX = 4 };

/* Whether kv ("KEY=value") sets one of the names in set[]. */
static bool is_set_here(const char *kv, const char *const *set, int n_set)
{
	for (int i = 0; i < n_set; i++) {
		size_t len = strlen(set[i]);
		if (strncmp(kv, set[i], len) == 0 && kv[len] == '=')
			return true;
	}
	return false;
}

int child_env_build(const struct child_exec *x, struct child_launch *l)
{
	char *const *base = x->env ? x->env : environ;
	const char *name[SET_MAX], *value[SET_MAX];
	char count[16];
	int n_set = 0, n_pid = 0;
	size_t n_base = 0, text = 0;

	if (x->fdnames) {
		snprintf(count, sizeof count, "%d", x->n_listen_fds > 0 ? x->n_listen_fds : x->n_fds);
		name[n_set] = "LISTEN_FDS", value[n_set++] = count;
		name[n_set] = "LISTEN_PID", value[n_set++] = NULL; /* NULL: the child's pid */
		name[n_set] = "LISTEN_FDNAMES", value[n_set++] = x->fdnames;
	}
	if (x->pid_env)
		name[n_set] = x->pid_env, value[n_set++] = NULL;
	while (base && base[n_base])
		n_base++;
	for (int i = 0; i < n_set; i++)
		text += strlen(name[i]) + 2 + (value[i] ? strlen(value[i]) : CHILD_PID_DIGITS);

	char **envp = malloc((n_base + (size_t)n_set + 1) * sizeof *envp + text);
	char *p = (char *)(envp + n_base + n_set + 1);
	size_t n = 0;

	if (!envp)
		return -1;
	for (size_t i = 0; i < n_base; i++)
		if (!is_set_here(base[i], name, n_set))
			envp[n++] = base[i];
	for (int i = 0; i < n_set; i++) {
		envp[n++] = p;
		p += sprintf(p, "%s=", name[i]);
		if (value[i]) {
			p += sprintf(p, "%s", value[i]) + 1;
			continue;
		}
		l->pid_slot[n_pid++] = p;
		memset(p, 0, CHILD_PID_DIGITS);
		p += CHILD_PID_DIGITS;
	}
	envp[n] = NULL;
	l->envp = envp;
	return 0;
}

void child_env_fill_pid(const struct child_launch *l)
{
	char digits[CHILD_PID_DIGITS];
	unsigned int pid = (unsigned int)getpid();
	int n = 0;

	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) && n < CHILD_PID_DIGITS - 1);
	for (int i = 0; i < 2 && l->pid_slot[i]; i++) {
		char *slot = l->pid_slot[i];
		for (int k = n; k > 0; k--)
			*slot++ = digits[k - 1];
		*slot = '\0';
	}
}
