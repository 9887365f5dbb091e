/* etcd_ops.c — the etcd client's unary operations: the JSON bodies of range, put,
 * delete, txn and the lease calls for etcd's gateway (keys and values base64, 64-bit
 * numbers as strings), and the answers turned into a struct etcd_result. */
#include "etcd_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- JSON helpers ------------------------------------------------------------------------ */

char *etcd_json_body(json_object *o)
{
	char *s = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;

	json_object_put(o);
	return s;
}

void etcd_json_add_b64(json_object *o, const char *field, const void *data, size_t len)
{
	char *b = etcd_b64_encode(data, len);

	json_object_object_add(o, field, json_object_new_string(b ? b : ""));
	free(b);
}

void etcd_json_add_i64(json_object *o, const char *field, int64_t v)
{
	char num[32];

	snprintf(num, sizeof num, "%" PRId64, v);
	json_object_object_add(o, field, json_object_new_string(num));
}

json_object *etcd_json_get(json_object *o, const char *field)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	return json_object_object_get_ex(o, field, &v) ? v : NULL;
}

int64_t etcd_json_i64(json_object *o, const char *field)
{
	json_object *v = etcd_json_get(o, field);

	return v ? json_object_get_int64(v) : 0;
}

void etcd_json_add_key(json_object *o, const char *key, int flags)
{
	size_t len = strlen(key), end_len;
	char *end;

	if (len == 0 && (flags & ETCD_PREFIX)) {
		etcd_json_add_b64(o, "key", "", 1); /* "\0": from the first key */
	} else {
		etcd_json_add_b64(o, "key", key, len);
	}
	if (!(flags & ETCD_PREFIX))
		return;
	end = etcd_prefix_end(key, len, &end_len);
	if (end)
		etcd_json_add_b64(o, "range_end", end, end_len);
	free(end);
}

static char *b64_field(json_object *o, const char *field, size_t *len)
{
	const char *text = json_object_get_string(etcd_json_get(o, field));
	char *out = text ? etcd_b64_decode(text, strlen(text), len) : NULL;

	if (!out) {
		*len = 0;
		out = strdup("");
	}
	return out;
}

void etcd_kv_from_json(json_object *o, struct etcd_kv *kv, char **keep)
{
	keep[0] = b64_field(o, "key", &kv->key_len);
	keep[1] = b64_field(o, "value", &kv->value_len);
	kv->key = keep[0] ? keep[0] : "";
	kv->value = keep[1] ? keep[1] : "";
	kv->create_revision = etcd_json_i64(o, "create_revision");
	kv->mod_revision = etcd_json_i64(o, "mod_revision");
	kv->version = etcd_json_i64(o, "version");
	kv->lease = etcd_json_i64(o, "lease");
}

/* ---- answers ------------------------------------------------------------------------------ */

struct kv_set {
	struct etcd_kv *kvs;
	char **keep;
	size_t n, cap;
};

static void kv_set_add(struct kv_set *s, json_object *arr)
{
	size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;

	if (s->n + n > s->cap) {
		size_t cap = s->n + n;
		struct etcd_kv *kvs = realloc(s->kvs, cap * sizeof *kvs);
		char **keep = kvs ? realloc(s->keep, cap * 2 * sizeof *keep) : NULL;
		if (kvs)
			s->kvs = kvs;
		if (!keep)
			return;
		s->keep = keep;
		s->cap = cap;
	}
	for (size_t i = 0; i < n; i++, s->n++)
		etcd_kv_from_json(json_object_array_get_idx(arr, i), &s->kvs[s->n], &s->keep[2 * s->n]);
}

static void kv_set_free(struct kv_set *s)
{
	for (size_t i = 0; i < 2 * s->n; i++)
		free(s->keep[i]);
	free(s->keep);
	free(s->kvs);
}

static void txn_responses(json_object *json, struct kv_set *kvs, struct etcd_result *res)
{
	json_object *arr = etcd_json_get(json, "responses");
	size_t n = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *one = json_object_array_get_idx(arr, i), *range, *del;
		if ((range = etcd_json_get(one, "response_range"))) {
			kv_set_add(kvs, etcd_json_get(range, "kvs"));
			res->count += etcd_json_i64(range, "count");
		}
		if ((del = etcd_json_get(one, "response_delete_range")))
			res->count += etcd_json_i64(del, "deleted");
	}
}

static void op_done(struct etcd_req *r, json_object *json, const char *err, int code)
{
	struct etcd_result res = { .error = err, .code = code };
	struct kv_set kvs = { 0 };
	json_object *body = etcd_json_get(json, "result") ? etcd_json_get(json, "result") : json;

	if (!err) {
		res.revision = etcd_json_i64(etcd_json_get(body, "header"), "revision");
		kv_set_add(&kvs, etcd_json_get(body, "kvs"));
		res.count = etcd_json_i64(body, "count") + etcd_json_i64(body, "deleted");
		res.succeeded = json_object_get_boolean(etcd_json_get(body, "succeeded"));
		res.lease_id = etcd_json_i64(body, "ID");
		res.ttl = etcd_json_i64(body, "TTL");
		txn_responses(body, &kvs, &res);
		res.kvs = kvs.kvs;
		res.n_kvs = kvs.n;
	}
	if (r->user_cb)
		r->user_cb(r->user_arg, &res);
	kv_set_free(&kvs);
}

