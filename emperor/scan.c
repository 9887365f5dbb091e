/* scan.c — reconciles the vassal table with the directory. Candidates are *.yaml and
 * *.yml files that are not hidden (which also skips a ConfigMap's ..data) and not
 * editor droppings; symlinks are followed. A file's identity is (device, inode, birth
 * time, size, mtime) plus a hash of its content, which tells apart:
 *   new file               → start (after validation)
 *   same inode, new mtime,
 *   same content           → touched: graceful reload
 *   new content            → changed: validate, then reload (or keep running)
 *   new inode, same content→ nothing (an atomic rewrite or a ConfigMap swap)
 *   gone                   → graceful stop
 * A renamed file starts under its new name once the old name has stopped, so the two
 * never fight over the same sockets. A candidate that is not a regular file (a FIFO,
 * a directory) is logged once and never opened.
 * With --etcd, the etcd mirror (etcd_feed.c writes it) is scanned the same way after
 * the directory, its records marked from_etcd. A name that the directory has too
 * (NAME.yaml or NAME.yml) is shadowed: the local file wins, the mirror's is skipped
 * (stopped if it ran) and logged once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "emperor.h"
#include "scan.h"
#include "log.h"
#include "util.h"

/* The records vtable_find() looks at, sorted by file name, built once per pass: each
 * directory entry is looked up in O(log n), not O(n) (10,000 files dropped at once).
 * A file has at most one such record; a record added during the pass goes into the
 * index too (a name readdir returns twice, renamed meanwhile, is one record). New
 * records are not started here: they join the emperor's start queue, which starts a
 * bounded number per loop iteration (emperor_queue_start). */
struct file_index {
	struct vassal **v;           /* NULL: no index, vtable_find() is used */
	size_t n, cap;
};

static int by_file(const void *a, const void *b)
{
	return strcmp((*(struct vassal *const *)a)->file, (*(struct vassal *const *)b)->file);
}

static int file_is(const void *file, const void *elem)
{
	return strcmp(file, (*(struct vassal *const *)elem)->file);
}

/* One directory scanned: the watched one, or the etcd mirror. */
struct source {
	const char *dir;
	bool etcd;
	int local_fd;                /* etcd: the watched directory, for shadowing; else -1 */
};

static void index_build(struct emperor *e, const struct source *src, struct file_index *ix)
{
	struct vassal *v;
	size_t n = 0;

	TAILQ_FOREACH(v, &e->vassals, link)
		n++;
	ix->n = 0;
	ix->cap = n ? n : 1;
	ix->v = malloc(ix->cap * sizeof *ix->v);
	if (!ix->v)
		return;
	TAILQ_FOREACH(v, &e->vassals, link)
		if ((v->state != VASSAL_STOPPING || v->halting) && v->from_etcd == src->etcd)
			ix->v[ix->n++] = v;
	qsort(ix->v, ix->n, sizeof *ix->v, by_file);
}

static struct vassal *index_find(struct emperor *e, const struct source *src,
				 const struct file_index *ix, const char *file)
{
	struct vassal **found;

	if (!ix->v)
		return vtable_find(e, file, src->etcd);
	found = bsearch(file, ix->v, ix->n, sizeof *ix->v, file_is);
	return found ? *found : NULL;
}

