/* mem_probe: open /proc/PID/mem of processes in several relations, in every
 * path form, and print one line per attempt: "FORM RESULT", RESULT being 0
 * when the descriptor reads the target's own marker, MISMATCH when it reads
 * some other process's memory, or the errno name of the open or the read.
 *
 *   mem_probe
 *
 * Processes: P (this one) forks target A (two threads) and actor B; B forks
 * its child C (two threads). Each process stores its own pid in `marker`, so a
 * read at &marker through an fd shows whose memory it is (all are forks of one
 * image: &marker is the same address everywhere).
 * Forms, all opened O_RDWR by B (or by B's second thread where it says so):
 *   self, thread-self, self-pid, self-task, self-from-thread, thread-self-from-thread
 *   child, child-task, child-thread        (C: B's descendant)
 *   sibling, sibling-task, sibling-thread, sibling-dirfd, sibling-taskdirfd,
 *   sibling-openat2, sibling-i386, sibling-via-symlink (a link in /tmp),
 *   sibling-via-self-dotdot, sibling-via-proc-fd (/proc/self/fd/N/mem of an
 *   O_PATH /proc/A), sibling-via-cwd ("mem" from cwd /proc/A)
 *                                          (A: not B's descendant)
 *   parent                                 (P)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG 0x4d656d0000000000ULL       /* "Mem" + pid */

volatile uint64_t marker;

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void say(const char *form, const char *result)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "%s %s\n", form, result);
    if (write(1, line, (size_t)n) < 0) _exit(3);
}

/* Read the marker through fd (closed here) and compare with pid's. */
static const char *check(long fd, pid_t pid)
{
    if (fd < 0) return errname(errno);
    uint64_t got = 0;
    ssize_t n = pread((int)fd, &got, sizeof(got), (off_t)(uintptr_t)&marker);
    int e = errno;
    close((int)fd);
    if (n < 0) return errname(e);
    return n == sizeof(got) && got == (TAG | (uint64_t)pid) ? "0" : "MISMATCH";
}

static long open_path(const char *path)
{
    return syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
}

static void try_path(const char *form, const char *path, pid_t owner)
{
    say(form, check(open_path(path), owner));
}

/* A target process: it marks its memory, starts a second thread that
 * reports its tid through the pipe, and sleeps until killed. */
static void *sleeper(void *arg)
{
    int w = *(int *)arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (write(w, &tid, sizeof(tid)) != sizeof(tid)) _exit(2);
    for (;;) pause();
    return NULL;
}

static pid_t spawn_target(pid_t *thread)
{
    static int p[2];
    if (pipe(p) < 0) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        marker = TAG | (uint64_t)getpid();
        pthread_t t;
        pthread_create(&t, NULL, sleeper, &p[1]);
        for (;;) pause();
    }
    close(p[1]);
    if (read(p[0], thread, sizeof(*thread)) != sizeof(*thread)) *thread = 0;
    close(p[0]);
    return pid;
}

static long int80_open(const char *path)
{
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) { errno = ENOMEM; return -1; }
    snprintf(low, 4096, "%s", path);
    long ret, nr = 5;     /* i386 open */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"((long)(uintptr_t)low),
                     "c"((long)(O_RDWR | O_CLOEXEC)), "d"(0L)
                     : "memory", "r8", "r9", "r10", "r11");
    munmap(low, 4096);
    if (ret < 0) { errno = (int)-ret; return -1; }
    return ret;
}

struct from_thread { pid_t me; };

static void *thread_forms(void *arg)
{
    struct from_thread *f = arg;
    try_path("self-from-thread", "/proc/self/mem", f->me);
    try_path("thread-self-from-thread", "/proc/thread-self/mem", f->me);
    return NULL;
}

static void actor(pid_t parent, pid_t sib, pid_t sib_thread)
{
    pid_t me = getpid();
    char path[128];
    marker = TAG | (uint64_t)me;

    try_path("self", "/proc/self/mem", me);
    try_path("thread-self", "/proc/thread-self/mem", me);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)me);
    try_path("self-pid", path, me);
    snprintf(path, sizeof(path), "/proc/self/task/%d/mem", (int)me);
    try_path("self-task", path, me);
    struct from_thread f = {me};
    pthread_t t;
    pthread_create(&t, NULL, thread_forms, &f);
    pthread_join(t, NULL);

    pid_t child_thread;
    pid_t child = spawn_target(&child_thread);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)child);
    try_path("child", path, child);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", (int)child, (int)child);
    try_path("child-task", path, child);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", (int)child, (int)child_thread);
    try_path("child-thread", path, child);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    snprintf(path, sizeof(path), "/proc/%d/mem", (int)sib);
    try_path("sibling", path, sib);
    say("sibling-i386", check(int80_open(path), sib));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", (int)sib, (int)sib);
    try_path("sibling-task", path, sib);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/mem", (int)sib, (int)sib_thread);
    try_path("sibling-thread", path, sib);
    snprintf(path, sizeof(path), "/proc/%d", (int)sib);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    say("sibling-dirfd", check(syscall(SYS_openat, dfd, "mem", O_RDWR | O_CLOEXEC), sib));
    close(dfd);
    snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)sib, (int)sib_thread);
    dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    say("sibling-taskdirfd", check(syscall(SYS_openat, dfd, "mem", O_RDWR | O_CLOEXEC), sib));
    close(dfd);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)sib);
    struct open_how how = {.flags = O_RDWR | O_CLOEXEC};
    say("sibling-openat2", check(syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how)), sib));

    /* the same file reached in ways a path check could miss */
    char link[64];
    snprintf(link, sizeof(link), "/tmp/yr-mem-link-%d", (int)me);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)sib);
    unlink(link);
    if (symlink(path, link) == 0) {
        try_path("sibling-via-symlink", link, sib);
        unlink(link);
    } else {
        say("sibling-via-symlink", "NOLINK");
    }
    snprintf(path, sizeof(path), "/proc/self/../%d/mem", (int)sib);
    try_path("sibling-via-self-dotdot", path, sib);
    snprintf(path, sizeof(path), "/proc/%d", (int)sib);
    dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/self/fd/%d/mem", dfd);
    try_path("sibling-via-proc-fd", path, sib);
    close(dfd);
    int back = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/%d", (int)sib);
    if (chdir(path) == 0) {
        try_path("sibling-via-cwd", "mem", sib);
        if (fchdir(back) < 0) _exit(5);
    } else {
        say("sibling-via-cwd", "NOCHDIR");
    }
    close(back);

    snprintf(path, sizeof(path), "/proc/%d/mem", (int)parent);
    try_path("parent", path, parent);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    marker = TAG | (uint64_t)getpid();
    pid_t sib_thread;
    pid_t sib = spawn_target(&sib_thread);
    pid_t parent = getpid();
    pid_t b = fork();
    if (b == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        actor(parent, sib, sib_thread);
        _exit(0);
    }
    int st;
    waitpid(b, &st, 0);
    kill(sib, SIGKILL);
    waitpid(sib, NULL, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
