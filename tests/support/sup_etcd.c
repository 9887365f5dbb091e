/* sup_etcd.c — real etcd servers (Debian's etcd-server) for the tests: one member or a
 * cluster of three on free loopback ports below 32768, each with its own data dir in
 * a temporary directory, plain or TLS on the client URLs. Ready is when every
 * member's /health (on a separate plain-HTTP metrics port, so it also works for a
 * TLS member) says true; a member can be SIGKILLed and restarted on the same ports
 * and data dir; stop ends each by pid and removes the directory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ETCD_READY_MS 20000

/* A free port in [20000, 32000): below the ephemeral range, and not one this run
 * handed out already. */
static int etcd_port(void)
{
	static int used[64], n_used;

	if (n_used == 0)
		srandom((unsigned)getpid() ^ (unsigned)sup_now_ms());
	for (int tries = 0; tries < 500; tries++) {
		int port = 20000 + (int)(random() % 12000), fd, dup = 0;
		for (int i = 0; i < n_used; i++)
			dup |= used[i] == port;
		if (dup || (fd = sup_listen_tcp("127.0.0.1", port, NULL)) < 0)
			continue;
		close(fd);
		if (n_used < 64)
			used[n_used++] = port;
		return port;
	}
	fprintf(stderr, "sup_etcd: no free port\n");
	return -1;
}

static int member_spawn(struct sup_etcd *e, int i)
{
	struct sup_etcd_member *m = &e->m[i];
	char client[64], peer[64], metrics[64];
	const char *scheme = e->opts.cert ? "https" : "http";
	char *argv[40];
	int a = 0;

	snprintf(client, sizeof client, "%s://127.0.0.1:%d", scheme, m->client_port);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", m->peer_port);
	snprintf(metrics, sizeof metrics, "http://127.0.0.1:%d", m->metrics_port);
	argv[a++] = "etcd";
	argv[a++] = "--name", argv[a++] = m->name;
	argv[a++] = "--data-dir", argv[a++] = m->datadir;
	argv[a++] = "--listen-client-urls", argv[a++] = client;
	argv[a++] = "--advertise-client-urls", argv[a++] = client;
	argv[a++] = "--listen-peer-urls", argv[a++] = peer;
	argv[a++] = "--initial-advertise-peer-urls", argv[a++] = peer;
	argv[a++] = "--listen-metrics-urls", argv[a++] = metrics;
	argv[a++] = "--initial-cluster", argv[a++] = e->initial_cluster;
	argv[a++] = "--initial-cluster-state", argv[a++] = "new";
	argv[a++] = "--initial-cluster-token", argv[a++] = (char *)sup_tag();
	argv[a++] = "--heartbeat-interval", argv[a++] = "50";
	argv[a++] = "--election-timeout", argv[a++] = "500";
	if (e->opts.cert) {
		argv[a++] = "--cert-file", argv[a++] = (char *)e->opts.cert;
		argv[a++] = "--key-file", argv[a++] = (char *)e->opts.key;
		argv[a++] = "--trusted-ca-file", argv[a++] = (char *)e->opts.cacert;
	}
	if (e->opts.client_cert_auth)
		argv[a++] = "--client-cert-auth";
	argv[a] = NULL;
	m->proc = sup_spawn(argv, NULL, e->dir, m->logpath);
	return m->proc ? 0 : -1;
}

int sup_etcd_healthy(struct sup_etcd *e, int i)
{
	struct sup_http r = { 0 };
	int ok;

	sup_net_quiet(1);
	ok = sup_http_get("127.0.0.1", e->m[i].metrics_port, "/health", &r, 1000) == 0;
	sup_net_quiet(0);
	if (!ok)
		return 0;
	ok = r.status == 200 && r.body && strstr(r.body, "\"true\"");
	sup_http_fini(&r);
	return ok;
}

int sup_etcd_wait_healthy(struct sup_etcd *e, int i, int timeout_ms)
{
	long long deadline = sup_now_ms() + timeout_ms;

	while (!sup_etcd_healthy(e, i)) {
		if (e->m[i].proc->exited || !sup_pid_alive(e->m[i].proc->pid)) {
			sup_wait_exit(e->m[i].proc, 1000);
			fprintf(stderr, "sup_etcd: %s %s\n", e->m[i].name,
				sup_status_str(e->m[i].proc->status));
			sup_print_tail(e->m[i].logpath, 20);
			return -1;
		}
		if (sup_now_ms() >= deadline) {
			fprintf(stderr, "sup_etcd: %s not healthy after %d ms\n", e->m[i].name, timeout_ms);
			sup_print_tail(e->m[i].logpath, 20);
			return -1;
		}
		sup_poll_pause();
	}
	return 0;
}

