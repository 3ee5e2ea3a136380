/* Calls whose answer the kernel gives from the caller's own standpoint: its
 * parent thread, its own process, its own thread's descriptor table, a task
 * that has no memory left. One line per result: "NAME 0" (or a value), or
 * "NAME ERRNO" (EPERM, ESRCH...).
 *
 *   traceme-userns       a child enters a user namespace of its own, then asks
 *                        PTRACE_TRACEME (its parent, uid 1001 or root, is
 *                        capable there: owner, or from an ancestor namespace)
 *   traceme-plain        the same without the namespace
 *   traceme-thread-drop  a thread of the parent removes CAP_SYS_PTRACE from
 *                        its own sets (capset is per thread) and forks the
 *                        child that asks PTRACE_TRACEME (root only)
 *   vm-no-mm             process_vm_readv/writev of an unreaped sibling
 *                        (a zombie) and of kthreadd (pid 2): no mm
 *   vm-no-mm-after-denials  the same 2000 times, after 3000 refused reads
 *                        of a live sibling (counts)
 *   own-process          process_madvise of its own process by its pidfd
 *                        and by PIDFD_SELF_*, pidfd_send_signal and
 *                        process_mrelease by PIDFD_SELF_THREAD_GROUP
 *   thread-table         a thread that unshared its descriptor table holds,
 *                        under the number its leader uses for a pidfd of
 *                        child C1, a pidfd of child C2: pidfd_getfd and
 *                        pidfd_send_signal on that number reach C2
 *   thread-inotify DIR   the same with inotify instances: the thread's own
 *                        instance, under the leader's number, gets the watch
 *                        on DIR (an event when a file is made there) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define PIDFD_SELF_THREAD -10000
#define PIDFD_SELF_THREAD_GROUP -10001
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define NUMBER 50

static void say(const char *name, long rc)
{
    if (rc < 0)
        printf("%s %s\n", name, strerrorname_np(errno));
    else
        printf("%s %ld\n", name, rc);
    fflush(stdout);
}

/* fork a child that asks PTRACE_TRACEME (in a user namespace of its own if
 * asked) and says the result; the parent detaches and reaps it */
static void traceme_child(int new_userns)
{
    pid_t c = fork();
    if (c == 0) {
        if (new_userns && unshare(CLONE_NEWUSER) < 0) {
            say("unshare", -1);
            _exit(1);
        }
        long rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
        say("TRACEME", rc);
        if (rc == 0)
            raise(SIGSTOP);
        _exit(0);
    }
    int st;
    waitpid(c, &st, __WALL);
    if (WIFSTOPPED(st)) {
        ptrace(PTRACE_DETACH, c, 0, 0);
        waitpid(c, &st, __WALL);
    }
}

static void *drop_and_fork(void *unused)
{
    (void)unused;
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_SYS_PTRACE);
    d[0].permitted &= ~(1u << CAP_SYS_PTRACE);
    if (syscall(SYS_capset, &h, d) < 0)
        say("capset", -1);
    traceme_child(0);
    return NULL;
}

/* flood: first 3000 reads of a live sibling, refused (past the first, a
 * denial nobody reads is settled in C), then 1000 rounds on the two tasks
 * without an mm: how many were ESRCH, how many anything else */
static void vm_no_mm(int flood)
{
    static long var = 5;
    pid_t live = fork();
    if (live == 0)
        for (;;)
            pause();
    pid_t zombie = fork();
    if (zombie == 0)
        _exit(0);
    usleep(100000);                     /* exited, left unreaped */
    pid_t sibling = fork();
    if (sibling == 0) {
        long v;
        struct iovec local = { &v, sizeof(v) }, remote = { &var, sizeof(var) };
        if (!flood) {
            say("VMREAD-ZOMBIE", process_vm_readv(zombie, &local, 1, &remote, 1, 0));
            say("VMWRITE-ZOMBIE", process_vm_writev(zombie, &local, 1, &remote, 1, 0));
            say("VMREAD-KTHREAD", process_vm_readv(2, &local, 1, &remote, 1, 0));
            _exit(0);
        }
        for (int i = 0; i < 3000; i++)
            process_vm_readv(live, &local, 1, &remote, 1, 0);
        long esrch = 0, other = 0;
        for (int i = 0; i < 1000; i++) {
            pid_t no_mm[] = { zombie, 2 };
            for (int k = 0; k < 2; k++) {
                long rc = process_vm_readv(no_mm[k], &local, 1, &remote, 1, 0);
                rc < 0 && errno == ESRCH ? esrch++ : other++;
            }
        }
        say("NO-MM-ESRCH", esrch);
        say("NO-MM-OTHER", other);
        _exit(0);
    }
    waitpid(sibling, NULL, 0);
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    waitpid(zombie, NULL, 0);
}

