/* scan.h — emperor/scan.c: reads the watched directory and reconciles the vassal table
 * with it (new, touched, changed, removed, renamed files). */
#ifndef EMPEROR_SCAN_H
#define EMPEROR_SCAN_H

#include <stdbool.h>

struct emperor;
struct file_id;

void scan_run(struct emperor *e);
/* Starts a new record taken from the start queue (or waits for its predecessor). */
struct vassal;
void scan_start_new(struct vassal *v);
bool scan_is_candidate(const char *file);
/* 0 for a regular file (identity filled, with a hash of its content if asked), 1 for
 * anything else, -1 if gone. */
int scan_file_id(int dirfd, const char *file, struct file_id *id, bool with_hash);

#endif
