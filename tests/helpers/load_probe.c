/* load_probe: many processes and threads making hooked calls at once, each
 * answer checked. Run as a user without CAP_SYS_PTRACE, at ptrace scope 1,
 * in a directory it may write that holds "secret" (root's, mode 0600).
 *
 * One round, four hooked calls with known answers:
 *   prctl(PR_SET_PTRACER, 0)                 0 (emulated; natively EINVAL)
 *   ptrace(PTRACE_ATTACH, parent)            EPERM (not a descendant)
 *   linkat(own file, new name)               0
 *   linkat("secret", new name)               EPERM (protected_hardlinks)
 *
 *   load_probe tree N ROUNDS      a binary tree of N processes
 *   load_probe threads N ROUNDS   N threads in one process
 *   load_probe soak SECONDS       trees of 20 and 10 threads, again and again
 * Prints "<MODE> calls=<C> right=<R> wrong=<W> units=<U>" (units: processes
 * or threads that reported). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

struct tally { long calls, right, wrong, units; };

static void check(struct tally *t, long rc, int want_errno)
{
    int e = errno;
    t->calls++;
    if ((want_errno == 0 && rc == 0) || (want_errno && rc < 0 && e == want_errno))
        t->right++;
    else
        t->wrong++;
}

static void rounds(struct tally *t, int n)
{
    pid_t tid = (pid_t)syscall(SYS_gettid), parent = getppid();
    char own[64], name[64];
    snprintf(own, sizeof own, "own-%d", tid);
    int fd = open(own, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < n; i++) {
        check(t, prctl(PR_SET_PTRACER_, 0, 0, 0, 0), 0);   /* naming anyone here would let a relative attach */
        check(t, ptrace(PTRACE_ATTACH, parent, 0, 0), EPERM);
        snprintf(name, sizeof name, "l-%d-%d", tid, i);
        check(t, linkat(AT_FDCWD, own, AT_FDCWD, name, 0), 0);
        unlink(name);
        snprintf(name, sizeof name, "s-%d-%d", tid, i);
        check(t, linkat(AT_FDCWD, "secret", AT_FDCWD, name, 0), EPERM);
    }
    unlink(own);
    t->units++;
}

/* ---- a tree of processes: each reports its subtree's tally to its parent ---- */

static void subtree(int i, int n, int r, struct tally *t)
{
    memset(t, 0, sizeof *t);
    int pipes[2][2], nkids = 0;
    pid_t kids[2];
    for (int c = 0; c < 2; c++) {
        int child = 2 * i + 1 + c;
        if (child >= n)
            break;
        if (pipe(pipes[nkids]) < 0) { perror("pipe"); exit(2); }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(2); }
        if (pid == 0) {
            struct tally sub;
            subtree(child, n, r, &sub);
            if (write(pipes[nkids][1], &sub, sizeof sub) != sizeof sub)
                _exit(2);
            _exit(0);
        }
        close(pipes[nkids][1]);
        kids[nkids++] = pid;
    }
    rounds(t, r);               /* while the children make theirs */
    for (int k = 0; k < nkids; k++) {
        struct tally sub = { 0, 0, 1, 0 };
        if (read(pipes[k][0], &sub, sizeof sub) != sizeof sub)
            sub.wrong = 1;
        close(pipes[k][0]);
        int st;
        waitpid(kids[k], &st, 0);
        t->calls += sub.calls;
        t->right += sub.right;
        t->wrong += sub.wrong + !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        t->units += sub.units;
    }
}

/* ---- threads ---------------------------------------------------------------- */

static int thread_rounds;

static void *worker(void *arg)
{
    rounds(arg, thread_rounds);
    return NULL;
}

static void threads(int n, int r, struct tally *total)
{
    pthread_t th[n];
    struct tally t[n];
    memset(t, 0, sizeof t);
    thread_rounds = r;
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, &t[i])) { perror("pthread_create"); exit(2); }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total->calls += t[i].calls;
        total->right += t[i].right;
        total->wrong += t[i].wrong;
        total->units += t[i].units;
    }
}

static void add(struct tally *a, const struct tally *b)
{
    a->calls += b->calls;
    a->right += b->right;
    a->wrong += b->wrong;
    a->units += b->units;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: load_probe tree N ROUNDS | threads N ROUNDS | soak SECONDS\n");
        return 2;
    }
    struct tally t = { 0 };
    if (!strcmp(argv[1], "tree") && argc >= 4) {
        subtree(0, atoi(argv[2]), atoi(argv[3]), &t);
    } else if (!strcmp(argv[1], "threads") && argc >= 4) {
        threads(atoi(argv[2]), atoi(argv[3]), &t);
    } else if (!strcmp(argv[1], "soak")) {
        time_t end = time(NULL) + atoi(argv[2]);
        while (time(NULL) < end) {
            struct tally a, b = { 0 };
            int p[2];
            if (pipe(p) < 0)
                return 2;
            pid_t pid = fork();         /* the threads run beside the tree */
            if (pid == 0) {
                threads(10, 20, &b);
                _exit(write(p[1], &b, sizeof b) == sizeof b ? 0 : 2);
            }
            subtree(0, 20, 5, &a);
            add(&t, &a);
            waitpid(pid, NULL, 0);
            memset(&b, 0, sizeof b);
            b.wrong = 1;
            close(p[1]);
            if (read(p[0], &b, sizeof b) != sizeof b)
                b.wrong = 1;
            close(p[0]);
            add(&t, &b);
        }
    } else {
        return 2;
    }
    printf("%s calls=%ld right=%ld wrong=%ld units=%ld\n", argv[1], t.calls, t.right,
           t.wrong, t.units);
    return t.wrong != 0;
}
