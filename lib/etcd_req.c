/* etcd_req.c — the life of an etcd request (one POST to the JSON gateway): set up a
 * curl transfer to the current endpoint, wait for the backoff or for a token, retry on
 * the next endpoint after a transport failure, time out, and finish with one callback.
 * A stream's objects are parsed inside curl's write callback but handed to their owner
 * only from etcd_pump, outside curl, so an owner may free anything it likes; what is
 * freed meanwhile waits in the grave until the pump is done. Authentication (a token
 * from /v3/auth/authenticate, renewed when refused) is here too. */
#include "etcd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ETCD_MAX_RESPONSE (64u << 20)

static void auth_start(struct etcd_client *c);
static void req_finish(struct etcd_req *r, json_object *json, const char *err, int code);

/* ---- a request's transfer ------------------------------------------------------------- */

static void stream_emit(void *arg, json_object *o)
{
	struct etcd_req *r = arg;

	if (r->n_pending == r->cap_pending) {
		size_t cap = r->cap_pending ? r->cap_pending * 2 : 8;
		json_object **p = realloc(r->pending, cap * sizeof *p);
		if (!p) {
			json_object_put(o);
			return;
		}
		r->pending = p;
		r->cap_pending = cap;
	}
	r->pending[r->n_pending++] = o;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct etcd_req *r = userp;
	size_t len = size * n;

	if (r->streaming)
		return etcd_jstream_feed(&r->js, data, len, stream_emit, r) < 0 ? 0 : len;
	if (r->resp_len + len + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 16384;
		char *p;
		while (cap < r->resp_len + len + 1)
			cap *= 2;
		if (cap > ETCD_MAX_RESPONSE || !(p = realloc(r->resp, cap))) {
			r->too_large = 1;
			return 0;
		}
		r->resp = p;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, data, len);
	r->resp_len += len;
	r->resp[r->resp_len] = '\0';
	return len;
}

/* curl does not set close-on-exec; a child spawned meanwhile would inherit the socket. */
static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	(void)clientp, (void)purpose;
	if (fd_set_cloexec(fd, 1) < 0)
		log_errno("etcd: close-on-exec on socket %d", fd);
	return CURL_SOCKOPT_OK;
}

static int easy_setup(struct etcd_req *r)
{
	struct etcd_client *c = r->c;
	char url[512], auth[512];

	snprintf(url, sizeof url, "%s%s", c->endpoints[r->endpoint], r->path);
	r->headers = curl_slist_append(NULL, "Content-Type: application/json");
	/* gRPC metadata "hasleader": a member without a leader refuses a request at once,
	 * and ends our streams within a few election timeouts of losing it, instead of
	 * keeping them open and silent (a member cut off from the majority) */
	r->headers = curl_slist_append(r->headers, "Grpc-Metadata-hasleader: true");
	if (c->token && !r->is_auth) {
		snprintf(auth, sizeof auth, "Authorization: %s", c->token);
		r->headers = curl_slist_append(r->headers, auth);
	}
	r->easy = curl_easy_init();
	if (!r->easy || !r->headers)
		return -1;
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->curl_err);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_timeout * 1000));
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPINTVL, 5L);
	if (r->timeout > 0) { /* a third of the budget: a member without a leader hangs */
		double left = ev_timer_remaining(c->loop, &r->deadline), one = r->timeout / 3;
		one = one < 0.5 ? 0.5 : one;
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)((left < one ? left : one) * 1000) + 1);
	}
	if (c->cacert)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->cacert);
	if (c->cert)
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY, c->key);
	return 0;
}

static void transfer_drop(struct etcd_req *r)
{
	if (r->easy) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	r->resp_len = 0;
	r->too_large = 0;
	if (r->js.tok)
		json_tokener_reset(r->js.tok);
}

static void list_remove(struct etcd_req *r)
{
	struct etcd_client *c = r->c;
	struct etcd_req_list *l = r->where == REQ_ACTIVE ? &c->active :
				  r->where == REQ_QUEUED ? &c->queued :
				  r->where == REQ_AUTH_WAIT ? &c->auth_wait :
				  r->where == REQ_GRAVE ? &c->grave : NULL;
	if (l)
		TAILQ_REMOVE(l, r, link);
	r->where = REQ_NOWHERE;
}

