/* cgroup.c — cgroup v2 per vassal (see cgroup.h). Every write is checked; a limit
 * the hierarchy cannot enforce (controller not enabled, or not delegated to us) is
 * reported and the vassal runs without it. */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int write_file(const char *dir, const char *file, const char *value)
{
	char path[600];
	int fd, rc;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = write(fd, value, strlen(value)) == (ssize_t)strlen(value) ? 0 : -1;
	close(fd);
	return rc;
}

void cgroup_probe(struct cgroup_base *b)
{
	struct statfs sf;
	char line[512];
	FILE *f;

	b->usable = false;
	if (statfs(CGROUP_ROOT, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(b->why, sizeof b->why, "%s is not a cgroup2 mount", CGROUP_ROOT);
		return;
	}
	f = fopen("/proc/self/cgroup", "re");
	snprintf(b->why, sizeof b->why, "no cgroup v2 entry in /proc/self/cgroup");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(b->path, sizeof b->path, "%s%.*s", CGROUP_ROOT, 400,
				 strcmp(line + 3, "/") == 0 ? "" : line + 3);
			b->usable = access(b->path, W_OK) == 0;
			snprintf(b->why, sizeof b->why, "%.400s is not writable by us", b->path);
		}
	if (f)
		fclose(f);
}

int cgroup_prepare(struct cgroup_base *b)
{
	static const char *const controllers[] = { "+memory", "+pids", "+cpu" };
	char leaf[600];

	snprintf(leaf, sizeof leaf, "%s/emperor", b->path);
	if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) || write_file(leaf, "cgroup.procs", "0") < 0) {
		snprintf(b->why, sizeof b->why, "cannot move into %.400s: %s", leaf, strerror(errno));
		b->usable = false;
		return -1;
	}
	for (size_t i = 0; i < sizeof controllers / sizeof controllers[0]; i++)
		if (write_file(b->path, "cgroup.subtree_control", controllers[i]) < 0)
			log_warn("cgroups: cannot enable %s in %s (%s): limits on it are not enforced",
				 controllers[i] + 1, b->path, strerror(errno));
	return 0;
}

static void set_limit(const char *path, const char *file, const char *value)
{
	if (write_file(path, file, value) < 0)
		log_warn("cgroups: %s/%s = %s: %s (not enforced; the vassal runs without it)",
			 path, file, value, strerror(errno));
}

int cgroup_create(const struct cgroup_base *b, const char *name, const struct cfg_cgroup *cfg,
		  char *path, size_t len)
{
	char value[64];

	if (cfg && cfg->parent)
		snprintf(path, len, "%s/%s/vassal.%s", CGROUP_ROOT, cfg->parent, name);
	else
		snprintf(path, len, "%s/vassal.%s", b->path, name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		log_errno("cgroups: mkdir %s", path);
		return -1;
	}
	if (!cfg)
		return 0;
	if (cfg->memory_max >= 0) {
		snprintf(value, sizeof value, "%lld", cfg->memory_max);
		set_limit(path, "memory.max", value);
	}
	if (cfg->pids_max >= 0) {
		snprintf(value, sizeof value, "%lld", cfg->pids_max);
		set_limit(path, "pids.max", value);
	}
	if (cfg->cpu_max)
		set_limit(path, "cpu.max", cfg->cpu_max);
	return 0;
}

int cgroup_procs_open(const char *path)
{
	char procs[600];

	snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
	return open(procs, O_WRONLY | O_CLOEXEC);
}

int cgroup_join_fd(int procs_fd)
{
	return write(procs_fd, "0", 1) == 1 ? 0 : -1;
}

int cgroup_kill(const char *path)
{
	return write_file(path, "cgroup.kill", "1");
}

void cgroup_remove(const char *path)
{
	if (rmdir(path) == 0 || errno == ENOENT)
		return;
	if (errno == EBUSY && cgroup_kill(path) == 0)
		log_warn("cgroups: processes were left in %s after its vassal exited: killed", path);
	else
		log_errno("cgroups: rmdir %s", path);
}

int cgroup_parent_check(const struct cgroup_base *b, const char *parent, char *why, size_t len)
{
	const char *mine = b->usable ? b->path + strlen(CGROUP_ROOT) : "";
	size_t n;

	if (parent[0] == '/') {
		snprintf(why, len, "an absolute path");
		return -1;
	}
	for (const char *p = parent; ; p += n + 1) {
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			snprintf(why, len, "an empty, '.' or '..' component");
			return -1;
		}
		if (!p[n])
			break;
	}
	mine += strspn(mine, "/");
	n = strlen(mine);
	if (n && (strncmp(parent, mine, n) != 0 || (parent[n] != '/' && parent[n] != '\0'))) {
		snprintf(why, len, "outside the emperor's cgroup %.300s", mine);
		return -1;
	}
	return 0;
}
