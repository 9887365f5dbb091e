/* etcd_feed.c — vassals fed by etcd. The keys under PREFIX/vassals/all/ and
 * PREFIX/vassals/NODE/ are mirrored into a private directory that scan.c reads
 * beside the watched one: the effective value of each FILE (the node's key wins over
 * all/) is written there atomically (temporary file, rename), the same value written
 * again (a higher mod_revision) bumps the file's mtime (a touch), a key gone unlinks
 * it. So a key goes through the very path a file does: validation, reload, touch,
 * graceful stop, "keeps running its previous config".
 * Reading: one range read of PREFIX/vassals/, then one watch from the next revision.
 * A compaction past the watch's revision reads the range again and reconciles both
 * ways. A failed read leaves the mirror as it was and is retried after a backoff.
 * These steps are one small machine (etcd_feed_step). Nothing is polled. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "emperor.h"
#include "etcd.h"
#include "etcd_feed.h"
#include "log.h"
#include "runpath.h"
#include "scan.h"
#include "util.h"

#define FEED_MAX_ENDPOINTS 16
#define FEED_RETRY_MIN 0.5   /* s, the first pause after a failed read */
#define FEED_RETRY_MAX 5.0   /* s, its cap */

enum { LAYER_ALL, LAYER_NODE, N_LAYERS };

/* One FILE: its value under all/ and under NODE/, and what the mirror holds. */
struct feed_key {
	TAILQ_ENTRY(feed_key) link;
	char *file;
	struct {
		bool has;
		char *value;
		size_t len;
		int64_t rev;         /* its mod_revision */
	} layer[N_LAYERS];
	int64_t written_rev;     /* mod_revision of what the mirror holds; 0: not known */
	int written_layer;
};
TAILQ_HEAD(feed_keys, feed_key);

struct etcd_feed {
	struct emperor *e;
	struct etcd_client *client;
	struct etcd_watch *watch;
	struct etcd_req *read;       /* the range read in flight */
	enum etcd_feed_state state;
	char *vassals_prefix;        /* PREFIX/vassals/ */
	const char *node;
	int mirror_fd;               /* the mirror directory */
	struct feed_keys keys;
	ev_timer retry;
	int retry_attempt;
	int64_t read_rev;            /* the revision of the last read */
	char why[256];               /* why the last read failed */
};

/* ---- the machine ------------------------------------------------------------------------ */

#define T(next, act) { FEED_##next, (act) }
#define IMPOSSIBLE { FEED_NSTATES, FEED_ACT_IMPOSSIBLE }
static const struct {
	enum etcd_feed_state next;
	int actions;
} feed_table[FEED_NSTATES][FEED_EV_NEVENTS] = {
	/*                 read ok                               read failed                               compacted                              retry due */
	[FEED_READING] = { T(SYNCED, FEED_ACT_WATCH | FEED_ACT_LOG), T(UNREACHABLE, FEED_ACT_RETRY | FEED_ACT_LOG), IMPOSSIBLE, IMPOSSIBLE },
	[FEED_SYNCED] = { IMPOSSIBLE, IMPOSSIBLE, T(RESYNCING, FEED_ACT_READ | FEED_ACT_LOG), IMPOSSIBLE },
	[FEED_RESYNCING] = { T(SYNCED, FEED_ACT_WATCH | FEED_ACT_LOG), T(UNREACHABLE, FEED_ACT_RETRY | FEED_ACT_LOG), T(RESYNCING, FEED_ACT_NONE), IMPOSSIBLE },
	[FEED_UNREACHABLE] = { IMPOSSIBLE, IMPOSSIBLE, T(UNREACHABLE, FEED_ACT_NONE), T(RETRYING, FEED_ACT_READ) },
	[FEED_RETRYING] = { T(SYNCED, FEED_ACT_WATCH | FEED_ACT_LOG), T(UNREACHABLE, FEED_ACT_RETRY), T(RETRYING, FEED_ACT_NONE), IMPOSSIBLE },
};
#undef T
#undef IMPOSSIBLE

enum etcd_feed_state etcd_feed_step(enum etcd_feed_state s, enum etcd_feed_event ev, int *actions)
{
	if ((unsigned)s >= FEED_NSTATES || (unsigned)ev >= FEED_EV_NEVENTS ||
	    feed_table[s][ev].actions == FEED_ACT_IMPOSSIBLE) {
		*actions = FEED_ACT_IMPOSSIBLE;
		return s;
	}
	*actions = feed_table[s][ev].actions;
	return feed_table[s][ev].next;
}

