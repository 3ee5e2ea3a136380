/* deep_ancestry DEPTH THREADS SECONDS
 * Builds a chain of DEPTH processes, each the child of the one before, then
 * THREADS threads of the root call process_vm_readv on the deepest for
 * SECONDS (allowed at ptrace scope 1: a descendant), while a bystander
 * process, forked from the root, stats "/" in a loop. Prints
 * "deepest_read=OK|ERRNO bystander=CALLS worst_ms=MS": the deepest read
 * once before the load, the bystander's number of calls and its slowest. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t deepest, first_link;
static double until;
static char word[8] = "deep";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int read_deepest(void)
{
    char got[8];
    struct iovec l = {got, sizeof got}, r = {word, sizeof word};
    return process_vm_readv(deepest, &l, 1, &r, 1, 0) == sizeof got ? 0 : errno;
}

static void *hammer(void *unused)
{
    while (now() < until)
        read_deepest();
    return unused;
}

/* The chain: each level forks the next and waits for the end (its parent's
 * death, by PR_SET_PDEATHSIG); the last tells the root its pid. */
static pid_t build(int depth)
{
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    pid_t root = getpid();
    for (int level = 0; level < depth; level++) {
        pid_t child = fork();
        if (child < 0)
            exit(2);
        if (child > 0) {
            if (getpid() == root) {
                first_link = child;
                break;
            }
            pause();                    /* until SIGKILL from the parent's death */
            _exit(0);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (level == depth - 1) {
            pid_t me = getpid();
            if (write(p[1], &me, sizeof me) != sizeof me)
                _exit(2);
            pause();
            _exit(0);
        }
    }
    pid_t last = 0;
    if (read(p[0], &last, sizeof last) != sizeof last)
        exit(2);
    return last;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int depth = atoi(argv[1]), threads = atoi(argv[2]);
    double seconds = atof(argv[3]);
    deepest = build(depth);
    int first = read_deepest();
    int out[2];
    if (pipe(out) < 0)
        return 2;
    until = now() + seconds;
    pid_t bystander = fork();
    if (bystander == 0) {
        long calls = 0;
        double worst = 0;
        struct stat st;
        while (now() < until) {
            double t0 = now();
            stat("/", &st);
            double d = now() - t0;
            worst = d > worst ? d : worst;
            calls++;
        }
        dprintf(out[1], "bystander=%ld worst_ms=%.0f\n", calls, worst * 1000);
        _exit(0);
    }
    pthread_t t[1024];
    threads = threads > 1024 ? 1024 : threads;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    waitpid(bystander, NULL, 0);
    char said[128] = "";
    ssize_t n = read(out[0], said, sizeof said - 1);
    said[n > 0 ? n : 0] = '\0';
    printf("deepest_read=%s %s", first ? strerror(first) : "OK", said);
    fflush(stdout);
    kill(first_link, SIGKILL);          /* the rest follow: their parent-death signal */
    return 0;
}