/* A record added during the pass, at its place in the index. */
static void index_add(struct file_index *ix, struct vassal *v)
{
	size_t lo = 0, hi = ix->n;

	if (!ix->v)
		return;
	if (ix->n == ix->cap) {
		struct vassal **grown = realloc(ix->v, 2 * ix->cap * sizeof *grown);
		if (!grown) {
			free(ix->v);
			ix->v = NULL; /* vtable_find() from now on */
			return;
		}
		ix->v = grown;
		ix->cap *= 2;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(ix->v[mid]->file, v->file) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(ix->v + lo + 1, ix->v + lo, (ix->n - lo) * sizeof *ix->v);
	ix->v[lo] = v;
	ix->n++;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

bool scan_is_candidate(const char *file)
{
	if (file[0] == '.' || file[0] == '#' || strlen(file) > 250)
		return false;
	return ends_with(file, ".yaml") || ends_with(file, ".yml");
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int hash_file(int dirfd, const char *file, uint64_t *out)
{
	unsigned char buf[16384];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t total = 0;
	ssize_t n;
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	while (total <= CONFIG_MAX_FILE_SIZE && (n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		h = fnv1a(h, buf, (size_t)n);
		total += (size_t)n;
	}
	close(fd);
	*out = h;
	return 0;
}

/* 0 for a regular file (identity filled), 1 for anything else, -1 if gone. */
int scan_file_id(int dirfd, const char *file, struct file_id *id, bool with_hash)
{
	struct statx st;

	if (statx(dirfd, file, 0, STATX_BASIC_STATS | STATX_BTIME, &st) < 0)
		return -1;
	if (!S_ISREG(st.stx_mode))
		return 1;
	id->dev = makedev(st.stx_dev_major, st.stx_dev_minor);
	id->ino = st.stx_ino;
	id->btime = (struct timespec){ 0, 0 };
	if (st.stx_mask & STATX_BTIME)
		id->btime = (struct timespec){ st.stx_btime.tv_sec, st.stx_btime.tv_nsec };
	id->size = (off_t)st.stx_size;
	id->mtime = (struct timespec){ st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec };
	if (with_hash && hash_file(dirfd, file, &id->hash) < 0)
		return -1;
	return 0;
}

static bool ts_equal(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* The same file, not just the same inode number (a deleted file's number is soon
 * given to a new one). A birth time of 0 (unknown) matches any. */
static bool same_file(const struct file_id *a, const struct file_id *b)
{
	static const struct timespec unknown = { 0, 0 };

	return a->dev == b->dev && a->ino == b->ino &&
	       (ts_equal(a->btime, unknown) || ts_equal(b->btime, unknown) ||
		ts_equal(a->btime, b->btime));
}

static bool same_stat(const struct file_id *a, const struct file_id *b)
{
	return same_file(a, b) && a->size == b->size && ts_equal(a->mtime, b->mtime);
}

/* Adds file to a list of names logged once; false if it was there already. */
static bool note_add(char ***list, const char *file)
{
	size_t n = strv_len(*list);

	for (size_t i = 0; i < n; i++)
		if (strcmp((*list)[i], file) == 0)
			return false;
	char **grown = realloc(*list, (n + 2) * sizeof *grown);
	if (!grown)
		return true;
	*list = grown;
	grown[n] = strdup(file);
	grown[n + 1] = NULL;
	return true;
}

static void note_drop(char **list, const char *file)
{
	size_t n = strv_len(list);

	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], file) == 0) {
			free(list[i]);
			list[i] = list[n - 1];
			list[n - 1] = NULL;
			return;
		}
}

/* A candidate that is not a regular file is never opened (a FIFO would block the
 * open): it is logged once, until it is a regular file again. */
static void note_ignored(struct emperor *e, const char *file)
{
	char *shown;

	if (!note_add(&e->ignored, file))
		return;
	shown = config_printable(file);
	log_warn("%s/%s: ignored: not a regular file", e->dir, shown ? shown : "?");
	free(shown);
}

static void note_regular(struct emperor *e, const char *file)
{
	note_drop(e->ignored, file);
}

/* An etcd-fed file whose name the watched directory has too (NAME.yaml or NAME.yml):
 * the local file wins. Logged once per spell. */
static bool shadowed(struct emperor *e, const struct source *src, const char *file)
{
	char *name, alt[300];
	bool hit = false;

	if (!src->etcd)
		return false;
	if (!(name = config_vassal_name(file)))
		goto out;
	snprintf(alt, sizeof alt, "%s.yaml", name);
	hit = faccessat(src->local_fd, alt, F_OK, 0) == 0;
	snprintf(alt, sizeof alt, "%s.yml", name);
	hit = hit || faccessat(src->local_fd, alt, F_OK, 0) == 0;
	if (!hit)
		note_drop(e->shadowed, file);
	else if (note_add(&e->shadowed, file))
		log_warn("%s: the etcd key is shadowed by the file %s/%s.y(a)ml, which wins", name,
			 e->dir, name);
out:
	free(name);
	return hit;
}

/* A vassal's file that became something else (a FIFO, a directory) is ignored like a
 * broken edit: the vassal keeps running its previous config. */
static void known_file(struct vassal *v, int dirfd)
{
	struct file_id now;
	int kind = scan_file_id(dirfd, v->file, &now, false);

	if (kind == 1)
		note_ignored(v->e, v->file);
	if (kind != 0)
		return;
	note_regular(v->e, v->file);
	if (same_stat(&now, &v->id) || scan_file_id(dirfd, v->file, &now, true) != 0)
		return;
	bool same_one = same_file(&now, &v->id);
	bool same_content = now.hash == v->id.hash;
	v->id = now;
	if (!same_content)
		vtable_changed(v, true);
	else if (same_one)
		vtable_changed(v, false);
}

/* The stopping record a new one must wait for: same name, or same inode (renamed). */
static struct vassal *predecessor(struct emperor *e, const struct vassal *nv)
{
	struct vassal *v;

	if (e->records_stopping == 0) /* the usual case: no walk per new record */
		return NULL;
	TAILQ_FOREACH(v, &e->vassals, link)
		if (v != nv && v->state == VASSAL_STOPPING &&
		    (strcmp(v->name, nv->name) == 0 || same_file(&v->id, &nv->id)))
			return v;
	return NULL;
}

/* A new record leaves the start queue (emperor.c): it starts now, or once the
 * stopping record of its name (or its old name, renamed) has exited. */
void scan_start_new(struct vassal *v)
{
	struct vassal *old = predecessor(v->e, v);

	if (old) {
		vtable_wait_for(v, old);
		log_info("%s: starts when %s has stopped", v->name, old->name);
	} else {
		vtable_start(v);
	}
}

/* One directory's candidates against the records of that source. */
static void scan_dir(struct emperor *e, const struct source *src)
{
	int dirfd = open(src->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct vassal *v, *next;
	struct file_index ix;
	struct dirent *de;
	DIR *d;

	if (dirfd < 0 || !(d = fdopendir(dirfd))) {
		if (dirfd >= 0)
			close(dirfd);
		return; /* gone: the monitor waits for it; vassals keep running */
	}
	TAILQ_FOREACH(v, &e->vassals, link)
		if (v->from_etcd == src->etcd)
			v->seen = false;
	index_build(e, src, &ix);
	while ((de = readdir(d)) != NULL) {
		struct file_id id;
		int kind;
		if (!scan_is_candidate(de->d_name) || shadowed(e, src, de->d_name))
			continue;
		if ((v = index_find(e, src, &ix, de->d_name)) != NULL) {
			v->seen = true;
			known_file(v, dirfd);
			continue;
		}
		kind = scan_file_id(dirfd, de->d_name, &id, true);
		if (kind == 1)
			note_ignored(e, de->d_name);
		else if (kind == 0)
			note_regular(e, de->d_name);
		if (kind != 0 || !(v = vtable_add(e, de->d_name, &id, src->etcd)))
			continue;
		v->seen = true;
		index_add(&ix, v);
		emperor_queue_start(e, v);
	}
	closedir(d);
	free(ix.v);
	for (v = TAILQ_FIRST(&e->vassals); v; v = next) {
		next = TAILQ_NEXT(v, link); /* a record with no process goes at once */
		if (!v->seen && v->from_etcd == src->etcd && v->state != VASSAL_STOPPING)
			vtable_stop(v, src->etcd ? "etcd key removed or shadowed" : "file removed");
	}
}

void scan_run(struct emperor *e)
{
	struct source local = { .dir = e->dir, .etcd = false, .local_fd = -1 };

	scan_dir(e, &local);
	if (!e->etcd_dir)
		return;
	struct source mirror = { .dir = e->etcd_dir, .etcd = true,
				 .local_fd = open(e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
	scan_dir(e, &mirror); /* the directory gone (local_fd -1): nothing shadows */
	if (mirror.local_fd >= 0)
		close(mirror.local_fd);
}
