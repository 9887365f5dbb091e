/* version.h — the project's version, shown by --version. */
#ifndef EMPEROR_VERSION_H
#define EMPEROR_VERSION_H
#define EMPEROR_VERSION "0.1.0"

/* What this build has, for --version and emperor_build_info: the etcd client (libcurl,
 * json-c), cgroup v2 per vassal, tyrant mode, the status page and JSON logs are always
 * built in (their libraries are required); a sanitizer build says so. Whether cgroups
 * can be used is known at run time only (the emperor logs it at start). */
#if defined(__SANITIZE_ADDRESS__)
#define EMPEROR_FEATURES_SAN " asan"
#else
#define EMPEROR_FEATURES_SAN ""
#endif
#define EMPEROR_FEATURES "etcd cgroup-v2 tyrant status-page json-log" EMPEROR_FEATURES_SAN
#endif
