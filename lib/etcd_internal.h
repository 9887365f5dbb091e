/* etcd_internal.h — what the etcd client's files share and nobody else sees: the
 * client, a request (one HTTP POST to the JSON gateway, unary or a stream), and the
 * calls that submit and finish requests. etcd.c owns the client, curl multi on libev,
 * the endpoints and backoff; etcd_req.c a request's life and auth; etcd_ops.c the key-value and lease operations;
 * etcd_watch.c watches and leader observation; etcd_elect.c the lease keeper and
 * campaigns. */
#ifndef EMPEROR_ETCD_INTERNAL_H
#define EMPEROR_ETCD_INTERNAL_H

#define CURL_DISABLE_TYPECHECK /* its macros would hide the calls below */
#include <curl/curl.h>
#include <ev.h>
#include <json-c/json.h>
#include <stdint.h>
#include <sys/queue.h>

#include "etcd.h"
#include "util.h"

/* libcurl's functions, loaded by etcd_curl_load() (etcd_curl.c) on the first client:
 * the files of the client call them by their usual names, through these macros. */
struct etcd_curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};
extern struct etcd_curl_api etcd_curl;
/* 0 once libcurl is loaded; -1 with the reason in why. */
int etcd_curl_load(char *why, size_t len);
#undef curl_easy_setopt  /* curl.h's own argument-count checks */
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init etcd_curl.global_init
#define curl_easy_init etcd_curl.easy_init
#define curl_easy_setopt etcd_curl.easy_setopt
#define curl_easy_getinfo etcd_curl.easy_getinfo
#define curl_easy_cleanup etcd_curl.easy_cleanup
#define curl_easy_strerror etcd_curl.easy_strerror
#define curl_multi_init etcd_curl.multi_init
#define curl_multi_setopt etcd_curl.multi_setopt
#define curl_multi_add_handle etcd_curl.multi_add_handle
#define curl_multi_remove_handle etcd_curl.multi_remove_handle
#define curl_multi_assign etcd_curl.multi_assign
#define curl_multi_cleanup etcd_curl.multi_cleanup
#define curl_multi_info_read etcd_curl.multi_info_read
#define curl_multi_socket_action etcd_curl.multi_socket_action
#define curl_slist_append etcd_curl.slist_append
#define curl_slist_free_all etcd_curl.slist_free_all

/* Cuts a byte stream into JSON objects (etcd_codec.c). */
struct etcd_jstream {
	json_tokener *tok;
};
int etcd_jstream_init(struct etcd_jstream *s);
void etcd_jstream_fini(struct etcd_jstream *s);
/* emit gets each complete object (and owns it). -1 on malformed JSON. */
int etcd_jstream_feed(struct etcd_jstream *s, const char *data, size_t len,
		      void (*emit)(void *arg, json_object *o), void *arg);

enum etcd_req_where { REQ_NOWHERE, REQ_ACTIVE, REQ_QUEUED, REQ_AUTH_WAIT, REQ_GRAVE };

struct etcd_req;
/* A unary request's end: json is the answer (NULL with err set on failure; code is
 * etcd's code or -1). Called once, then the request is freed. */
typedef void (*etcd_req_done_fn)(struct etcd_req *r, json_object *json, const char *err,
				 int code);
/* A stream's objects, and its end (err says why; the request is freed after). */
typedef void (*etcd_req_object_fn)(struct etcd_req *r, json_object *o);
typedef void (*etcd_req_end_fn)(struct etcd_req *r, const char *err);

