/* subscription.c — the router's node table (keys → nodes, balancing, expiry), its
 * state file (written on a change, or when the owner's on_change says: the router
 * debounces it), and the subscription protocol's datagrams, both ends (subscription.h). */
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "subscription.h"
#include "log.h"
#include "parse.h"

void sub_table_init(struct sub_table *t, enum cfg_balance balance, const char *who)
{
	TAILQ_INIT(&t->keys);
	TAILQ_INIT(&t->retired);
	t->balance = balance;
	t->who = who;
	t->state_path = NULL;
	t->on_change = NULL;
}

/* The nodes changed: saved now, or when the owner's on_change decides (debounced). */
static void table_changed(struct sub_table *t)
{
	if (!t->state_path)
		return;
	if (t->on_change)
		t->on_change(t);
	else
		sub_table_save(t);
}

void sub_node_hold(struct sub_node *n)
{
	n->refs++;
}

void sub_node_release(struct sub_table *t, struct sub_node *n)
{
	if (--n->refs > 0 || !n->retired)
		return;
	TAILQ_REMOVE(&t->retired, n, link);
	free(n);
}

/* Takes n off its key; freed now, or at its last release if a connection holds it. */
static void node_drop(struct sub_table *t, struct sub_key *k, struct sub_node *n)
{
	TAILQ_REMOVE(&k->nodes, n, link);
	if (n->refs > 0) {
		n->retired = true;
		TAILQ_INSERT_TAIL(&t->retired, n, link);
		return;
	}
	free(n);
}

static void key_free(struct sub_table *t, struct sub_key *k)
{
	while (!TAILQ_EMPTY(&k->nodes))
		node_drop(t, k, TAILQ_FIRST(&k->nodes));
	TAILQ_REMOVE(&t->keys, k, link);
	free(k->key);
	free(k);
}

void sub_table_fini(struct sub_table *t)
{
	struct sub_node *n;

	while (!TAILQ_EMPTY(&t->keys))
		key_free(t, TAILQ_FIRST(&t->keys));
	while ((n = TAILQ_FIRST(&t->retired)) != NULL) {
		TAILQ_REMOVE(&t->retired, n, link);
		free(n);
	}
	free(t->state_path);
	t->state_path = NULL;
}

static struct sub_key *key_find(struct sub_table *t, const char *key)
{
	struct sub_key *k;

