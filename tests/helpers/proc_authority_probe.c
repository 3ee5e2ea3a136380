/* proc_authority_probe: /proc entries the supervisor might open with more
 * authority than its caller (tests/test_escape_procs.py).
 *
 *   proc_authority_probe map-files-write  two unrelated children: B maps a
 *                                   memfd (descriptor closed), A opens B's
 *                                   mapping by /proc/B/map_files/RANGE for
 *                                   writing and writes it (the kernel wants
 *                                   CAP_CHECKPOINT_RESTORE first):
 *                                   "map-files=OK|ENAME", "b-memory=TEXT"
 *   proc_authority_probe pagemap-child   reads its child's pagemap entry for
 *                                   a page the child touched: "pagemap=PFN"
 *                                   (0: frame numbers hidden, as the kernel
 *                                   hides them without CAP_SYS_ADMIN) or
 *                                   "pagemap=ENAME" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const char *err_name(int e)
{
    return e == EPERM ? "EPERM" : e == EACCES ? "EACCES" : e == ENOENT ? "ENOENT" : strerror(e);
}

static int map_files_write(void)
{
    int range[2], go[2];
    if (pipe(range) < 0 || pipe(go) < 0)
        return 1;
    pid_t b = fork();
    if (b == 0) {
        int m = memfd_create("secret", 0);
        if (m < 0 || ftruncate(m, 4096) < 0 || pwrite(m, "B-ORIGINAL", 10, 0) != 10)
            _exit(1);
        char *a = mmap(NULL, 4096, PROT_READ, MAP_SHARED, m, 0);
        close(m);
        char buf[64], x;
        int n = snprintf(buf, sizeof(buf), "%lx-%lx", (unsigned long)a, (unsigned long)a + 4096);
        if (write(range[1], buf, n) != n || read(go[0], &x, 1) != 1)
            _exit(1);
        printf("b-memory=%.12s\n", a);
        _exit(0);
    }
    char addr[64] = { 0 };
    close(range[1]);
    if (read(range[0], addr, sizeof(addr) - 1) <= 0)
        return 1;
    pid_t a = fork();
    if (a == 0) {
        char path[128];
        snprintf(path, sizeof(path), "/proc/%d/map_files/%s", (int)b, addr);
        int fd = open(path, O_RDWR);
        if (fd >= 0 && pwrite(fd, "A-WROTE-THIS", 12, 0) == 12)
            printf("map-files=OK\n");
        else
            printf("map-files=%s\n", err_name(errno));
        _exit(0);
    }
    waitpid(a, NULL, 0);
    if (write(go[1], "x", 1) != 1)
        return 1;
    waitpid(b, NULL, 0);
    return 0;
}

static char page[8192] __attribute__((aligned(4096)));

static int pagemap_child(void)
{
    int go[2];
    if (pipe(go) < 0)
        return 1;
    pid_t c = fork();
    if (c == 0) {
        char x;
        page[0] = 2;                             /* a frame of its own */
        close(go[1]);
        if (read(go[0], &x, 1) < 0)
            _exit(1);
        _exit(0);
    }
    usleep(100000);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c);
    int fd = open(path, O_RDONLY);
    uint64_t e = 0;
    if (fd < 0)
        printf("pagemap=%s\n", err_name(errno));
    else if (pread(fd, &e, 8, ((uintptr_t)page / 4096) * 8) == 8)
        printf("pagemap=%llx\n", (unsigned long long)(e & ((1ULL << 55) - 1)));
    if (write(go[1], "x", 1) != 1)
        return 1;
    waitpid(c, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "map-files-write") == 0)
        return map_files_write();
    if (argc == 2 && strcmp(argv[1], "pagemap-child") == 0)
        return pagemap_child();
    fprintf(stderr, "usage: proc_authority_probe map-files-write|pagemap-child\n");
    return 2;
}
