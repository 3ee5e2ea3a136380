/* perf_event_open of the uprobe PMU on a child of its own (root: CAP_PERFMON).
 * attr.config1 (uprobe_path) is a pointer to the path in the caller's memory.
 *
 *   perf_uprobe_probe fixed PATH      PATH at the start of a page mapped at FIXED
 *   perf_uprobe_probe end PATH        PATH (and its NUL) at the end of that page,
 *                                     the next page unmapped
 *   perf_uprobe_probe long            the page full of 'a', no NUL (4096 bytes)
 *   perf_uprobe_probe chdir DIR PATH  PATH at FIXED, after chdir(DIR)
 *   perf_uprobe_probe foreign         prints "ppid=N", reads a hex address from
 *                                     stdin, one unmapped here: config1 = it
 *   perf_uprobe_probe self            /proc/self's entries probed: prints "fdinfo"
 *                                     and the N whose /proc/self/fdinfo/N is there
 *                                     (any answer but ENOENT), "open" and the fds
 *                                     it holds (N < 1024), then the answers for
 *                                     /proc/self/task/ its own tid and its
 *                                     parent's pid, and /proc/thread-self/fdinfo/0
 *
 * FIXED is an address nothing else maps (the supervisor neither). Prints
 * "errno=NAME" (0: an event was opened), or "mapped" when the foreign address
 * is mapped in this process. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIXED ((void *)0x200000000000UL)
#define PAGE 4096

static const char *name(int e)
{
    switch (e) {
    case 0: return "0";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case EIO: return "EIO";
    case ENOTDIR: return "ENOTDIR";
    default: return "OTHER";
    }
}

static char *fixed_page(void)
{
    char *p = mmap(FIXED, PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != FIXED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static int mapped(uint64_t addr)
{
    unsigned char vec;
    return mincore((void *)(uintptr_t)(addr & ~(uint64_t)(PAGE - 1)), PAGE, &vec) == 0 ||
           errno != ENOMEM;
}

static int type;
static pid_t child;

/* perf_event_open of the uprobe PMU on the child, on path: 0 or errno. */
static int probe(const char *path)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.type = type;
    a.disabled = 1;
    a.config1 = (uintptr_t)path;
    long fd = syscall(SYS_perf_event_open, &a, child, -1, -1, 0);
    if (fd < 0)
        return errno;
    close((int)fd);
    return 0;
}

/* Which /proc/self entries the probes find: its own, as natively. */
static void probe_self(void)
{
    char path[64];
    printf("fdinfo");
    for (int n = 0; n < 1024; n++) {
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", n);
        if (probe(path) != ENOENT)
            printf(" %d", n);
    }
    printf("\nopen");
    for (int n = 0; n < 1024; n++)
        if (fcntl(n, F_GETFD) >= 0)
            printf(" %d", n);
    snprintf(path, sizeof(path), "/proc/self/task/%d", gettid());
    printf("\nown task=%s\n", name(probe(path)));
    snprintf(path, sizeof(path), "/proc/self/task/%d", getppid());
    printf("parent's task=%s\n", name(probe(path)));
    printf("thread-self fdinfo/0=%s\n", name(probe("/proc/thread-self/fdinfo/0")));
}

static uint64_t path_at(int argc, char **argv)
{
    const char *mode = argv[1];
    if (!strcmp(mode, "long")) {
        memset(fixed_page(), 'a', PAGE);
        return (uintptr_t)FIXED;
    }
    if (!strcmp(mode, "foreign")) {
        printf("ppid=%d\n", getppid());
        fflush(stdout);
        unsigned long long addr;
        if (scanf("%llx", &addr) != 1)
            exit(2);
        if (mapped(addr)) {
            puts("mapped");
            exit(1);
        }
        return addr;
    }
    if (!strcmp(mode, "chdir") && argc > 3) {
        if (chdir(argv[2]) < 0) {
            perror("chdir");
            exit(2);
        }
        argv++;
    } else if (argc < 3 || (strcmp(mode, "fixed") && strcmp(mode, "end"))) {
        fprintf(stderr, "usage: see the comment at the top\n");
        exit(2);
    }
    size_t len = strlen(argv[2]) + 1;
    char *page = fixed_page();
    char *at = !strcmp(mode, "end") ? page + PAGE - len : page;
    memcpy(at, argv[2], len);
    return (uintptr_t)at;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
    if (!f || fscanf(f, "%d", &type) != 1)
        return 2;
    fclose(f);
    int self = !strcmp(argv[1], "self");
    uint64_t at = self ? 0 : path_at(argc, argv);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    if (self)
        probe_self();
    else
        printf("errno=%s\n", name(probe((const char *)(uintptr_t)at)));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