static int cluster_init(struct sup_etcd *e)
{
	char list[512] = "";

	for (int i = 0; i < e->n; i++) {
		struct sup_etcd_member *m = &e->m[i];
		snprintf(m->name, sizeof m->name, "e%d", i + 1);
		m->client_port = etcd_port();
		m->peer_port = etcd_port();
		m->metrics_port = etcd_port();
		if (m->client_port < 0 || m->peer_port < 0 || m->metrics_port < 0)
			return -1;
		snprintf(m->url, sizeof m->url, "%s://127.0.0.1:%d", e->opts.cert ? "https" : "http",
			 m->client_port);
		e->endpoints[i] = m->url;
		m->datadir = sup_path(e->dir, m->name);
		if (asprintf(&m->logpath, "%s/%s.log", e->dir, m->name) < 0)
			return -1;
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s=http://127.0.0.1:%d",
			 i ? "," : "", m->name, m->peer_port);
	}
	e->initial_cluster = strdup(list);
	return 0;
}

struct sup_etcd *sup_etcd_start(const struct sup_etcd_opts *o)
{
	struct sup_etcd *e = calloc(1, sizeof *e);

	if (!e)
		return NULL;
	e->opts = *o;
	e->n = o->members == 3 ? 3 : 1;
	e->dir = sup_tmpdir();
	if (!e->dir || cluster_init(e) < 0)
		goto fail;
	for (int i = 0; i < e->n; i++)
		if (member_spawn(e, i) < 0)
			goto fail;
	for (int i = 0; i < e->n; i++)
		if (sup_etcd_wait_healthy(e, i, ETCD_READY_MS) < 0)
			goto fail;
	return e;
fail:
	sup_etcd_stop(e);
	return NULL;
}

int sup_etcd_kill(struct sup_etcd *e, int i)
{
	int rc = sup_stop(e->m[i].proc, SIGKILL, 5000);

	sup_proc_free(e->m[i].proc);
	e->m[i].proc = NULL;
	return rc;
}

int sup_etcd_restart(struct sup_etcd *e, int i, int wait_healthy)
{
	if (member_spawn(e, i) < 0)
		return -1;
	return wait_healthy ? sup_etcd_wait_healthy(e, i, ETCD_READY_MS) : 0;
}

int sup_etcd_leader(struct sup_etcd *e)
{
	for (int i = 0; i < e->n; i++) {
		struct sup_http r = { 0 };
		int leads;
		if (!e->m[i].proc)
			continue;
		if (sup_http_get("127.0.0.1", e->m[i].metrics_port, "/metrics", &r, 2000) < 0)
			continue;
		leads = r.body && strstr(r.body, "\netcd_server_is_leader 1\n");
		sup_http_fini(&r);
		if (leads)
			return i;
	}
	return -1;
}

int sup_etcd_ctl(struct sup_etcd *e, const char *const args[])
{
	char eps[96], *argv[32], *log = sup_path(e->dir, "etcdctl.log");
	struct sup_proc *p;
	int a = 0, rc = -1;

	snprintf(eps, sizeof eps, "--endpoints=%s", e->m[0].url);
	argv[a++] = "etcdctl";
	argv[a++] = eps;
	for (int i = 0; args[i] && a < 31; i++)
		argv[a++] = (char *)args[i];
	argv[a] = NULL;
	p = sup_spawn(argv, (char *const[]){ "ETCDCTL_API=3", NULL }, e->dir, log);
	if (p && sup_wait_exit(p, 10000) == 0 && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0)
		rc = 0;
	else
		sup_print_tail(log, 10);
	sup_proc_free(p);
	free(log);
	return rc;
}

int sup_etcd_make_certs(const char *dir)
{
	static const char script[] =
		"set -e\n"
		"openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
		"  -keyout ca.key -out ca.crt 2>/dev/null\n"
		"for n in server client; do\n"
		"  openssl req -newkey rsa:2048 -nodes -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null\n"
		"  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > $n.ext\n"
		"  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
		"    -extfile $n.ext -out $n.crt 2>/dev/null\n"
		"done\n";
	char *log = sup_path(dir, "openssl.log");
	struct sup_proc *p = sup_spawn((char *const[]){ "sh", "-c", (char *)script, NULL }, NULL, dir, log);
	int rc = -1;

	if (p && sup_wait_exit(p, 30000) == 0 && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0)
		rc = 0;
	else
		sup_print_tail(log, 10);
	sup_proc_free(p);
	free(log);
	return rc;
}

void sup_etcd_stop(struct sup_etcd *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n; i++) {
		if (e->m[i].proc && sup_stop(e->m[i].proc, SIGTERM, 10000) < 0)
			fprintf(stderr, "sup_etcd: %s did not stop on SIGTERM\n", e->m[i].name);
		sup_proc_free(e->m[i].proc);
		free(e->m[i].datadir);
		free(e->m[i].logpath);
	}
	if (e->dir)
		sup_rmtree(e->dir);
	free(e->dir);
	free(e->initial_cluster);
	free(e);
}
