/* Shared by the workload programs of benchmarks/run.py.
 *
 * Each program makes one syscall in a loop: a short untimed warm-up, then
 * WORKLOAD_CALLS calls timed with clock_gettime(CLOCK_MONOTONIC) around the
 * loop only, so process start-up (and yama-run's own start-up) never enters
 * the per-call figure. The result is one line on stdout:
 *
 *   RESULT {"workload": "...", "calls": N, "ns_per_call": X, "ok": A, "fail": B, "errno": "E"}
 *
 * ok counts calls that returned what the program expects of a success, fail
 * the others, errno is the symbolic errno of the last failure ("" if none).
 * run.py decides which outcome is right for each variant. */
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline long bench_arg(int argc, char **argv, int i, const char *what)
{
    if (argc <= i) {
        fprintf(stderr, "usage: %s CALLS [ARG]: missing %s\n", argv[0], what);
        exit(2);
    }
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < 0) {
        fprintf(stderr, "%s: bad %s: %s\n", argv[0], what, argv[i]);
        exit(2);
    }
    return v;
}

/* Untimed warm-up: a twentieth of the calls, at least 10, at most 20000. */
static inline long bench_warmup(long calls)
{
    long w = calls / 20;
    return w < 10 ? 10 : w > 20000 ? 20000 : w;
}

static inline void bench_report(const char *workload, long calls, double ns,
                                long ok, long fail, int last_errno)
{
    const char *name = last_errno ? strerrorname_np(last_errno) : "";
    printf("RESULT {\"workload\": \"%s\", \"calls\": %ld, \"ns_per_call\": %.3f, "
           "\"ok\": %ld, \"fail\": %ld, \"errno\": \"%s\"}\n",
           workload, calls, calls ? ns / (double)calls : 0.0, ok, fail, name ? name : "?");
    fflush(stdout);
}

#endif