const char *etcd_feed_state_name(enum etcd_feed_state s)
{
	static const char *const names[FEED_NSTATES] = {
		"reading", "synced", "resyncing", "unreachable", "retrying",
	};

	return (unsigned)s < FEED_NSTATES ? names[s] : "?";
}

enum etcd_feed_state etcd_feed_state(const struct etcd_feed *f)
{
	return f->state;
}

struct etcd_client *etcd_feed_client(const struct etcd_feed *f)
{
	return f->client;
}

/* ---- key names -------------------------------------------------------------------------- */

bool etcd_feed_file_ok(const char *file, size_t len, const char **why)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._-";

	if (len == 0 || len > 250 || memchr(file, '\0', len)) {
		*why = len > 250 ? "longer than 250 bytes" : "no file name";
		return false;
	}
	if (strspn(file, allowed) != len) {
		*why = "a file name is made of A-Z a-z 0-9 . _ - only";
		return false;
	}
	if (file[0] == '.' || !scan_is_candidate(file)) {
		*why = "not a NAME.yaml or NAME.yml file name";
		return false;
	}
	return true;
}

static void report_bad_key(const char *key, const char *why)
{
	char *shown = config_printable(key);

	log_warn("etcd: key %s refused: %s", shown ? shown : "?", why);
	free(shown);
}

/* The layer and file of a key under PREFIX/vassals/: 0, 1 for another node's key
 * (not ours: ignored silently), -1 for a bad key (reported). */
static int parse_key(const struct etcd_feed *f, const char *key, int *layer, const char **file)
{
	const char *rest = key + strlen(f->vassals_prefix), *slash, *why;
	size_t plen = strlen(f->vassals_prefix);

	if (strncmp(key, f->vassals_prefix, plen) != 0 || !(slash = strchr(rest, '/'))) {
		report_bad_key(key, "not under vassals/all/ or vassals/NODE/");
		return -1;
	}
	if ((size_t)(slash - rest) == 3 && strncmp(rest, "all", 3) == 0)
		*layer = LAYER_ALL;
	else if ((size_t)(slash - rest) == strlen(f->node) &&
		 strncmp(rest, f->node, strlen(f->node)) == 0)
		*layer = LAYER_NODE;
	else
		return 1;
	*file = slash + 1;
	if (!etcd_feed_file_ok(*file, strlen(*file), &why)) {
		report_bad_key(key, why);
		return -1;
	}
	return 0;
}

/* ---- the mirror ------------------------------------------------------------------------- */

/* Whether the mirror's file holds exactly value. */
static bool mirror_same(struct etcd_feed *f, const char *file, const char *value, size_t len)
{
	int fd = openat(f->mirror_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[8192];
	size_t off = 0;
	struct stat st;
	bool same;
	ssize_t n;

	if (fd < 0)
		return false;
	same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
	while (same && off < len && (n = read(fd, buf, sizeof buf)) > 0) {
		same = (size_t)n <= len - off && memcmp(buf, value + off, (size_t)n) == 0;
		off += (size_t)n;
	}
	close(fd);
	return same && off == len;
}

static int mirror_write(struct etcd_feed *f, const char *file, const char *value, size_t len)
{
	char tmp[300];
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof tmp, ".%s.tmp", file);
	fd = openat(f->mirror_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_errno("etcd: %s/%s", f->e->etcd_dir, tmp);
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, value + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_errno("etcd: write %s/%s", f->e->etcd_dir, tmp);
			close(fd), unlinkat(f->mirror_fd, tmp, 0);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 || renameat(f->mirror_fd, tmp, f->mirror_fd, file) < 0) {
		log_errno("etcd: rename %s/%s", f->e->etcd_dir, tmp);
		unlinkat(f->mirror_fd, tmp, 0);
		return -1;
	}
	return 0;
}

/* The same value written again: a newer mtime (never the same one, whatever the
 * clock's grain), which the scan takes for a touch. */