static void own_process(void)
{
    char *page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 1;
    struct iovec v = { page, 4096 };
    int own = (int)syscall(SYS_pidfd_open, getpid(), 0);
    say("MADVISE-OWN-COLD", syscall(SYS_process_madvise, own, &v, 1, MADV_COLD, 0));
    say("MADVISE-OWN-DONTNEED", syscall(SYS_process_madvise, own, &v, 1, MADV_DONTNEED, 0));
    say("MADVISE-OWN-GUARD", syscall(SYS_process_madvise, own, &v, 1, MADV_GUARD_INSTALL, 0));
    say("MADVISE-SELF-GROUP-COLD",
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, &v, 1, MADV_COLD, 0));
    say("MADVISE-SELF-THREAD-PAGEOUT",
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD, &v, 1, MADV_PAGEOUT, 0));
    say("SIGNAL-SELF-GROUP", syscall(SYS_pidfd_send_signal, PIDFD_SELF_THREAD_GROUP, 0, NULL, 0));
    say("SIGNAL-SELF-THREAD", syscall(SYS_pidfd_send_signal, PIDFD_SELF_THREAD, 0, NULL, 0));
    say("MRELEASE-SELF-GROUP", syscall(SYS_process_mrelease, PIDFD_SELF_THREAD_GROUP, 0));
}

static pid_t c1, c2;

static void *own_table(void *unused)
{
    (void)unused;
    if (unshare(CLONE_FILES) < 0) {
        say("unshare", -1);
        return NULL;
    }
    int p2 = (int)syscall(SYS_pidfd_open, c2, 0);
    dup2(p2, NUMBER);
    close(p2);
    int got = (int)syscall(SYS_pidfd_getfd, NUMBER, 3, 0);
    char link[64], path[256] = "";
    if (got >= 0) {
        snprintf(link, sizeof(link), "/proc/thread-self/fd/%d", got);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        path[n > 0 ? n : 0] = '\0';
        printf("GETFD-FILE %s\n", path);
    } else {
        say("GETFD-FILE", -1);
    }
    say("SIGNAL", syscall(SYS_pidfd_send_signal, NUMBER, SIGTERM, NULL, 0));
    return NULL;
}

static pid_t holding(const char *file)
{
    pid_t c = fork();
    if (c == 0) {
        dup2(open(file, O_RDONLY), 3);
        for (;;)
            pause();
    }
    return c;
}

static void thread_table(void)
{
    c1 = holding("/dev/null");
    c2 = holding("/etc/hostname");
    usleep(100000);
    int p1 = (int)syscall(SYS_pidfd_open, c1, 0);
    dup2(p1, NUMBER);
    close(p1);
    pthread_t t;
    pthread_create(&t, NULL, own_table, NULL);
    pthread_join(t, NULL);
    usleep(100000);
    int st;
    printf("C1 %s\n", waitpid(c1, &st, WNOHANG) == c1 ? "killed" : "alive");
    printf("C2 %s\n", waitpid(c2, &st, WNOHANG) == c2 ? "killed" : "alive");
    fflush(stdout);
    kill(c1, SIGKILL);
    kill(c2, SIGKILL);
    while (wait(NULL) > 0)
        ;
}

static const char *watched;

static void *own_inotify(void *unused)
{
    (void)unused;
    if (unshare(CLONE_FILES) < 0) {
        say("unshare", -1);
        return NULL;
    }
    dup2(inotify_init1(IN_NONBLOCK), NUMBER);
    say("WATCH", inotify_add_watch(NUMBER, watched, IN_CREATE) < 0 ? -1 : 0);
    char file[4096], buf[4096];
    snprintf(file, sizeof(file), "%s/made", watched);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    unlink(file);
    printf("EVENT %s\n", read(NUMBER, buf, sizeof(buf)) > 0 ? "yes" : "no");
    fflush(stdout);
    return NULL;
}

static void thread_inotify(const char *dir)
{
    watched = dir;
    dup2(inotify_init1(IN_NONBLOCK), NUMBER);    /* the leader's: never watches */
    pthread_t t;
    pthread_create(&t, NULL, own_inotify, NULL);
    pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "traceme-userns")) {
        traceme_child(1);
    } else if (!strcmp(mode, "traceme-plain")) {
        traceme_child(0);
    } else if (!strcmp(mode, "traceme-thread-drop")) {
        pthread_t t;
        pthread_create(&t, NULL, drop_and_fork, NULL);
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "vm-no-mm")) {
        vm_no_mm(0);
    } else if (!strcmp(mode, "vm-no-mm-after-denials")) {
        vm_no_mm(1);
    } else if (!strcmp(mode, "own-process")) {
        own_process();
    } else if (!strcmp(mode, "thread-table")) {
        thread_table();
    } else if (!strcmp(mode, "thread-inotify") && argc > 2) {
        thread_inotify(argv[2]);
    } else {
        fprintf(stderr, "usage: %s MODE\n", argv[0]);
        return 2;
    }
    return 0;
}
