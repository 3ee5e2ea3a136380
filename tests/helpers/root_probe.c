/* root_probe: a root moved after the supervisor kept it
 * (tests/test_escape_caches.py). Each mode has the supervisor open the
 * caller's root first (a routed open of an absolute path), then moves that
 * root by another task's call, then opens absolute paths again:
 *
 *   root_probe chroot-thread DIR   a second thread (sharing the fs_struct)
 *                                  chroots to DIR while the first waits
 *   root_probe pivot-root DIR      (root of a mount namespace of its own) a
 *                                  child waits while its parent binds DIR
 *                                  on itself and pivot_roots there
 *   root_probe thread-exec DIR     opens DIR/marker (its root kept), enters
 *                                  a user namespace of its own, starts a
 *                                  thread with a mount namespace of its own
 *                                  (CLONE_THREAD|CLONE_NEWNS: no call a
 *                                  route sees), which mounts a tmpfs on DIR
 *                                  and execs `root_probe look DIR`: that
 *                                  prints "marker=OK|ENAME" (ENOENT: the
 *                                  tmpfs hides it, as natively)
 *
 * and prints, for the waiting task, "hostname=OK|ENAME marker=OK|ENAME":
 * /etc/hostname is outside DIR, DIR/marker is /marker once DIR is the root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *err_name(int e)
{
    switch (e) {
    case 0: return "OK";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    default: return strerror(e);
    }
}

static int open_result(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static void report(void)
{
    int host = open_result("/etc/hostname");
    int marker = open_result("/marker");
    printf("hostname=%s marker=%s\n", err_name(host), err_name(marker));
    fflush(stdout);
}

static const char *dir;
static int chroot_rc;

static void *chrooter(void *unused)
{
    (void)unused;
    chroot_rc = chroot(dir) < 0 ? errno : 0;
    return NULL;
}

static int chroot_thread(void)
{
    if (open_result("/etc/hostname") != 0)      /* the root kept */
        return 1;
    pthread_t t;
    if (pthread_create(&t, NULL, chrooter, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    if (chroot_rc) {
        printf("chroot=%s\n", err_name(chroot_rc));
        return 0;
    }
    report();
    return 0;
}

static int pivot_root_(void)
{
    int up[2], down[2];
    char b, old[4096];
    if (pipe(up) < 0 || pipe(down) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        if (open_result("/etc/hostname") != 0)  /* the root kept */
            _exit(1);
        if (write(up[1], "x", 1) != 1 || read(down[0], &b, 1) != 1)
            _exit(1);
        report();
        _exit(0);
    }
    if (read(up[0], &b, 1) != 1)
        return 1;
    snprintf(old, sizeof(old), "%s/old", dir);
    int rc = 0;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(dir, dir, NULL, MS_BIND, NULL) < 0 || mkdir(old, 0700) < 0 ||
        syscall(SYS_pivot_root, dir, old) < 0)
        rc = errno;
    if (rc)
        printf("pivot_root=%s\n", err_name(rc));
    fflush(stdout);
    if (write(down[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    return 0;
}

static char thread_stack[1 << 16];
static char *self_exe;

static int exec_in_new_mounts(void *unused)
{
    (void)unused;
    if (mount("none", dir, "tmpfs", 0, NULL) < 0) {
        printf("mount=%s\n", err_name(errno));
        syscall(SYS_exit_group, 1);
    }
    char *av[] = { "root_probe", "look", (char *)dir, NULL };
    syscall(SYS_execve, self_exe, av, (char *[]){ NULL });
    syscall(SYS_exit_group, 1);
    return 0;
}

static int thread_exec(void)
{
    char marker[4096];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    if (open_result(marker) != 0)               /* the root kept */
        return 1;
    if (unshare(CLONE_NEWUSER) < 0)
        return 1;
    fflush(stdout);
    if (clone(exec_in_new_mounts, thread_stack + sizeof(thread_stack),
              CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_NEWNS, NULL) < 0)
        return 1;
    for (;;)
        pause();
}

static int look(void)
{
    char marker[4096];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    printf("marker=%s\n", err_name(open_result(marker)));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3) {
        dir = argv[2];
        if (strcmp(argv[1], "chroot-thread") == 0)
            return chroot_thread();
        if (strcmp(argv[1], "pivot-root") == 0)
            return pivot_root_();
        if (strcmp(argv[1], "thread-exec") == 0) {
            self_exe = realpath("/proc/self/exe", NULL);
            return self_exe ? thread_exec() : 1;
        }
        if (strcmp(argv[1], "look") == 0)
            return look();
    }
    fprintf(stderr, "usage: root_probe chroot-thread|pivot-root|thread-exec|look DIR\n");
    return 2;
}