static void mirror_touch(struct etcd_feed *f, const char *file)
{
	struct timespec ts[2];
	struct stat st;

	if (fstatat(f->mirror_fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts[1]);
	if (ts[1].tv_sec < st.st_mtim.tv_sec ||
	    (ts[1].tv_sec == st.st_mtim.tv_sec && ts[1].tv_nsec <= st.st_mtim.tv_nsec)) {
		ts[1] = st.st_mtim;
		if (++ts[1].tv_nsec >= 1000000000)
			ts[1].tv_sec++, ts[1].tv_nsec = 0;
	}
	ts[0] = ts[1];
	if (utimensat(f->mirror_fd, file, ts, AT_SYMLINK_NOFOLLOW) < 0)
		log_errno("etcd: utimensat %s/%s", f->e->etcd_dir, file);
}

static void mirror_remove(struct etcd_feed *f, const char *file)
{
	if (unlinkat(f->mirror_fd, file, 0) < 0 && errno != ENOENT)
		log_errno("etcd: unlink %s/%s", f->e->etcd_dir, file);
}

/* ---- keys -------------------------------------------------------------------------------- */

static struct feed_key *key_find(struct etcd_feed *f, const char *file, bool create)
{
	struct feed_key *k;

	TAILQ_FOREACH(k, &f->keys, link)
		if (strcmp(k->file, file) == 0)
			return k;
	if (!create || !(k = calloc(1, sizeof *k)))
		return NULL;
	if (!(k->file = strdup(file))) {
		free(k);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&f->keys, k, link);
	return k;
}

static void key_free(struct etcd_feed *f, struct feed_key *k)
{
	TAILQ_REMOVE(&f->keys, k, link);
	for (int i = 0; i < N_LAYERS; i++)
		free(k->layer[i].value);
	free(k->file);
	free(k);
}

static void layer_set(struct feed_key *k, int layer, const struct etcd_kv *kv)
{
	char *copy = malloc(kv->value_len + 1);

	if (!copy)
		return; /* out of memory: the mirror keeps the previous value */
	memcpy(copy, kv->value, kv->value_len);
	free(k->layer[layer].value);
	k->layer[layer].value = copy;
	k->layer[layer].len = kv->value_len;
	k->layer[layer].rev = kv->mod_revision;
	k->layer[layer].has = true;
}

static void layer_clear(struct feed_key *k, int layer)
{
	free(k->layer[layer].value);
	k->layer[layer].value = NULL;
	k->layer[layer].has = false;
}

/* The mirror made to hold k's effective value; k freed if it has none. */
static void key_apply(struct etcd_feed *f, struct feed_key *k)
{
	int eff = k->layer[LAYER_NODE].has ? LAYER_NODE : k->layer[LAYER_ALL].has ? LAYER_ALL : -1;

	if (eff < 0) {
		mirror_remove(f, k->file);
		key_free(f, k);
		emperor_scan_soon(f->e);
		return;
	}
	if (k->written_rev == k->layer[eff].rev && k->written_layer == eff)
		return;
	if (!mirror_same(f, k->file, k->layer[eff].value, k->layer[eff].len)) {
		if (mirror_write(f, k->file, k->layer[eff].value, k->layer[eff].len) < 0)
			return;
	} else if (k->written_rev) { /* 0: first read since start; the file is as it was */
		mirror_touch(f, k->file);
	}
	k->written_rev = k->layer[eff].rev;
	k->written_layer = eff;
	emperor_scan_soon(f->e);
}

/* A key's new value, or its delete (kv NULL). */
static void key_event(struct etcd_feed *f, const char *key, const struct etcd_kv *kv)
{
	const char *file;
	struct feed_key *k;
	int layer;

	if (parse_key(f, key, &layer, &file) != 0)
		return;
	if (kv && kv->value_len > CONFIG_MAX_FILE_SIZE) {
		char why[96];
		snprintf(why, sizeof why, "its value of %zu bytes is larger than %d", kv->value_len,
			 CONFIG_MAX_FILE_SIZE);
		report_bad_key(key, why);
		return;
	}
	if (!(k = key_find(f, file, kv != NULL)))
		return;
	if (kv)
		layer_set(k, layer, kv);
	else
		layer_clear(k, layer);
	key_apply(f, k);
}

/* A file of the mirror that no key stands for any more (deleted while we could not
 * see it), or a temporary file left by a crash. */
static void mirror_prune(struct etcd_feed *f)
{
	int fd = dup(f->mirror_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		log_errno("etcd: %s", f->e->etcd_dir);
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		bool tmp = de->d_name[0] == '.' && n > 5 && strcmp(de->d_name + n - 4, ".tmp") == 0;
		if (tmp || (scan_is_candidate(de->d_name) && !key_find(f, de->d_name, false)))
			mirror_remove(f, de->d_name);
	}
	closedir(d);
	emperor_scan_soon(f->e);
}

/* A whole range read: every key as it says, every other file gone. */
static void reconcile(struct etcd_feed *f, const struct etcd_result *r)
{
	struct feed_key *k, *next;

	TAILQ_FOREACH(k, &f->keys, link)
		for (int i = 0; i < N_LAYERS; i++)
			k->layer[i].has = false;
	for (size_t i = 0; i < r->n_kvs; i++) {
		const char *file;
		int layer;
		if (parse_key(f, r->kvs[i].key, &layer, &file) != 0)
			continue;
		if (r->kvs[i].value_len > CONFIG_MAX_FILE_SIZE) {
			report_bad_key(r->kvs[i].key, "its value is larger than the size limit");
			if ((k = key_find(f, file, false)) && k->layer[layer].value)
				k->layer[layer].has = true; /* keeps what it had */
			continue;
		}
		if ((k = key_find(f, file, true)))
			layer_set(k, layer, &r->kvs[i]);
	}
	for (k = TAILQ_FIRST(&f->keys); k; k = next) {
		next = TAILQ_NEXT(k, link);
		key_apply(f, k);
	}
	mirror_prune(f);
}

/* ---- reading and watching ----------------------------------------------------------------- */

static void fire(struct etcd_feed *f, enum etcd_feed_event ev);

static void read_done(void *arg, const struct etcd_result *r)
{
	struct etcd_feed *f = arg;

	f->read = NULL;
	if (r->error) {
		snprintf(f->why, sizeof f->why, "%s", r->error);
		fire(f, FEED_EV_READ_FAILED);
		return;
	}
	f->read_rev = r->revision;
	reconcile(f, r);
	fire(f, FEED_EV_READ_OK);
}

static void read_range(struct etcd_feed *f)
{
	if (f->read)
		etcd_cancel(f->read);
	f->read = etcd_range(f->client, f->vassals_prefix, ETCD_PREFIX, 0, read_done, f);
	if (!f->read) {
		snprintf(f->why, sizeof f->why, "out of memory");
		fire(f, FEED_EV_READ_FAILED);
	}
}

static void watch_events(void *arg, const struct etcd_event *ev, size_t n)
{
	struct etcd_feed *f = arg;

	for (size_t i = 0; i < n; i++)
		key_event(f, ev[i].kv.key, ev[i].type == ETCD_EVENT_PUT ? &ev[i].kv : NULL);
}

static void watch_ready(void *arg, int64_t revision)
{
	(void)arg;
	log_debug("etcd: watching vassal keys after revision %lld", (long long)revision);
}

static void watch_compacted(void *arg, int64_t compact_revision)
{
	struct etcd_feed *f = arg;

	snprintf(f->why, sizeof f->why, "revision %lld compacted", (long long)compact_revision);
	fire(f, FEED_EV_COMPACTED);
}

static void watch_from_read(struct etcd_feed *f)
{
	static const struct etcd_watch_cbs cbs = { watch_ready, watch_events, watch_compacted };

	if (f->watch)
		etcd_watch_restart(f->watch, f->read_rev + 1);
	else if (!(f->watch = etcd_watch_new(f->client, f->vassals_prefix, ETCD_PREFIX,
					     f->read_rev + 1, &cbs, f)))
		log_warn("etcd: cannot watch %s: out of memory", f->vassals_prefix);
}

static void retry_due(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	fire(container_of(w, struct etcd_feed, retry), FEED_EV_RETRY_DUE);
}

static void retry_arm(struct etcd_feed *f)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
		r = (uint32_t)getpid();
	ev_timer_set(&f->retry, etcd_backoff(f->retry_attempt++, FEED_RETRY_MIN, FEED_RETRY_MAX,
					     (double)r / 4294967296.0), 0);
	ev_timer_start(f->e->loop, &f->retry);
}

