/* etcd_curl.c — libcurl, loaded with dlopen() the first time an etcd client is made.
 * The emperor and every vassal master link the etcd client, but few of them use it:
 * linked, libcurl and the TLS, HTTP/2, SSH, LDAP and Kerberos libraries it pulls in
 * cost every master's exec about 10 ms of CPU (38 shared libraries instead of 6), a
 * thousand vassals 10 s. Loaded on demand, only an emperor with --etcd and a master
 * with legions pay it. */
#include <dlfcn.h>
#include <stdio.h>

#include "etcd_internal.h"

struct etcd_curl_api etcd_curl;

static const char *const libnames[] = { "libcurl.so.4", "libcurl-gnutls.so.4", NULL };

/* Each function the client calls, by name, and where its pointer goes. */
#define SYM(name, field) { name, (void **)&etcd_curl.field }
static const struct { const char *name; void **slot; } symbols[] = {
	SYM("curl_global_init", global_init), SYM("curl_easy_init", easy_init),
	SYM("curl_easy_setopt", easy_setopt), SYM("curl_easy_getinfo", easy_getinfo),
	SYM("curl_easy_cleanup", easy_cleanup), SYM("curl_easy_strerror", easy_strerror),
	SYM("curl_multi_init", multi_init), SYM("curl_multi_setopt", multi_setopt),
	SYM("curl_multi_add_handle", multi_add_handle),
	SYM("curl_multi_remove_handle", multi_remove_handle),
	SYM("curl_multi_assign", multi_assign), SYM("curl_multi_cleanup", multi_cleanup),
	SYM("curl_multi_info_read", multi_info_read),
	SYM("curl_multi_socket_action", multi_socket_action),
	SYM("curl_slist_append", slist_append), SYM("curl_slist_free_all", slist_free_all),
};

int etcd_curl_load(char *why, size_t len)
{
	static void *lib;
	const char *err = NULL;

	if (lib)
		return 0;
	for (size_t i = 0; !lib && libnames[i]; i++)
		if (!(lib = dlopen(libnames[i], RTLD_NOW | RTLD_LOCAL)))
			err = dlerror();
	if (!lib) {
		snprintf(why, len, "cannot load libcurl (Debian package libcurl4): %s",
			 err ? err : "?");
		return -1;
	}
	for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++)
		if (!(*symbols[i].slot = dlsym(lib, symbols[i].name))) {
			snprintf(why, len, "libcurl has no %s", symbols[i].name);
			dlclose(lib);
			lib = NULL;
			return -1;
		}
	return 0;
}