static void list_insert(struct etcd_req *r, enum etcd_req_where where)
{
	struct etcd_client *c = r->c;
	struct etcd_req_list *l = where == REQ_ACTIVE ? &c->active :
				  where == REQ_QUEUED ? &c->queued :
				  where == REQ_AUTH_WAIT ? &c->auth_wait : &c->grave;

	list_remove(r);
	TAILQ_INSERT_TAIL(l, r, link);
	r->where = where;
}

void etcd_req_submit(struct etcd_req *r)
{
	struct etcd_client *c = r->c;

	if (c->user && !c->token && !r->is_auth) {
		list_insert(r, REQ_AUTH_WAIT);
		auth_start(c);
		return;
	}
	if (c->state == ETCD_CONN_DOWN) {
		list_insert(r, REQ_QUEUED);
		return;
	}
	transfer_drop(r);
	r->endpoint = c->cur;
	r->answered = 0;
	if (easy_setup(r) < 0 || curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		/* ends from the loop, not under our caller, which still holds r */
		transfer_drop(r);
		list_remove(r);
		free(r->last_err);
		r->last_err = strdup("cannot set up a transfer (out of memory)");
		ev_timer_stop(c->loop, &r->deadline);
		ev_timer_set(&r->deadline, 0., 0.);
		ev_timer_start(c->loop, &r->deadline);
		return;
	}
	list_insert(r, REQ_ACTIVE);
}

static void deadline_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct etcd_req *r = container_of(w, struct etcd_req, deadline);
	char msg[512];

	(void)loop, (void)revents;
	snprintf(msg, sizeof msg, "etcd %s: no answer within %.1f s%s%s", r->path, r->timeout,
		 r->last_err ? " (last: " : "", r->last_err ? r->last_err : "");
	if (r->last_err)
		strncat(msg, ")", sizeof msg - strlen(msg) - 1);
	transfer_drop(r);
	list_remove(r);
	req_finish(r, NULL, msg, -1);
}

struct etcd_req *etcd_req_new(struct etcd_client *c, const char *path, char *body,
			      double timeout)
{
	struct etcd_req *r = calloc(1, sizeof *r);

	if (!r || !body) {
		free(r);
		free(body);
		log_warn("etcd %s: out of memory", path);
		return NULL;
	}
	r->c = c;
	r->path = path;
	r->body = body;
	r->timeout = timeout;
	ev_timer_init(&r->deadline, deadline_fired, timeout, 0.);
	if (timeout > 0)
		ev_timer_start(c->loop, &r->deadline);
	return r;
}

void etcd_req_free(struct etcd_req *r)
{
	if (!r)
		return;
	ev_timer_stop(r->c->loop, &r->deadline);
	transfer_drop(r);
	if (r->c->pumping) { /* etcd_pump may still hold it: free when it is done */
		r->done = NULL;
		r->on_object = NULL;
		r->on_end = NULL;
		list_insert(r, REQ_GRAVE);
		return;
	}
	list_remove(r);
	for (size_t i = 0; i < r->n_pending; i++)
		json_object_put(r->pending[i]);
	free(r->pending);
	etcd_jstream_fini(&r->js);
	free(r->resp);
	free(r->last_err);
	free(r->body);
	free(r);
}

void etcd_cancel(struct etcd_req *r)
{
	etcd_req_free(r);
}

static void req_finish(struct etcd_req *r, json_object *json, const char *err, int code)
{
	etcd_req_done_fn done = r->done;

	ev_timer_stop(r->c->loop, &r->deadline);
	r->c->pumping++;
	if (r->streaming) {
		if (r->on_end)
			r->on_end(r, err ? err : "stream ended");
	} else if (done) {
		r->done = NULL;
		done(r, json, err, code);
	}
	r->c->pumping--;
	etcd_req_free(r);
}

/* ---- a request's end -------------------------------------------------------------------- */

/* Sends r again (to whatever endpoint is current) unless its budget is spent; the
 * deadline timer ends it otherwise. */