static void log_state(struct etcd_feed *f)
{
	size_t n = 0;
	struct feed_key *k;

	TAILQ_FOREACH(k, &f->keys, link)
		n++;
	if (f->state == FEED_SYNCED)
		log_info("etcd: vassal keys %s: %zu for node %s at revision %lld",
			 f->retry_attempt ? "read again" : "read", n, f->node, (long long)f->read_rev);
	else if (f->state == FEED_RESYNCING)
		log_warn("etcd: watch of %s lost events (%s): reading the keys again",
			 f->vassals_prefix, f->why);
	else if (f->state == FEED_UNREACHABLE)
		log_warn("etcd: cannot read %s (%s): vassals stay as last known (%s); retrying",
			 f->vassals_prefix, f->why, f->e->etcd_dir);
}

static void fire(struct etcd_feed *f, enum etcd_feed_event ev)
{
	int act;
	enum etcd_feed_state next = etcd_feed_step(f->state, ev, &act);

	if (act == FEED_ACT_IMPOSSIBLE) {
		log_warn("etcd: feed event %d while %s: ignored", (int)ev, etcd_feed_state_name(f->state));
		return;
	}
	log_debug("etcd: feed %s -> %s", etcd_feed_state_name(f->state), etcd_feed_state_name(next));
	f->state = next;
	if (act & FEED_ACT_LOG)
		log_state(f);
	if (act & FEED_ACT_WATCH) {
		f->retry_attempt = 0;
		watch_from_read(f);
	}
	if (act & FEED_ACT_READ)
		read_range(f);
	if (act & FEED_ACT_RETRY)
		retry_arm(f);
}