/* ---- operations ---------------------------------------------------------------------------- */

struct etcd_req *etcd_op_start(struct etcd_client *c, const char *path, json_object *body,
				 etcd_cb cb, void *arg)
{
	struct etcd_req *r = etcd_req_new(c, path, etcd_json_body(body), c->request_timeout);

	if (!r)
		return NULL;
	r->done = op_done;
	r->user_cb = cb;
	r->user_arg = arg;
	etcd_req_submit(r);
	return r;
}

static json_object *range_body(const char *key, int flags, int64_t revision)
{
	json_object *o = json_object_new_object();

	etcd_json_add_key(o, key, flags);
	if (revision > 0)
		etcd_json_add_i64(o, "revision", revision);
	if (flags & ETCD_KEYS_ONLY)
		json_object_object_add(o, "keys_only", json_object_new_boolean(1));
	return o;
}

static json_object *put_body(const char *key, const void *value, size_t len, int64_t lease)
{
	json_object *o = json_object_new_object();

	etcd_json_add_key(o, key, 0);
	etcd_json_add_b64(o, "value", value, len);
	if (lease)
		etcd_json_add_i64(o, "lease", lease);
	return o;
}

static json_object *delete_body(const char *key, int flags)
{
	json_object *o = json_object_new_object();

	etcd_json_add_key(o, key, flags);
	return o;
}

struct etcd_req *etcd_range(struct etcd_client *c, const char *key, int flags, int64_t revision,
			    etcd_cb cb, void *arg)
{
	return etcd_op_start(c, "/v3/kv/range", range_body(key, flags, revision), cb, arg);
}

struct etcd_req *etcd_put(struct etcd_client *c, const char *key, const void *value, size_t len,
			  int64_t lease, etcd_cb cb, void *arg)
{
	return etcd_op_start(c, "/v3/kv/put", put_body(key, value, len, lease), cb, arg);
}

struct etcd_req *etcd_delete(struct etcd_client *c, const char *key, int flags, etcd_cb cb,
			     void *arg)
{
	return etcd_op_start(c, "/v3/kv/deleterange", delete_body(key, flags), cb, arg);
}

static struct etcd_req *lease_op(struct etcd_client *c, const char *path, const char *field,
				 int64_t v, etcd_cb cb, void *arg)
{
	json_object *o = json_object_new_object();

	etcd_json_add_i64(o, field, v);
	return etcd_op_start(c, path, o, cb, arg);
}

struct etcd_req *etcd_lease_grant(struct etcd_client *c, int64_t ttl, etcd_cb cb, void *arg)
{
	return lease_op(c, "/v3/lease/grant", "TTL", ttl, cb, arg);
}

struct etcd_req *etcd_lease_keepalive(struct etcd_client *c, int64_t id, etcd_cb cb, void *arg)
{
	return lease_op(c, "/v3/lease/keepalive", "ID", id, cb, arg);
}

struct etcd_req *etcd_lease_revoke(struct etcd_client *c, int64_t id, etcd_cb cb, void *arg)
{
	return lease_op(c, "/v3/lease/revoke", "ID", id, cb, arg);
}

/* ---- transactions --------------------------------------------------------------------------- */

static json_object *cmp_json(const struct etcd_cmp *k)
{
	static const char *const targets[] = { "VERSION", "CREATE", "MOD", "VALUE", "LEASE" };
	static const char *const fields[] = { "version", "create_revision", "mod_revision",
					      "value", "lease" };
	static const char *const results[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
	json_object *o = json_object_new_object();

	etcd_json_add_key(o, k->key, 0);
	json_object_object_add(o, "target", json_object_new_string(targets[k->target]));
	json_object_object_add(o, "result", json_object_new_string(results[k->result]));
	if (k->target == ETCD_CMP_VALUE)
		etcd_json_add_b64(o, "value", k->value ? k->value : "", k->value ? strlen(k->value) : 0);
	else
		etcd_json_add_i64(o, fields[k->target], k->number);
	return o;
}

static json_object *ops_json(const struct etcd_op *ops, int n)
{
	json_object *arr = json_object_new_array();

	for (int i = 0; i < n; i++) {
		const struct etcd_op *op = &ops[i];
		json_object *one = json_object_new_object();
		if (op->type == ETCD_OP_PUT)
			json_object_object_add(one, "request_put",
					       put_body(op->key, op->value, op->value_len, op->lease));
		else if (op->type == ETCD_OP_DELETE)
			json_object_object_add(one, "request_delete_range", delete_body(op->key, op->flags));
		else
			json_object_object_add(one, "request_range", range_body(op->key, op->flags, 0));
		json_object_array_add(arr, one);
	}
	return arr;
}

struct etcd_req *etcd_txn(struct etcd_client *c, const struct etcd_txn *t, etcd_cb cb, void *arg)
{
	json_object *o = json_object_new_object(), *cmp = json_object_new_array();

	for (int i = 0; i < t->n_cmp; i++)
		json_object_array_add(cmp, cmp_json(&t->cmp[i]));
	json_object_object_add(o, "compare", cmp);
	json_object_object_add(o, "success", ops_json(t->success, t->n_success));
	json_object_object_add(o, "failure", ops_json(t->failure, t->n_failure));
	return etcd_op_start(c, "/v3/kv/txn", o, cb, arg);
}