static void req_retry(struct etcd_req *r, const char *why)
{
	free(r->last_err);
	r->last_err = strdup(why);
	transfer_drop(r);
	etcd_req_submit(r);
}

/* etcd refuses a token it does not know (restarted, expired) or one issued before the
 * users or roles changed: get a new one and send again, as etcd's own client does. */
static int token_refused(const char *msg, int code)
{
	return code == 16 || (msg && (strstr(msg, "invalid auth token") ||
				      strstr(msg, "revision of auth store is old")));
}

int etcd_token_refused(struct etcd_client *c, const char *msg, int code)
{
	if (!c->user || !token_refused(msg, code))
		return 0;
	if (c->token)
		log_info("etcd: token refused (%s); authenticating again", msg);
	free(c->token);
	c->token = NULL;
	return 1;
}

/* A TLS set-up that cannot work (certificate not trusted, our files unreadable):
 * retrying will not help, so the request fails at once with curl's words. */
static int tls_refused(CURLcode rc, const char *msg)
{
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
	    rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ISSUER_ERROR)
		return 1;
	/* the server's alert for our certificate (or its absence) reaches us as a read
	 * or handshake error; only its text tells */
	return (rc == CURLE_RECV_ERROR || rc == CURLE_SSL_CONNECT_ERROR) &&
	       strstr(msg, "alert") && strstr(msg, "certificate");
}

static void unary_answered(struct etcd_req *r, long http)
{
	struct etcd_client *c = r->c;
	json_object *json = json_tokener_parse(r->resp ? r->resp : "");
	json_object *err = etcd_json_get(json, "error");
	int code = (int)etcd_json_i64(json, "code");
	char msg[512];

	if (!json) {
		snprintf(msg, sizeof msg, "etcd %s: HTTP %ld with no JSON from %s", r->path, http,
			 c->endpoints[r->endpoint]);
		etcd_conn_event(c, r->endpoint, 0, msg);
		req_retry(r, msg);
		return;
	}
	if (err && code == 14) { /* Unavailable: this member cannot serve now */
		snprintf(msg, sizeof msg, "%s", json_object_get_string(err));
		json_object_put(json);
		etcd_conn_event(c, r->endpoint, 0, msg);
		req_retry(r, msg);
		return;
	}
	etcd_conn_event(c, r->endpoint, 1, NULL);
	if (err && !r->auth_retried && !r->is_auth &&
	    etcd_token_refused(c, json_object_get_string(err), code)) {
		r->auth_retried = 1;
		json_object_put(json);
		transfer_drop(r);
		etcd_req_submit(r);
		return;
	}
	transfer_drop(r);
	list_remove(r);
	if (err) {
		snprintf(msg, sizeof msg, "etcd %s: %s", r->path, json_object_get_string(err));
		req_finish(r, NULL, msg, code ? code : -1);
	} else {
		req_finish(r, json, NULL, 0);
	}
	json_object_put(json);
}

static void transfer_done(struct etcd_req *r, CURLcode rc)
{
	struct etcd_client *c = r->c;
	long http = 0;
	char msg[512];

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
	if (r->too_large) {
		snprintf(msg, sizeof msg, "etcd %s: the answer is larger than %u MB (or memory ran out)",
			 r->path, ETCD_MAX_RESPONSE >> 20);
		etcd_conn_event(c, r->endpoint, 1, NULL);
		transfer_drop(r);
		list_remove(r);
		req_finish(r, NULL, msg, -1);
		return;
	}
	if (rc != CURLE_OK) {
		snprintf(msg, sizeof msg, "%s", r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc));
		etcd_conn_event(c, r->endpoint, 0, msg);
		if (!r->streaming && tls_refused(rc, msg)) {
			char full[600];
			snprintf(full, sizeof full, "etcd %s: TLS with %s: %s", r->path,
				 c->endpoints[r->endpoint], msg);
			transfer_drop(r);
			list_remove(r);
			req_finish(r, NULL, full, -1);
			return;
		}
		if (!r->streaming) {
			req_retry(r, msg);
			return;
		}
	} else {
		snprintf(msg, sizeof msg, "%s closed the stream (HTTP %ld)", c->endpoints[r->endpoint],
			 http);
		if (!r->streaming) {
			unary_answered(r, http);
			return;
		}
	}
	transfer_drop(r);
	list_remove(r);
	req_finish(r, NULL, msg, -1);
}