/* ---- opening ------------------------------------------------------------------------------- */

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return errno = ENAMETOOLONG, -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* --etcd-cache, else the control socket's path with ".etcd" for ".sock". */
static int open_mirror(struct etcd_feed *f)
{
	struct emperor *e = f->e;
	char path[PATH_MAX], real[PATH_MAX];
	size_t n;

	if (e->opts.etcd.cache_dir)
		snprintf(path, sizeof path, "%s", e->opts.etcd.cache_dir);
	else if (e->opts.control_path)
		snprintf(path, sizeof path, "%s", e->opts.control_path);
	else
		runpath_control(e->dir, path, sizeof path);
	n = strlen(path);
	if (!e->opts.etcd.cache_dir && n > 5 && strcmp(path + n - 5, ".sock") == 0)
		path[n - 5] = '\0';
	if (!e->opts.etcd.cache_dir && strlen(path) + 6 < sizeof path)
		strcat(path, ".etcd");
	if (mkdir_parents(path) < 0 || !realpath(path, real)) {
		log_errno("etcd: the mirror directory %s", path);
		return -1;
	}
	if (strcmp(real, e->dir) == 0) {
		log_warn("etcd: the mirror directory cannot be the watched directory %s", real);
		return -1;
	}
	f->mirror_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e->etcd_dir = strdup(real);
	if (f->mirror_fd < 0 || !e->etcd_dir) {
		log_errno("etcd: open %s", real);
		return -1;
	}
	return 0;
}

/* The password from --etcd-password-file: its first line. */
static char *read_password(const char *path)
{
	char buf[1024];
	FILE *fp = fopen(path, "re");

	if (!fp || !fgets(buf, sizeof buf, fp)) {
		log_errno("etcd: password file %s", path);
		if (fp)
			fclose(fp);
		return NULL;
	}
	fclose(fp);
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static struct etcd_client *client_new(struct emperor *e)
{
	const struct etcd_feed_opts *o = &e->opts.etcd;
	char *eps = strdup(o->endpoints), *save = NULL, *password = NULL;
	const char *list[FEED_MAX_ENDPOINTS];
	struct etcd_client *c = NULL;
	int n = 0;

	if (!eps)
		return NULL;
	for (char *p = strtok_r(eps, ",", &save); p && n < FEED_MAX_ENDPOINTS;
	     p = strtok_r(NULL, ",", &save))
		list[n++] = p;
	if (o->password_file && !(password = read_password(o->password_file)))
		goto out;
	struct etcd_opts co = { .endpoints = list, .n_endpoints = n, .cacert = o->cacert,
				.cert = o->cert, .key = o->key, .user = o->user,
				.password = password ? password : o->password };
	c = etcd_client_new(e->loop, &co);
out:
	free(password);
	free(eps);
	return c;
}

int etcd_feed_open(struct emperor *e)
{
	struct etcd_feed *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	f->e = e;
	f->node = e->opts.etcd.node;
	f->mirror_fd = -1;
	TAILQ_INIT(&f->keys);
	ev_timer_init(&f->retry, retry_due, 0, 0);
	if (asprintf(&f->vassals_prefix, "%s/vassals/", e->opts.etcd.prefix) < 0) {
		free(f);
		return -1;
	}
	if (open_mirror(f) < 0 || !(f->client = client_new(e))) {
		if (f->mirror_fd >= 0)
			close(f->mirror_fd);
		free(f->vassals_prefix);
		free(f);
		return -1;
	}
	e->etcd_feed = f;
	log_info("etcd: vassals from %s{all,%s}/ on %s, mirrored in %s", f->vassals_prefix,
		 f->node, e->opts.etcd.endpoints, e->etcd_dir);
	f->state = FEED_READING;
	read_range(f);
	return 0;
}
