/* contain_probe: calls that act on another process, and what a user sees.
 *
 *   contain_probe wait
 *       print "READY pid", then sleep until killed (a target outside)
 *   contain_probe act TARGET OPS
 *       TARGET: pid=N | child | ppid (the parent: under yama-run, the supervisor)
 *       OPS: comma-separated kill0, term, prlimit, nice, affinity, sched,
 *            ioprio, migrate, movepages, madvise, mrelease, perf, attach
 *       Prints "OP RESULT" (0 or the symbolic errno) for each, then what the
 *       target looks like afterwards: "AFTER_CPU_LIMIT <soft>", "AFTER_NICE n",
 *       "AFTER_ALIVE 0|1".
 *
 * Build it -no-pie: a target started from this binary has its ELF header
 * mapped at 0x400000, the range process_madvise is asked about. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE 2
#define IOPRIO_PRIO_VALUE(class, data) (((class) << 13) | (data))

static const char *errname(int e)
{
    static char buf[16];
    const char *name = strerrorname_np(e);
    if (name)
        return name;
    snprintf(buf, sizeof(buf), "E%d", e);
    return buf;
}

static const char *res(long rc, int e)
{
    return rc < 0 ? errname(e) : "0";
}

static int pidfd_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static const char *op(const char *name, pid_t t)
{
    long rc = -1;
    int e = 0;
    errno = 0;
    if (!strcmp(name, "kill0")) {
        rc = kill(t, 0);
    } else if (!strcmp(name, "term")) {
        rc = kill(t, SIGTERM);
    } else if (!strcmp(name, "prlimit")) {
        struct rlimit one = { 1, 1 };   /* a second of CPU, then SIGKILL */
        rc = prlimit(t, RLIMIT_CPU, &one, NULL);
    } else if (!strcmp(name, "nice")) {
        rc = setpriority(PRIO_PROCESS, (id_t)t, 19);
    } else if (!strcmp(name, "affinity")) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        rc = sched_setaffinity(t, sizeof(set), &set);
    } else if (!strcmp(name, "sched")) {
        struct sched_param p = { 0 };
        rc = sched_setscheduler(t, SCHED_BATCH, &p);
    } else if (!strcmp(name, "ioprio")) {
        rc = syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, t, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7));
    } else if (!strcmp(name, "migrate")) {
        unsigned long nodes = 1;
        rc = syscall(SYS_migrate_pages, t, 64, &nodes, &nodes);
    } else if (!strcmp(name, "movepages")) {
        rc = syscall(SYS_move_pages, t, 0, NULL, NULL, NULL, 0);
    } else if (!strcmp(name, "madvise") || !strcmp(name, "mrelease")) {
        int fd = pidfd_of(t);
        if (fd < 0)
            return errname(errno);
        if (!strcmp(name, "madvise")) {
            struct iovec iov = { (void *)0x400000, 4096 };
            rc = syscall(SYS_process_madvise, fd, &iov, 1, MADV_COLD, 0);
        } else {
            rc = syscall(SYS_process_mrelease, fd, 0);
        }
        e = errno;
        close(fd);
        return res(rc, e);
    } else if (!strcmp(name, "perf")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_TASK_CLOCK;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        rc = syscall(SYS_perf_event_open, &a, t, -1, -1, PERF_FLAG_FD_CLOEXEC);
        e = errno;
        if (rc >= 0)
            close((int)rc);
        return res(rc, e);
    } else if (!strcmp(name, "attach")) {
        rc = ptrace(PTRACE_ATTACH, t, 0, 0);
        e = errno;
        if (rc == 0) {
            int st;
            waitpid(t, &st, __WALL);
            ptrace(PTRACE_DETACH, t, 0, 0);
        }
        return res(rc, e);
    } else {
        return "UNKNOWN_OP";
    }
    return res(rc, errno);
}

static void report_after(pid_t t)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)t);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "Max cpu time", 12)) {
            char soft[32];
            if (sscanf(line + 12, "%31s", soft) == 1)
                printf("AFTER_CPU_LIMIT %s\n", soft);
        }
    }
    if (f)
        fclose(f);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)t);
    if (errno == 0)
        printf("AFTER_NICE %d\n", nice);
    cpu_set_t set;
    if (sched_getaffinity(t, sizeof(set), &set) == 0)
        printf("AFTER_CPUS %d\n", CPU_COUNT(&set));
    int policy = sched_getscheduler(t);
    if (policy >= 0)
        printf("AFTER_POLICY %d\n", policy);
    printf("AFTER_ALIVE %d\n", kill(t, 0) == 0 || errno == EPERM);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "wait")) {
        alarm(600);
        printf("READY %d\n", (int)getpid());
        for (;;)
            pause();
    }
    if (argc != 4 || strcmp(argv[1], "act")) {
        fprintf(stderr, "usage: contain_probe wait | act TARGET OPS\n");
        return 2;
    }
    alarm(30);
    pid_t t, child = 0;
    if (!strcmp(argv[2], "child")) {
        child = fork();
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;)
                pause();
        }
        t = child;
    } else if (!strcmp(argv[2], "ppid")) {
        t = getppid();
    } else {
        t = (pid_t)atoi(argv[2] + 4);
    }
    printf("TARGET %d\n", (int)t);
    char *save = NULL;
    for (char *o = strtok_r(argv[3], ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        char upper[32];
        size_t i;
        for (i = 0; o[i] && i < sizeof(upper) - 1; i++)
            upper[i] = (char)(o[i] >= 'a' && o[i] <= 'z' ? o[i] - 32 : o[i]);
        upper[i] = '\0';
        printf("%s %s\n", upper, op(o, t));
    }
    usleep(200000);      /* a signal sent, or a CPU limit set, has acted by now */
    report_after(t);
    if (child) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}
