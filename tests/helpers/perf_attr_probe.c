/* perf_event_open's attr, which lies in the caller's memory, made to say one
 * thing to the supervisor and another to the kernel.
 *
 *   perf_attr_probe race-size PID N   N opens of a sigtrap event on PID while
 *                                     another thread flips attr.size between
 *                                     0x2000 (a size the kernel refuses) and
 *                                     the valid size
 *   perf_attr_probe race-map PID N    the same, flipping the attr's page
 *                                     between unreadable and readable
 *   perf_attr_probe size SIZE         one open with attr.size = SIZE (and a
 *                                     non-zero byte past the kernel's size when
 *                                     SIZE is larger) on a child of its own
 *   perf_attr_probe unmapped [FLAGS]  one open with attr on an unmapped page
 *                                     (and FLAGS: an unknown one is EINVAL first)
 *   perf_attr_probe swap MS           one counting event on a child of its own,
 *                                     while a thread, MS ms later, kills and
 *                                     reaps that child and makes another with
 *                                     its pid (clone3 set_tid: root only):
 *                                     "errno=NAME replaced=0|1"
 *
 * Prints "opened=K e2big=E eacces=A other=O" for the races (K: events the
 * call gave), "errno=NAME size=S" for the single calls (S: attr.size after
 * the call: the kernel writes its own size back on E2BIG). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct perf_event_attr *attr;     /* alone on its page */
static volatile int stop;

static const char *name(int e)
{
    switch (e) {
    case 0: return "0";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    default: return "OTHER";
    }
}

static void sigtrap_attr(void)
{
    memset(attr, 0, sizeof(*attr));
    attr->size = sizeof(*attr);
    attr->type = PERF_TYPE_SOFTWARE;
    attr->config = PERF_COUNT_SW_TASK_CLOCK;
    attr->sample_period = 1000000;
    attr->sigtrap = 1;
    attr->remove_on_exec = 1;
    attr->exclude_kernel = 1;
    attr->exclude_hv = 1;
}

static long perf_open(pid_t pid)
{
    return syscall(SYS_perf_event_open, attr, pid, -1, -1, 0);
}

static volatile int running;

static void *flip_size(void *arg)
{
    (void)arg;
    volatile __u32 *size = &attr->size;     /* every store made, none merged */
    running = 1;
    while (!stop) {
        *size = 0x2000;
        for (volatile int i = 0; i < 20; i++) {}
        *size = sizeof(*attr);
        for (volatile int i = 0; i < 20; i++) {}
    }
    return NULL;
}

static void *flip_map(void *arg)
{
    (void)arg;
    running = 1;
    while (!stop) {
        mprotect(attr, 4096, PROT_NONE);
        for (volatile int i = 0; i < 20; i++) {}
        mprotect(attr, 4096, PROT_READ | PROT_WRITE);
        for (volatile int i = 0; i < 20; i++) {}
    }
    return NULL;
}

static void race(pid_t victim, int n, void *(*flip)(void *))
{
    sigtrap_attr();
    pthread_t t;
    pthread_create(&t, NULL, flip, NULL);
    while (!running)
        sched_yield();
    int opened = 0, e2big = 0, eacces = 0, other = 0;
    for (int i = 0; i < n; i++) {
        long fd = perf_open(victim);
        if (fd >= 0) {
            opened++;
            close((int)fd);         /* before its signal reaches anyone */
        } else if (errno == E2BIG) {
            e2big++;
        } else if (errno == EACCES) {
            eacces++;
        } else {
            other++;
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("opened=%d e2big=%d eacces=%d other=%d\n", opened, e2big, eacces, other);
}

static pid_t sleeper(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    return pid;
}

static void one(pid_t child)
{
    long fd = perf_open(child);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0)
        close((int)fd);
    printf("errno=%s size=%u\n", name(e), attr->size);
}

/* The pid of the child the event is asked for, given to another process
 * while the call is judged. */
static pid_t swapped;
static int swap_ms, replaced;

static void *swap_child(void *arg)
{
    (void)arg;
    usleep((useconds_t)swap_ms * 1000);
    kill(swapped, SIGKILL);
    waitpid(swapped, NULL, 0);
    pid_t want = swapped;
    struct clone_args ca = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&want,
                             .set_tid_size = 1 };
    long pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid == 0) {
        pause();
        _exit(0);
    }
    replaced = pid == want;
    return NULL;
}

static void swap(int ms)
{
    memset(attr, 0, sizeof(*attr));
    attr->size = sizeof(*attr);
    attr->type = PERF_TYPE_SOFTWARE;
    attr->config = PERF_COUNT_SW_TASK_CLOCK;
    attr->exclude_kernel = attr->exclude_hv = 1;
    swapped = sleeper();
    swap_ms = ms;
    pthread_t t;
    if (pthread_create(&t, NULL, swap_child, NULL) != 0)
        return;
    long fd = syscall(SYS_perf_event_open, attr, swapped, -1, -1, 0);
    int e = fd < 0 ? errno : 0;
    pthread_join(t, NULL);
    printf("errno=%s replaced=%d\n", name(e), replaced);
    kill(swapped, SIGKILL);
    waitpid(swapped, NULL, 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    attr = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (attr == MAP_FAILED || argc < 2)
        return 2;
    const char *op = argv[1];
    if (!strcmp(op, "race-size") && argc > 3) {
        race(atoi(argv[2]), atoi(argv[3]), flip_size);
    } else if (!strcmp(op, "race-map") && argc > 3) {
        race(atoi(argv[2]), atoi(argv[3]), flip_map);
    } else if (!strcmp(op, "size") && argc > 2) {
        pid_t child = sleeper();
        memset(attr, 0, 8192);
        attr->type = PERF_TYPE_SOFTWARE;
        attr->config = PERF_COUNT_SW_TASK_CLOCK;
        attr->exclude_kernel = attr->exclude_hv = 1;    /* perf_event_paranoid 2 */
        attr->size = (unsigned)strtoul(argv[2], NULL, 0);
        if (attr->size > sizeof(*attr) && attr->size <= 8192)
            ((char *)attr)[attr->size - 1] = 1;    /* past what the kernel knows */
        one(child);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    } else if (!strcmp(op, "swap") && argc > 2) {
        swap(atoi(argv[2]));
    } else if (!strcmp(op, "unmapped")) {
        pid_t child = sleeper();
        munmap(attr, 8192);
        unsigned long flags = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;
        long fd = syscall(SYS_perf_event_open, attr, child, -1, -1, flags);
        printf("errno=%s\n", name(fd < 0 ? errno : 0));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    } else {
        return 2;
    }
    return 0;
}
