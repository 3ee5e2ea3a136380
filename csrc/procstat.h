/* procstat.c: /proc's small text files, and the fields of a .../stat line.
 * In the extension and in the launcher (the front reads its program's state). */
#ifndef YAMA_RUN_PROCSTAT_H
#define YAMA_RUN_PROCSTAT_H

#include <sys/types.h>

/* A small text file (of /proc) into buf, NUL-terminated: its length, or <= 0
 * (errno set on -1). */
ssize_t yr_read_text(const char *path, char *buf, size_t size);

/* Fields of a /proc/.../stat line, numbered as proc_pid_stat(5) numbers them:
 * want[] (n of them, ascending, each > 2) into out[]; field 3, the state, is
 * its letter's code. 0, or -1 when the line lacks one. */
int yr_stat_fields(const char *line, const int *want, int n, long long *out);

/* The state letter (R, S, T, t...) of the task whose stat file is path, 0 if
 * it cannot be read. */
char yr_stat_state(const char *path);

#endif