struct etcd_req {
	struct etcd_client *c;
	TAILQ_ENTRY(etcd_req) link;
	enum etcd_req_where where;
	const char *path;             /* "/v3/kv/put" */
	char *body;
	CURL *easy;
	struct curl_slist *headers;
	char curl_err[CURL_ERROR_SIZE];
	int endpoint;                 /* where the current attempt went */
	int auth_retried;             /* refused token: re-authenticated once */
	int is_auth;                  /* the authenticate request itself */
	char *last_err;               /* the last transport error, for a timeout message */
	ev_timer deadline;            /* unary: the whole budget */
	double timeout;               /* 0: none (streams, campaigns) */
	/* unary */
	char *resp;                   /* the answer so far, NUL-terminated */
	size_t resp_len, resp_cap;
	int too_large;                /* past ETCD_MAX_RESPONSE: not retried */
	etcd_req_done_fn done;
	/* stream */
	int streaming;
	int answered;                 /* a stream got its first object */
	struct etcd_jstream js;
	json_object **pending;        /* objects waiting for dispatch outside curl */
	size_t n_pending, cap_pending;
	etcd_req_object_fn on_object;
	etcd_req_end_fn on_end;
	/* the owner: a user callback (etcd_ops.c) or a watch, lease, campaign */
	void *owner;
	etcd_cb user_cb;
	void *user_arg;
};
TAILQ_HEAD(etcd_req_list, etcd_req);

struct etcd_sock {
	ev_io io;
	curl_socket_t fd;
	struct etcd_client *c;
	LIST_ENTRY(etcd_sock) link;
};

struct etcd_client {
	struct ev_loop *loop;
	CURLM *multi;
	ev_timer curl_timer;          /* curl's own timeouts */
	ev_timer backoff_timer;
	char **endpoints;
	int n_endpoints, cur, tried;  /* tried: endpoints failed in this round */
	enum etcd_conn_state state;
	int attempt;                  /* backoff attempt */
	double lost_at;               /* mono time the connection was lost */
	char *cacert, *cert, *key, *user, *password;
	double request_timeout, connect_timeout, backoff_min, backoff_max;
	char *token;                  /* auth: the token for Authorization */
	int authing;                  /* an authenticate request is in flight */
	char *auth_error;             /* logged once until auth succeeds */
	struct etcd_req_list active, queued, auth_wait, grave;
	LIST_HEAD(, etcd_sock) socks;
	int pumping;                  /* inside etcd_pump: free into grave */
	unsigned rand_state;
};

/* The current endpoint answered (ok) or not (etcd.c): one step of the state machine. */
void etcd_conn_event(struct etcd_client *c, int endpoint, int ok, const char *why);
/* After curl ran: finished transfers, then the streams' objects (etcd_req.c). */
void etcd_pump(struct etcd_client *c);

/* etcd refused our token (msg, code say so): forget it, so that the next request
 * authenticates again; 1 if so (etcd_req.c). */
int etcd_token_refused(struct etcd_client *c, const char *msg, int code);

/* Allocates a request for path with body (taken over). timeout 0: none. */
struct etcd_req *etcd_req_new(struct etcd_client *c, const char *path, char *body,
			      double timeout);
/* Sends it (now, or once the backoff or authentication allows). */
void etcd_req_submit(struct etcd_req *r);
/* Drops it wherever it is; no callback. */
void etcd_req_free(struct etcd_req *r);

/* Helpers shared by the operation files (etcd_ops.c). */
char *etcd_json_body(json_object *o);  /* serialises and puts o */
void etcd_json_add_b64(json_object *o, const char *field, const void *data, size_t len);
void etcd_json_add_i64(json_object *o, const char *field, int64_t v);
int64_t etcd_json_i64(json_object *o, const char *field);
json_object *etcd_json_get(json_object *o, const char *field);
/* Fills kv from a JSON kv (base64 decoded into malloc'd strings kept in keep[0..1]). */
void etcd_kv_from_json(json_object *o, struct etcd_kv *kv, char **keep);
/* A key (and its prefix end, with ETCD_PREFIX) into o's "key" and "range_end". */
void etcd_json_add_key(json_object *o, const char *key, int flags);
/* A unary operation whose answer goes to cb as a struct etcd_result (etcd_ops.c). */
struct etcd_req *etcd_op_start(struct etcd_client *c, const char *path, json_object *body,
			       etcd_cb cb, void *arg);
unsigned etcd_rand(struct etcd_client *c);

#endif
