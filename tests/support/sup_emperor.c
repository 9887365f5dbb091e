/* sup_emperor.c — what tests ask of a running emperor from outside: an `emperorctl`
 * run on its control socket (bounded, its output read back), and which TCP sockets
 * listen on a port, from the kernel's tables (/proc/net/tcp and tcp6), with each
 * one's local address and inode (to tell whether a socket is the same one later). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CTL_MAX_ARGS 16

int sup_emperorctl(const char *ctl, const char *const args[], const char *out_path,
		   int timeout_ms, char **text)
{
	char *argv[CTL_MAX_ARGS + 4], *bin = sup_bin("emperorctl");
	struct sup_proc *p;
	int n = 0, rc = -1, started;

	if (text)
		*text = NULL;
	argv[n++] = bin;
	argv[n++] = "--control";
	argv[n++] = (char *)ctl;
	for (int i = 0; args[i] && i < CTL_MAX_ARGS; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	unlink(out_path);
	p = sup_spawn(argv, NULL, NULL, out_path);
	started = p != NULL;
	if (!p)
		fprintf(stderr, "sup: emperorctl %s: cannot start %s\n", args[0], bin);
	else if (sup_wait_exit(p, timeout_ms) < 0)
		fprintf(stderr, "sup: emperorctl %s: no exit after %d ms\n", args[0], timeout_ms);
	else if (!WIFEXITED(p->status))
		fprintf(stderr, "sup: emperorctl %s: %s\n", args[0], sup_status_str(p->status));
	else
		rc = WEXITSTATUS(p->status);
	sup_proc_free(p);
	if (text && started && !(*text = sup_read_file(out_path)))
		*text = strdup("");
	free(bin);
	return rc;
}

/* The listeners on port in one table ("/proc/net/tcp" or tcp6), from out[n] on. */
static int listeners_in(const char *table, int port, struct sup_listener *out, int n, int max)
{
	FILE *fp = fopen(table, "re");
	char line[512];

	if (!fp)
		return n;
	while (fgets(line, sizeof line, fp)) {
		char local[64], *colon;
		unsigned st;
		unsigned long inode;
		if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*d %*d %lu", local, &st, &inode) != 3 ||
		    st != 0x0A /* LISTEN */ || !(colon = strrchr(local, ':')) ||
		    strtol(colon + 1, NULL, 16) != port)
			continue;
		if (n < max) {
			snprintf(out[n].local, sizeof out[n].local, "%s", local);
			out[n].inode = inode;
		}
		n++;
	}
	fclose(fp);
	return n;
}

int sup_tcp_listeners(int port, struct sup_listener *out, int max)
{
	int n = listeners_in("/proc/net/tcp", port, out, 0, max);

	return listeners_in("/proc/net/tcp6", port, out, n, max);
}
