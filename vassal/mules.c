/* mules.c — mules: background programs without the listening sockets. The mules of
 * one `mules:` entry form a farm sharing one datagram socket (abstract unix
 * namespace): each mule receives it as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=<farm>),
 * and every child of the vassal gets its address as MULE_<NAME>_SOCKET. A datagram
 * sent there is delivered by the kernel to exactly one mule of the farm. A message is
 * one datagram of at most MULE_MSG_MAX bytes (docs/config.md). The farm sockets are
 * bound by vsock.c with the listening sockets and kept across the re-exec, so a
 * message queued during a reload waits for the next mule. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mules.h"

#include "log.h"
#include "procs.h"
#include "util.h"

struct mule_farm {
	char *name;
	int fd;
	char address[108];
};

/* The mules module's state: one farm per `mules:` entry, in config order. */
struct mules {
	struct mule_farm *v;
	size_t n;
};

/* The farm's socket is bound by vsock.c (kept across re-execs); here it gets a name. */
static int farm_open(struct mule_farm *f, const struct master *m, const char *name)
{
	char vname[48];

	f->name = strdup(name);
	snprintf(f->address, sizeof f->address, "@emperor-mule/%s/%d/%s", m->cfg->name,
		 (int)getpid(), name);
	snprintf(vname, sizeof vname, "mule-%s", name);
	f->fd = vsock_find(&m->socks, vname);
	if (!f->name || f->fd < 0) {
		log_warn("mule farm %s: no socket", name);
		return -1;
	}
	return 0;
}

int mules_open(struct master *m)
{
	struct mules *farms = calloc(1, sizeof *farms);

	if (!farms) {
		log_errno("mules: calloc");
		return -1;
	}
	m->mules = farms;
	farms->v = calloc(m->cfg->n_mules ? m->cfg->n_mules : 1, sizeof *farms->v);
	if (!farms->v) {
		log_errno("mules: calloc");
		return -1;
	}
	for (; farms->n < m->cfg->n_mules; farms->n++)
		if (farm_open(&farms->v[farms->n], m, m->cfg->mules[farms->n].name) < 0) {
			farms->n++;
			return -1;
		}
	return 0;
}

void mules_free(struct master *m)
{
	struct mules *farms = m->mules;

	if (!farms)
		return;
	for (size_t i = 0; i < farms->n; i++)
		free(farms->v[i].name); /* the fds are vsock.c's */
	free(farms->v);
	free(farms);
	m->mules = NULL;
}

char **mules_env(const struct master *m)
{
	const struct mules *farms = m->mules;
	size_t n = farms ? farms->n : 0;
	char **env = calloc(n + 1, sizeof *env);

	for (size_t i = 0; env && i < n; i++) {
		char key[64];
		size_t k = 0;
		for (const char *s = farms->v[i].name; *s && k < sizeof key - 1; s++)
			key[k++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
		key[k] = '\0';
		if (asprintf(&env[i], "MULE_%s_SOCKET=%s", key, farms->v[i].address) < 0) {
			env[i] = NULL;
			strv_free(env);
			return NULL;
		}
	}
	return env;
}

static int mule_start(struct proc *p)
{
	const struct cfg_mule *mc = &p->m->cfg->mules[p->index];
	const struct mule_farm *farm = &p->m->mules->v[p->index];
	char id[32], *extra[3];
	int rc;

	snprintf(id, sizeof id, "MULE_ID=%d", p->instance);
	extra[0] = id;
	if (asprintf(&extra[1], "MULE_NAME=%s", mc->name) < 0)
		return -1;
	extra[2] = NULL;
	rc = procs_spawn_program(p, &mc->prog, extra, &farm->fd, 1, farm->name);
	free(extra[1]);
	if (rc == 0)
		child_set_ready(&p->child);
	return rc;
}

int mules_start(struct master *m)
{
	int rc = 0;

	for (size_t i = 0; i < m->cfg->n_mules; i++)
		for (int k = 1; k <= m->cfg->mules[i].count; k++) {
			char name[80];
			snprintf(name, sizeof name, "mule %s %d", m->cfg->mules[i].name, k);
			struct proc *p = procs_new(m, KIND_MULE, name, i, k, mule_start);
			if (!p) {
				log_errno("%s: calloc", name);
				rc = -1;
			} else if (procs_launch(p) < 0) {
				rc = -1;
			}
		}
	return rc;
}
