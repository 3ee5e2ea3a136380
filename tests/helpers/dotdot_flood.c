/* dotdot_flood: a walk the kernel makes in milliseconds and a supervisor
 * walking by hand made in a minute (tests/test_stall.py).
 *
 *   dotdot_flood DIR DEPTH LINKS SECONDS [THREADS]
 *
 * Builds DIR/d/d/.../d (DEPTH deep), DIR/deep -> d/.../d, and at the bottom
 * L -> "../" x M then "d/" x M (M = min(DEPTH - 1, 819): up M levels and back
 * to the same directory). One thread (or THREADS) loops openat2(DIR, "/deep/L/.../L/x",
 * O_PATH, RESOLVE_IN_ROOT), LINKS links, each '..' of which is checked below
 * the scope; a second process of the program (the bystander) loops an open
 * and a stat for SECONDS. Prints "calls=N" (the looping threads' calls
 * done), "result=ok|ENAME" (the first), "bystander=N" (its rounds) and
 * "worst_ms=T" (its longest round). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int scope;
static char path[48 * 1024];
static volatile long calls;
static volatile int first_err = -1;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void build(const char *dir, int depth, int links)
{
    mkdir(dir, 0755);
    scope = open(dir, O_PATH | O_DIRECTORY);
    int cur = dup(scope);
    for (int i = 0; i < depth; i++) {
        mkdirat(cur, "d", 0755);
        int next = openat(cur, "d", O_PATH | O_DIRECTORY);
        if (next < 0) {
            perror("d");
            exit(1);
        }
        close(cur);
        cur = next;
    }
    int m = depth - 1 < 819 ? depth - 1 : 819;
    static char body[4096], deep[2 * 4096];
    for (int i = 0; i < m; i++)
        strcat(body, "../");
    for (int i = 0; i < m; i++)
        strcat(body, i == m - 1 ? "d" : "d/");
    unlinkat(cur, "L", 0);
    mkdirat(cur, "x", 0755);
    if (symlinkat(body, cur, "L") < 0)
        perror("L");
    for (int i = 0; i < depth; i++)
        strcat(deep, i == depth - 1 ? "d" : "d/");
    unlinkat(scope, "deep", 0);
    if (symlinkat(deep, scope, "deep") < 0)
        perror("deep");
    close(cur);
    strcpy(path, "/deep/");
    for (int i = 0; i < links; i++)
        strcat(path, "L/");
    strcat(path, "x");
}

static void *loop(void *arg)
{
    (void)arg;
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    for (;;) {
        int fd = (int)syscall(SYS_openat2, scope, path, &how, sizeof(how));
        if (first_err < 0)
            first_err = fd >= 0 ? 0 : errno;
        if (fd >= 0)
            close(fd);
        calls++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: dotdot_flood DIR DEPTH LINKS SECONDS [THREADS]\n");
        return 2;
    }
    build(argv[1], atoi(argv[2]), atoi(argv[3]));
    double seconds = atof(argv[4]);
    int out[2];
    if (pipe(out) < 0)
        return 1;
    pid_t bystander = fork();
    if (bystander == 0) {
        double worst = 0, end = now() + seconds;
        long rounds = 0;
        struct stat st;
        usleep(100000);                          /* the loop is under way */
        while (now() < end) {
            double t0 = now();
            int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
            stat("/etc/passwd", &st);
            double took = now() - t0;
            if (took > worst)
                worst = took;
            rounds++;
        }
        dprintf(out[1], "bystander=%ld\nworst_ms=%.0f\n", rounds, worst * 1000);
        _exit(0);
    }
    for (int i = argc == 6 ? atoi(argv[5]) : 1; i > 0; i--) {
        pthread_t t;
        pthread_create(&t, NULL, loop, NULL);
    }
    waitpid(bystander, NULL, 0);
    char buf[128];
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    const char *name = first_err > 0 ? strerrorname_np(first_err) : NULL;
    printf("calls=%ld\nresult=%s\n%s", calls, first_err == 0 ? "ok" : name ? name : "none",
           buf);
    fflush(stdout);
    _exit(0);                                    /* the looping thread ends with us */
}
