/* nested.c — the nested emperor: `emperor: {dir, args, stop-mercy}` runs the emperor
 * binary (beside the vassal binary) on another directory, as a child of this master.
 * In the teardown it is the fourth step: SIGTERM, it stops its own vassals
 * gracefully, and SIGKILL of its process group comes only after stop-mercy. */
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nested.h"

#include "log.h"
#include "procs.h"
#include "util.h"

static int nested_start_one(struct proc *p)
{
	const struct cfg_emperor *ec = &p->m->cfg->emperor;
	size_t n_args = strv_len(ec->args), k = 0;
	char bin[PATH_MAX], exe[PATH_MAX];
	char **argv = calloc(n_args + 3, sizeof *argv);
	int rc;

	if (!argv)
		return -1;
	snprintf(exe, sizeof exe, "%s", p->m->exe);
	snprintf(bin, sizeof bin, "%s/emperor", dirname(exe));
	argv[k++] = bin;
	for (size_t i = 0; i < n_args; i++)
		argv[k++] = ec->args[i];
	argv[k++] = ec->dir;
	struct cfg_program prog = { .argv = argv, .stop_signal = SIGTERM,
				    .reload_mercy = ec->stop_mercy };
	rc = procs_spawn_program(p, &prog, NULL, NULL, 0, NULL);
	free(argv);
	if (rc == 0)
		child_set_ready(&p->child);
	return rc;
}

int nested_start(struct master *m)
{
	struct proc *p;

	if (!m->cfg->has_emperor)
		return 0;
	p = procs_new(m, KIND_EMPEROR, "nested emperor", 0, 1, nested_start_one);
	if (!p) {
		log_errno("nested emperor: calloc");
		return -1;
	}
	return procs_launch(p);
}
