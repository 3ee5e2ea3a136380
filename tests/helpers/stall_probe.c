/* stall_probe: a bystander that measures how long the supervisor keeps it
 * waiting, and attackers that try to make it wait (issue 13 items 3 and 4).
 *
 *   stall_probe bystander STOPFILE
 *       until STOPFILE exists (at most 100 s), make routed calls back to
 *       back: prctl(PR_SET_PTRACER, 0) (answered by the supervisor's Python),
 *       an open and close of STOPFILE's directory and a stat of it (the path
 *       engine's); print "WORST_US n" (the longest single call) and "CALLS n".
 *   stall_probe uffd N SECONDS [user]
 *       (issue 13 item 2) N threads each stat() a path that lies in a page
 *       registered with userfaultfd (UFFD_USER_MODE_ONLY with "user") whose
 *       faults are never answered; after SECONDS print "ANSWERED n" (calls
 *       that returned), "E<name> n" per errno and "BLOCKED n", and exit
 *       (which closes the userfaultfd: a fault waiting on it fails).
 *   stall_probe fuse N SECONDS DIR
 *       (issue 13 item 2's kin) in a mount namespace of its own, mount FUSE
 *       on DIR/mnt with a /dev/fuse descriptor nobody reads (not even the
 *       INIT request), then N threads each stat() DIR/mnt/x; the same counts
 *       as uffd after SECONDS, and exit (the connection is then aborted).
 *   stall_probe fifos N SECONDS DIR
 *       (issue 13 item 5) N threads of this process each open DIR/fifo (a
 *       FIFO nobody writes) for reading; after SECONDS print the same counts
 *       as uffd, and exit.
 *   stall_probe fifo-procs N SECONDS DIR
 *       the same from N processes, one open each; they are then killed.
 *   stall_probe threads N SECONDS
 *       (meant to run as pid 1 of a pid namespace of its own) start N idle
 *       threads, print "THREADS n", then for SECONDS alternate ptrace attach
 *       of one of its own threads and PR_SET_PTRACER naming another; print
 *       "CALLS n".
 *   stall_probe declare N
 *       N children each declare PR_SET_PTRACER naming this process and stay
 *       alive; print "DECLARED ok ENOMEM other"; the children are then
 *       released and reaped, and a last declaration from this process tells
 *       whether the supervisor still answers: "AFTER 0|errno".
 *   stall_probe redeclare N
 *       N declarations in a row from this one process (each replaces the
 *       last); print "REDECLARED ok other".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PR_SET_PTRACER_ 0x59616d61

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds)
{
    struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const char *errname(int e)
{
    const char *name = strerrorname_np(e);
    return name ? name : "E?";
}

static int bystander(const char *stopfile)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", stopfile);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    double end = now() + 100, worst = 0;
    long calls = 0;
    while (now() < end && (calls % 64 || access(stopfile, F_OK) != 0)) {
        double t0 = now();
        switch (calls % 3) {
        case 0:
            prctl(PR_SET_PTRACER_, 0, 0, 0, 0);
            break;
        case 1: {
            int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
            break;
        }
        default: {
            struct stat st;
            stat(dir, &st);
        }
        }
        double took = now() - t0;
        if (took > worst)
            worst = took;
        calls++;
    }
    printf("WORST_US %ld\nCALLS %ld\n", (long)(worst * 1e6), calls);
    return 0;
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static pid_t tids[4];
static void *report(void *arg)
{
    tids[(long)arg] = (pid_t)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static int threads(int n, double seconds)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16384);
    pthread_t t;
    for (long k = 0; k < 2; k++)
        pthread_create(&t, &attr, report, (void *)k);
    int made = 2;
    for (; made < n; made++)
        if (pthread_create(&t, &attr, idle, NULL) != 0)
            break;
    while (!tids[0] || !tids[1])
        usleep(1000);
    printf("THREADS %d\n", made);
    fflush(stdout);
    double end = now() + seconds;
    long calls = 0;
    while (now() < end) {
        ptrace(PTRACE_ATTACH, tids[0], 0, 0);          /* its own: EPERM from the kernel */
        prctl(PR_SET_PTRACER_, (unsigned long)tids[1], 0, 0, 0);
        calls += 2;
    }
    printf("CALLS %ld\n", calls);
    fflush(stdout);
    _exit(0);
}

static int declare(int n)
{
    int go[2];
    if (pipe(go) < 0)
        return 2;
    int ok = 0, nomem = 0, other = 0;
    pid_t *kids = calloc((size_t)n, sizeof(*kids));
    int *res = calloc((size_t)n, sizeof(*res));
    int report[2];
    if (pipe(report) < 0)
        return 2;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            int rc = prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0) == 0 ? 0 : errno;
            if (write(report[1], &rc, sizeof(rc)) != sizeof(rc))
                _exit(2);
            char c;
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        kids[i] = pid;
        if (pid < 0)
            other++;
    }
    for (int i = 0; i < n; i++) {
        if (kids[i] <= 0)
            continue;
        int rc;
        if (read(report[0], &rc, sizeof(rc)) != sizeof(rc))
            rc = -1;
        if (rc == 0)
            ok++;
        else if (rc == ENOMEM)
            nomem++;
        else
            other++;
    }
    printf("DECLARED %d %d %d\n", ok, nomem, other);
    fflush(stdout);
    close(go[1]);                      /* every child reads EOF and exits */
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    (void)res;
    int rc = prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0);
    printf("AFTER %s\n", rc == 0 ? "0" : errname(errno));
    return 0;
}