/* Hands each stream's parsed objects to its owner, one at a time, rescanning after
 * each: an owner may free any request meanwhile (it lands in the grave). */
static int dispatch_one(struct etcd_client *c)
{
	struct etcd_req *r;
	json_object *o, *err;

	TAILQ_FOREACH(r, &c->active, link)
		if (r->streaming && r->n_pending > 0)
			break;
	if (!r)
		return 0;
	o = r->pending[0];
	memmove(r->pending, r->pending + 1, --r->n_pending * sizeof *r->pending);
	err = etcd_json_get(o, "error");
	if (!r->answered && !err) {
		r->answered = 1;
		etcd_conn_event(c, r->endpoint, 1, NULL);
	}
	if (err && etcd_json_i64(err, "grpc_code") == 14) /* "no leader": another member */
		etcd_conn_event(c, r->endpoint, 0,
				json_object_get_string(etcd_json_get(err, "message")));
	if (r->on_object)
		r->on_object(r, o);
	json_object_put(o);
	return 1;
}

void etcd_pump(struct etcd_client *c)
{
	CURLMsg *m;
	int left, n = 0;

	c->pumping++;
	/* a stream's last objects first (etcd's "no leader" comes just before the end);
	 * a handle removed meanwhile takes its pending message with it */
	while (n++ < 10000 && dispatch_one(c))
		;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct etcd_req *r = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			transfer_done(r, m->data.result);
	}
	c->pumping--;
	if (c->pumping)
		return;
	while (!TAILQ_EMPTY(&c->grave))
		etcd_req_free(TAILQ_FIRST(&c->grave));
}

/* ---- authentication -------------------------------------------------------------------- */

static void auth_fail_waiting(struct etcd_client *c, const char *err)
{
	struct etcd_req *r;

	c->pumping++;
	while ((r = TAILQ_FIRST(&c->auth_wait))) {
		list_remove(r);
		req_finish(r, NULL, err, 16);
	}
	c->pumping--;
}

static void auth_done(struct etcd_req *r, json_object *json, const char *err, int code)
{
	struct etcd_client *c = r->c;
	const char *token = json_object_get_string(etcd_json_get(json, "token"));
	struct etcd_req_list todo = TAILQ_HEAD_INITIALIZER(todo);
	struct etcd_req *w;
	char msg[512];

	(void)code;
	c->authing = 0;
	if (!token) {
		snprintf(msg, sizeof msg, "etcd: authentication as %s failed: %s", c->user,
			 err ? err : "no token in the answer");
		if (!c->auth_error || strcmp(c->auth_error, msg) != 0)
			log_warn("%s", msg);
		free(c->auth_error);
		c->auth_error = strdup(msg);
		auth_fail_waiting(c, msg);
		return;
	}
	if (c->auth_error)
		log_info("etcd: authenticated as %s", c->user);
	free(c->auth_error);
	c->auth_error = NULL;
	free(c->token);
	c->token = strdup(token);
	TAILQ_CONCAT(&todo, &c->auth_wait, link);
	while ((w = TAILQ_FIRST(&todo))) {
		TAILQ_REMOVE(&todo, w, link);
		w->where = REQ_NOWHERE;
		etcd_req_submit(w);
	}
}

static void auth_start(struct etcd_client *c)
{
	json_object *o;
	struct etcd_req *r;

	if (c->authing)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(c->user));
	json_object_object_add(o, "password", json_object_new_string(c->password ? c->password : ""));
	r = etcd_req_new(c, "/v3/auth/authenticate", etcd_json_body(o), c->request_timeout);
	if (!r) {
		auth_fail_waiting(c, "etcd: authentication: out of memory");
		return;
	}
	r->is_auth = 1;
	r->done = auth_done;
	c->authing = 1;
	etcd_req_submit(r);
}
