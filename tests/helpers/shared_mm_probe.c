/* Accesses whose answer the kernel gives before, or without, Yama.
 *
 *   shared_mm_probe sharers   the parent clones a child with CLONE_VM|SIGCHLD
 *       (no CLONE_THREAD: the layout of vfork and posix_spawn); the child
 *       reads and writes its parent's memory with process_vm_readv/writev
 *       and through /proc/PPID/mem, then the parent its child's. mm_access
 *       asks no ptrace question of a task whose mm is the caller's.
 *       Lines "VMREAD:up 0" (child on parent), "VMREAD:down 0" (parent on
 *       child), for VMREAD, VMWRITE, PROCMEM.
 *   shared_mm_probe exec      the same child, read by its parent (label
 *       "before"), then execs this program in "pause" mode, and is read
 *       again ("after"): no longer the parent's mm.
 *   shared_mm_probe nodump    a sibling T makes itself non-dumpable; A opens
 *       T's syscall, personality and mem: its entries are root's (0400,
 *       0600), the open's mode check refuses first. Lines "SYSCALL EACCES".
 *
 * Every result is the errno's name or 0; exit 0 unless the setup failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define STACK_SIZE (1 << 16)
static char secret[16] = "shared-mm";
static volatile int stage;                 /* shared with the CLONE_VM child */
static char results[8][48];                /* the child's lines, printed by the parent */
static int exec_pipe[2];

static const char *err_name(int rc, int e)
{
    return rc < 0 ? strerrorname_np(e) : "0";
}

/* The three accesses of pid's memory, into out[0..2] as "OP:label result". */
static void access_all(pid_t pid, const char *label, char out[][48])
{
    char buf[16] = {0}, path[64];
    struct iovec local = { buf, 9 }, remote = { secret, 9 };
    ssize_t rc = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    snprintf(out[0], 48, "VMREAD:%s %s", label, err_name(rc, errno));
    rc = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    snprintf(out[1], 48, "VMWRITE:%s %s", label, err_name(rc, errno));
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    int fd = open(path, O_RDONLY);
    int e = errno;
    if (fd >= 0 && pread(fd, buf, 9, (off_t)(unsigned long)secret) != 9)
        fd = -1, e = errno;
    snprintf(out[2], 48, "PROCMEM:%s %s", label, err_name(fd, e));
    if (fd >= 0)
        close(fd);
}

static void print3(char lines[][48])
{
    for (int i = 0; i < 3; i++)
        printf("%s\n", lines[i]);
}

/* The child shares its parent's memory, stdio's state included: it only
 * writes results[], and the parent prints them. */
static int sharer(void *arg)
{
    if (arg)
        access_all(getppid(), "up", results);
    stage = 1;
    while (stage < 2)
        sched_yield();
    if (stage == 3) {                      /* exec: no longer the parent's mm */
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", exec_pipe[1]);
        char *argv[] = { "shared_mm_probe", "pause", fd, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    for (;;)
        pause();
}

static pid_t clone_sharer(int access_parent)
{
    char *stack = malloc(STACK_SIZE);
    return clone(sharer, stack + STACK_SIZE, CLONE_VM | SIGCHLD,
                 access_parent ? (void *)1 : NULL);
}

static int sharers(void)
{
    pid_t child = clone_sharer(1);
    if (child < 0)
        return 2;
    while (stage < 1)
        sched_yield();
    print3(results);
    char mine[3][48];
    access_all(child, "down", mine);
    print3(mine);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

static int exec_case(void)
{
    if (pipe2(exec_pipe, 0) < 0)
        return 2;
    pid_t child = clone_sharer(0);
    if (child < 0)
        return 2;
    while (stage < 1)
        sched_yield();
    char lines[3][48];
    access_all(child, "before", lines);
    print3(lines);
    stage = 3;
    char c;
    if (read(exec_pipe[0], &c, 1) != 1)    /* the new image is running */
        return 2;
    access_all(child, "after", lines);
    print3(lines);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}

static int nodump(void)
{
    int ready[2];
    if (pipe(ready) < 0)
        return 2;
    pid_t target = fork();
    if (target == 0) {
        prctl(PR_SET_DUMPABLE, 0);
        if (write(ready[1], "x", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    char c;
    if (target < 0 || read(ready[0], &c, 1) != 1)
        return 2;
    pid_t actor = fork();                  /* T's sibling */
    if (actor == 0) {
        const char *entries[] = { "syscall", "personality", "mem" };
        const char *names[] = { "SYSCALL", "PERSONALITY", "PROCMEM" };
        for (int i = 0; i < 3; i++) {
            char path[64];
            snprintf(path, sizeof(path), "/proc/%d/%s", (int)target, entries[i]);
            int fd = open(path, O_RDONLY);
            printf("%s %s\n", names[i], err_name(fd, errno));
        }
        fflush(stdout);
        _exit(0);
    }
    waitpid(actor, NULL, 0);
    kill(target, SIGKILL);
    waitpid(target, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "pause") == 0 && argc > 2) {   /* the exec'd image: tell, then wait */
        if (write(atoi(argv[2]), "x", 1) != 1)
            return 2;
        for (;;)
            pause();
    }
    if (strcmp(mode, "sharers") == 0)
        return sharers();
    if (strcmp(mode, "exec") == 0)
        return exec_case();
    if (strcmp(mode, "nodump") == 0)
        return nodump();
    fprintf(stderr, "usage: shared_mm_probe sharers|exec|nodump\n");
    return 2;
}