static int redeclare(int n)
{
    int ok = 0, other = 0;
    for (int i = 0; i < n; i++) {
        if (prctl(PR_SET_PTRACER_, (unsigned long)getppid(), 0, 0, 0) == 0)
            ok++;
        else
            other++;
    }
    printf("REDECLARED %d %d\n", ok, other);
    return 0;
}

/* ---- calls that stay blocked: counted by how they end ---------------------- */

#define MAX_ERRNO 256
static volatile int outcome[MAX_ERRNO + 1];   /* [0]: success; [e]: errno e */
static volatile int answered;

static void count(int err)
{
    __sync_fetch_and_add(&outcome[err > 0 && err <= MAX_ERRNO ? err : MAX_ERRNO], 1);
    __sync_fetch_and_add(&answered, 1);
}

static void print_outcome(int n)
{
    printf("ANSWERED %d\n", answered);
    for (int e = 0; e <= MAX_ERRNO; e++)
        if (outcome[e])
            printf("%s %d\n", e ? errname(e) : "OK", outcome[e]);
    printf("BLOCKED %d\n", n - answered);
    fflush(stdout);
}

static void start_threads(int n, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16384);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    for (int i = 0; i < n; i++)
        if (pthread_create(&t, &attr, fn, arg) != 0)
            count(EAGAIN);                    /* never started: counted as answered */
}

static void *stat_there(void *path)
{
    struct stat st;
    count(stat((const char *)path, &st) == 0 ? 0 : errno);
    return NULL;
}

static int uffd(int n, double seconds, int user_only)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | (user_only ? UFFD_USER_MODE_ONLY : 0));
    if (fd < 0) {
        printf("UFFD %s\n", errname(errno));
        return 0;
    }
    struct uffdio_api api = { .api = UFFD_API };
    long page = sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    struct uffdio_register reg = { .range = { (uintptr_t)mem, (uint64_t)page },
                                   .mode = UFFDIO_REGISTER_MODE_MISSING };
    if (ioctl(fd, UFFDIO_API, &api) < 0 || mem == MAP_FAILED ||
        ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
        printf("UFFD %s\n", errname(errno));
        return 0;
    }
    printf("UFFD ok\n");
    start_threads(n, stat_there, mem);        /* the path is in the page never filled */
    sleep_for(seconds);
    print_outcome(n);
    _exit(0);
}

static int fuse(int n, double seconds, const char *dir)
{
    static char mnt[4096], path[4200];
    char opts[128];
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    snprintf(path, sizeof(path), "%s/x", mnt);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        printf("FUSE unshare %s\n", errname(errno));
        return 0;
    }
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0 || (mkdir(mnt, 0755) < 0 && errno != EEXIST)) {
        printf("FUSE open %s\n", errname(errno));
        return 0;
    }
    snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=%d,group_id=%d", fd,
             (int)getuid(), (int)getgid());
    if (mount("stall", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
        printf("FUSE mount %s\n", errname(errno));
        return 0;
    }
    printf("FUSE ok\n");
    start_threads(n, stat_there, path);
    sleep_for(seconds);
    print_outcome(n);
    _exit(0);
}

static void *open_fifo(void *path)
{
    int fd = open((const char *)path, O_RDONLY | O_CLOEXEC);
    count(fd >= 0 ? 0 : errno);
    return NULL;
}

static char *make_fifo(const char *dir)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/fifo", dir);
    if (mkfifo(path, 0666) < 0 && errno != EEXIST) {
        printf("MKFIFO %s\n", errname(errno));
        exit(0);
    }
    return path;
}

static int fifos(int n, double seconds, const char *dir)
{
    start_threads(n, open_fifo, make_fifo(dir));
    sleep_for(seconds);
    print_outcome(n);
    _exit(0);
}

static int fifo_procs(int n, double seconds, const char *dir)
{
    char *path = make_fifo(dir);
    int report[2];
    if (pipe(report) < 0)
        return 2;
    fcntl(report[0], F_SETFL, O_NONBLOCK);
    pid_t *kids = calloc((size_t)n, sizeof(*kids));
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            int err = fd >= 0 ? 0 : errno;
            if (write(report[1], &err, sizeof(err)) != sizeof(err))
                _exit(2);
            _exit(0);
        }
        if (kids[i] < 0)
            count(EAGAIN);
    }
    double end = now() + seconds;
    while (now() < end) {
        int err;
        while (read(report[0], &err, sizeof(err)) == sizeof(err))
            count(err);
        usleep(20000);
    }
    print_outcome(n);
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(120);
    if (argc == 3 && !strcmp(argv[1], "bystander"))
        return bystander(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "threads"))
        return threads(atoi(argv[2]), atof(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "declare"))
        return declare(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "redeclare"))
        return redeclare(atoi(argv[2]));
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "uffd"))
        return uffd(atoi(argv[2]), atof(argv[3]), argc == 5 && !strcmp(argv[4], "user"));
    if (argc == 5 && !strcmp(argv[1], "fuse"))
        return fuse(atoi(argv[2]), atof(argv[3]), argv[4]);
    if (argc == 5 && !strcmp(argv[1], "fifos"))
        return fifos(atoi(argv[2]), atof(argv[3]), argv[4]);
    if (argc == 5 && !strcmp(argv[1], "fifo-procs"))
        return fifo_procs(atoi(argv[2]), atof(argv[3]), argv[4]);
    fprintf(stderr, "usage: stall_probe bystander STOPFILE | threads N S | declare N | "
            "redeclare N | uffd N S [user] | fuse N S DIR | fifos N S DIR | fifo-procs N S DIR\n");
    return 2;
}