	TAILQ_FOREACH(k, &t->keys, link)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

static bool same_addr(const struct cfg_addr *a, const struct cfg_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

void sub_table_add(struct sub_table *t, const char *key, const struct cfg_addr *addr,
		   int weight, ev_tstamp now)
{
	struct sub_key *k = key_find(t, key);
	struct sub_node *n;

	if (!k) {
		k = calloc(1, sizeof *k);
		if (!k || !(k->key = strdup(key))) {
			free(k);
			return;
		}
		TAILQ_INIT(&k->nodes);
		TAILQ_INSERT_TAIL(&t->keys, k, link);
	}
	TAILQ_FOREACH(n, &k->nodes, link)
		if (same_addr(&n->addr, addr)) {
			bool reweighted = n->weight != weight && weight > 0;
			n->last_seen = now;
			if (reweighted) {
				n->weight = weight;
				log_info("%s: node %s -> %s: weight %d", t->who, *key ? key : "(default)",
					 addr->text, weight);
				table_changed(t);
			}
			return;
		}
	n = calloc(1, sizeof *n);
	if (!n)
		return;
	n->addr = *addr;
	n->weight = weight > 0 ? weight : 1;
	n->last_seen = now;
	TAILQ_INSERT_TAIL(&k->nodes, n, link);
	if (now > 0)
		table_changed(t);
	log_info("%s: node added: %s -> %s (weight %d)", t->who, *key ? key : "(default)",
		 addr->text, n->weight);
}

void sub_table_remove(struct sub_table *t, const char *key, const struct cfg_addr *addr)
{
	struct sub_key *k = key_find(t, key);
	struct sub_node *n;

	if (!k)
		return;
	TAILQ_FOREACH(n, &k->nodes, link)
		if (same_addr(&n->addr, addr)) {
			log_info("%s: node removed: %s -> %s (unsubscribed)", t->who, key, addr->text);
			node_drop(t, k, n);
			break;
		}
	if (!n)
		return;
	if (TAILQ_EMPTY(&k->nodes))
		key_free(t, k);
	table_changed(t);
}

int sub_table_expire(struct sub_table *t, ev_tstamp now)
{
	struct sub_key *k, *knext;
	struct sub_node *n, *nnext;
	int dropped = 0;

	for (k = TAILQ_FIRST(&t->keys); k; k = knext) {
		knext = TAILQ_NEXT(k, link);
		for (n = TAILQ_FIRST(&k->nodes); n; n = nnext) {
			nnext = TAILQ_NEXT(n, link);
			if (n->last_seen == 0 || now - n->last_seen < SUB_PERIOD * SUB_EXPIRE_PERIODS)
				continue;
			log_info("%s: node expired: %s -> %s (not heard from for %.0fs)", t->who,
				 k->key, n->addr.text, now - n->last_seen);
			node_drop(t, k, n);
			dropped++;
		}
		if (TAILQ_EMPTY(&k->nodes))
			key_free(t, k);
	}
	if (dropped)
		table_changed(t);
	return dropped;
}

ev_tstamp sub_table_next_expiry(const struct sub_table *t)
{
	const struct sub_key *k;
	const struct sub_node *n;
	ev_tstamp next = 0;

	TAILQ_FOREACH(k, &t->keys, link)
		TAILQ_FOREACH(n, &k->nodes, link) {
			ev_tstamp due = n->last_seen + SUB_PERIOD * SUB_EXPIRE_PERIODS;
			if (n->last_seen > 0 && (next == 0 || due < next))
				next = due;
		}
	return next;
}

int sub_table_save(const struct sub_table *t)
{
	char tmp[PATH_MAX];
	const struct sub_key *k;
	const struct sub_node *n;
	FILE *f;

	if (!t->state_path)
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", t->state_path);
	f = fopen(tmp, "we");
	if (!f) {
		log_errno("%s: cannot save the nodes: %s", t->who, tmp);
		return -1;
	}
	TAILQ_FOREACH(k, &t->keys, link)
		TAILQ_FOREACH(n, &k->nodes, link)
			if (n->last_seen > 0) /* static `to:` nodes come from the config */
				fprintf(f, "%s %s %d\n", k->key, n->addr.text, n->weight);
	/* No fsync: the file serves a restarted router (the page cache has it); after a
	 * crash of the machine the nodes announce themselves again within SUB_PERIOD. */
	if (fflush(f) != 0 || ferror(f)) {
		log_errno("%s: cannot save the nodes: %s", t->who, tmp);
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, t->state_path) < 0) {
		log_errno("%s: cannot save the nodes: rename to %s", t->who, t->state_path);
		return -1;
	}
	return 0;
}

/* One line of the state file: "KEY ADDRESS WEIGHT"; the address may hold spaces (a
 * unix path), the key cannot (sub_parse refuses it). */
static int parse_state_line(char *line, char *key, size_t keylen, struct cfg_addr *addr,
			    int *weight)
{
	char *sp1, *sp2, *end;
	const char *why;

	line[strcspn(line, "\n")] = '\0';
	sp1 = strchr(line, ' ');
	sp2 = strrchr(line, ' ');
	if (!sp1 || sp2 == sp1 || (size_t)(sp1 - line) >= keylen || sp1 == line)
		return -1;
	*sp1 = *sp2 = '\0';
	*weight = (int)strtol(sp2 + 1, &end, 10);
	if (*end || *weight < 1 || *weight > 1000 || parse_addr(sp1 + 1, addr, &why) < 0)
		return -1;
	memcpy(key, line, (size_t)(sp1 - line) + 1);
	return 0;
}

int sub_table_restore(struct sub_table *t, ev_tstamp now)
{
	char line[1024], key[256];
	char *path = t->state_path;
	FILE *f = path ? fopen(path, "re") : NULL;
	int weight, n = 0, bad = 0;

	if (!f)
		return 0;
	t->state_path = NULL; /* no save per restored node: the file already holds them */
	while (fgets(line, sizeof line, f)) {
		struct cfg_addr addr;
		if (parse_state_line(line, key, sizeof key, &addr, &weight) < 0) {
			bad++;
			continue;
		}
		sub_table_add(t, key, &addr, weight, now);
		n++;
	}
	fclose(f);
	t->state_path = path;
	if (bad)
		log_warn("%s: %s: %d malformed lines ignored", t->who, path, bad);
	if (n)
		log_info("%s: %d nodes restored from %s", t->who, n, path);
	return n;
}

int sub_table_count(const struct sub_table *t)
{
	const struct sub_key *k;
	const struct sub_node *n;
	int count = 0;

	TAILQ_FOREACH(k, &t->keys, link)
		TAILQ_FOREACH(n, &k->nodes, link)
			count++;
	return count;
}

struct sub_key *sub_table_lookup(struct sub_table *t, const char *host)
{
	char name[256], wild[260];
	struct sub_key *k;
	size_t n = strcspn(host, ":");

	if (host[0] == '[') /* [v6]:port */
		n = strcspn(host, "]") + 1;
	if (n >= sizeof name)
		return NULL;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)host[i]);
	name[n] = '\0';
	if (n && (k = key_find(t, name)))
		return k;
	for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
		snprintf(wild, sizeof wild, "*%s", dot);
		if ((k = key_find(t, wild)))
			return k;
	}
	return key_find(t, "");
}

static bool skipped(const struct sub_node *n, struct sub_node *const *skip, int n_skip)
{
	for (int i = 0; i < n_skip; i++)
		if (skip[i] == n)
			return true;
	return false;
}

struct sub_node *sub_pick(struct sub_table *t, struct sub_key *k, ev_tstamp now,
			  struct sub_node *const *skip, int n_skip)
{
	struct sub_node *n, *best = NULL;
	int total = 0;

	TAILQ_FOREACH(n, &k->nodes, link) {
		if (n->down_until > now || skipped(n, skip, n_skip))
			continue;
		if (t->balance == CFG_BALANCE_LEAST_CONN) {
			if (!best || n->active * best->weight < best->active * n->weight)
				best = n;
			continue;
		}
		n->rr_credit += n->weight; /* smooth weighted round robin */
		total += n->weight;
		if (!best || n->rr_credit > best->rr_credit)
			best = n;
	}
	if (best && t->balance == CFG_BALANCE_ROUND_ROBIN)
		best->rr_credit -= total;
	return best;
}

/* ---- datagrams ------------------------------------------------------------------- */

static const char *field(const char *msg, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = msg; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = strcspn(p + n + 1, "\r\n");
			if (v >= len)
				return NULL;
			memcpy(out, p + n + 1, v);
			out[v] = '\0';
			return out;
		}
	return NULL;
}

int sub_parse(const char *msg, char *key, size_t keylen, struct cfg_addr *addr, int *weight,
	      const char **why)
{
	char text[200], w[16];
	size_t first = strcspn(msg, "\r\n");
	int cmd;

	*why = NULL;
	if (first == 9 && strncmp(msg, "subscribe", 9) == 0 && msg[first])
		cmd = 1;
	else if (first == 11 && strncmp(msg, "unsubscribe", 11) == 0 && msg[first])
		cmd = 0;
	else {
		*why = "expected 'subscribe' or 'unsubscribe' on the first line";
		return -1;
	}
	if (!field(msg, "key", key, keylen) || !*key) {
		*why = "missing key= (or longer than the router takes)";
		return -1;
	}
	for (const char *p = key; *p; p++)
		if (!isgraph((unsigned char)*p)) {
			*why = "a key is printable characters without spaces";
			return -1;
		}
	if (!field(msg, "address", text, sizeof text) || parse_addr(text, addr, why) < 0) {
		if (!*why)
			*why = "missing address=";
		return -1;
	}
	*weight = field(msg, "weight", w, sizeof w) ? atoi(w) : 1;
	if (*weight < 1 || *weight > 1000)
		*weight = 1;
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return cmd;
}

int sub_format(char *buf, size_t len, bool subscribe, const char *key, const char *addr,
	       int weight)
{
	int n = snprintf(buf, len, "%s\nkey=%s\naddress=%s\nweight=%d\n",
			 subscribe ? "subscribe" : "unsubscribe", key, addr, weight);
	return n < (int)len ? n : (int)len - 1;
}

int sub_send(const struct cfg_addr *server, const char *msg, int len)
{
	int fd = socket(server->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc;

	if (fd < 0)
		return -1;
	rc = (int)sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&server->ss,
			 server->len);
	close(fd);
	return rc < 0 ? -1 : 0;
}
