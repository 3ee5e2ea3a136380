/* O_ASYNC on a pty master: the kernel makes whoever turns it on the file's
 * owner (tty_fasync: the master's foreground group is never set, TIOCSCTTY
 * and TIOCSPGRP set the slave's), and input on the master signals it.
 *
 *   pty_async race TRIES   a child in a session of its own writes to the
 *                          slave without pause, a thread drains the master,
 *                          and the program loops: no owner (F_SETOWN 0),
 *                          O_ASYNC off, O_ASYNC on; SIGIO ignored. Prints
 *                          "survived TRIES tries" at the end (a supervisor
 *                          made the owner dies of SIGIO first).
 *   pty_async parity       for fcntl F_SETFL, ioctl FIOASYNC and a slave in
 *                          no session: the answer, whether the owner is the
 *                          program itself, whether it caught F_SETSIG's
 *                          SIGUSR1.
 *   pty_async thread       O_ASYNC turned on by a thread that is not the
 *                          leader: the owner F_GETOWN_EX and F_GETOWN read,
 *                          and which thread takes the SIGIO of input.
 *   pty_async errno        the answers for a closed descriptor and for O_PATH
 *                          ones (a terminal, /dev/null).
 *   pty_async nproc        forks until EAGAIN (RLIMIT_NPROC), then turns
 *                          O_ASYNC on with F_SETFL and FIOASYNC.
 *   pty_async stall N L S  N sleeping processes, L processes turning O_ASYNC
 *                          on and off on a master of their own for S
 *                          seconds, and a bystander timing its opens: its
 *                          worst round in ms. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

static int master;
static volatile sig_atomic_t caught;

static void on_usr1(int sig)
{
    (void)sig;
    caught = 1;
}

static void *drain(void *arg)
{
    (void)arg;
    char buf[4096];
    for (;;)
        if (read(master, buf, sizeof(buf)) < 0 && errno != EINTR && errno != EAGAIN)
            usleep(1000);
    return NULL;
}

static char *open_master(void)
{
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
        perror("posix_openpt");
        exit(2);
    }
    return ptsname(master);
}

/* A child in a session of its own, the slave its terminal (raw), writing to
 * it: pause microseconds between writes (0: none). */
static pid_t writer(const char *slave, int pause)
{
    int ready[2];
    if (pipe(ready) < 0)
        exit(2);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);      /* never left behind */
        setsid();
        int s = open(slave, O_RDWR);
        ioctl(s, TIOCSCTTY, 0);
        struct termios t;
        tcgetattr(s, &t);
        cfmakeraw(&t);
        tcsetattr(s, TCSANOW, &t);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        char buf[64];
        memset(buf, 'x', sizeof(buf));
        for (;;) {
            if (write(s, buf, sizeof(buf)) < 0)
                _exit(1);
            if (pause)
                usleep(pause);
        }
    }
    char x;
    if (read(ready[0], &x, 1) != 1)
        exit(2);
    close(ready[0]);
    close(ready[1]);
    return child;
}

static void end(pid_t child)
{
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static int race(int tries)
{
    signal(SIGIO, SIG_IGN);
    pid_t child = writer(open_master(), 0);
    pthread_t t;
    pthread_create(&t, NULL, drain, NULL);
    int flags = fcntl(master, F_GETFL) & ~O_ASYNC;
    for (int i = 0; i < tries; i++) {
        fcntl(master, F_SETOWN, 0);
        fcntl(master, F_SETFL, flags);
        if (fcntl(master, F_SETFL, flags | O_ASYNC) < 0) {
            printf("try %d: O_ASYNC: %s\n", i, strerrorname_np(errno));
            break;
        }
    }
    end(child);
    printf("survived %d tries\n", tries);
    return 0;
}

static int turn_on(const char *how)
{
    if (strcmp(how, "ioctl") == 0) {
        int on = 1;
        return ioctl(master, FIOASYNC, &on);
    }
    return fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_ASYNC);
}

/* O_ASYNC on a new master, turned on by how (fcntl, ioctl; nosession: fcntl,
 * the slave in no session, written by the program itself). */
static void parity_case(const char *how)
{
    const char *slave = open_master();
    int own = strcmp(how, "nosession") == 0;
    int s = own ? open(slave, O_RDWR | O_NOCTTY) : -1;
    pid_t child = own ? 0 : writer(slave, 10000);
    caught = 0;
    fcntl(master, F_SETSIG, SIGUSR1);
    int rc = turn_on(how);
    printf("%s: %s, owner is me: %d", how, rc == 0 ? "ok" : strerrorname_np(errno),
           fcntl(master, F_GETOWN) == getpid());
    for (int i = 0; i < 200 && !caught; i++) {
        if (own && write(s, "tick\n", 5) != 5)
            break;
        usleep(10000);
    }
    printf(", SIGUSR1 caught: %d\n", (int)caught);
    fflush(stdout);
    if (child)
        end(child);
    close(master);
    if (s >= 0)
        close(s);
}

static volatile pid_t took_sigio;

static void on_io(int sig)
{
    (void)sig;
    took_sigio = gettid();
}

static void *turn_on_in_a_thread(void *arg)
{
    int slave = *(int *)arg;
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_ASYNC);
    struct f_owner_ex o;
    fcntl(master, F_GETOWN_EX, &o);
    printf("thread: owner type=%d, pid is 0: %d, F_GETOWN is 0: %d\n",
           o.type, o.pid == 0, fcntl(master, F_GETOWN) == 0);
    if (write(slave, "x\n", 2) != 2)
        return NULL;
    for (int i = 0; i < 200 && !took_sigio; i++)
        usleep(5000);
    printf("SIGIO taken by %s\n", took_sigio == gettid() ? "the thread"
                                  : took_sigio == getpid() ? "the leader" : "none");
    return NULL;
}

/* Natively the owner is the thread's pid as a process (tty_fasync:
 * task_pid(current), PIDTYPE_TGID): F_GETOWN_EX type F_OWNER_PID and pid 0,
 * F_GETOWN 0 (that pid leads no process), and the thread takes SIGIO. */
static int thread_case(void)
{
    signal(SIGIO, on_io);
    int slave = open(open_master(), O_RDWR | O_NOCTTY);
    pthread_t t;
    pthread_create(&t, NULL, turn_on_in_a_thread, &slave);
    pthread_join(t, NULL);
    return 0;
}

static void say(const char *what, int rc)
{
    printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "0");
}

/* fdget refuses a closed descriptor and an O_PATH one before anything
 * else: EBADF, FIOASYNC's pointer unread. */
static int errno_case(void)
{
    int on = 1;
    say("ioctl(closed, FIOASYNC, NULL)", ioctl(999, FIOASYNC, NULL));
    int path = open(open_master(), O_PATH);
    say("fcntl(O_PATH pts, F_SETFL, O_ASYNC)", fcntl(path, F_SETFL, O_ASYNC));
    say("ioctl(O_PATH pts, FIOASYNC, &1)", ioctl(path, FIOASYNC, &on));
    say("ioctl(O_PATH pts, FIOASYNC, NULL)", ioctl(path, FIOASYNC, NULL));
    int null = open("/dev/null", O_PATH);
    say("fcntl(O_PATH /dev/null, F_SETFL, O_ASYNC)", fcntl(null, F_SETFL, O_ASYNC));
    return 0;
}

/* At RLIMIT_NPROC: turning O_ASYNC on makes no process, natively. */
static int nproc_case(void)
{
    open_master();
    static pid_t kids[65536];
    int n = 0;
    pid_t p;
    while (n < 65536 && (p = fork()) >= 0) {
        if (p == 0) {
            pause();
            _exit(0);
        }
        kids[n++] = p;
    }
    printf("fork: %s\n", n < 65536 ? strerrorname_np(errno) : "never refused");
    say("F_SETFL O_ASYNC", fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_ASYNC));
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_ASYNC);
    int on = 1;
    say("FIOASYNC", ioctl(master, FIOASYNC, &on));
    while (n > 0)
        kill(kids[--n], SIGKILL);
    while (wait(NULL) > 0)
        ;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void loop_o_async(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    open_master();
    for (;;) {
        fcntl(master, F_SETFL, O_ASYNC);
        fcntl(master, F_SETFL, 0);
    }
}

/* Two routed opens a round for seconds: the worst round, in ms. */
static double bystander(int seconds)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/pty_async.%d", getpid());
    double worst = 0, end = now() + seconds;
    while (now() < end) {
        double t0 = now();
        close(open("/proc/self/stat", O_RDONLY));
        close(open(path, O_WRONLY | O_CREAT, 0600));
        if (now() - t0 > worst)
            worst = now() - t0;
    }
    unlink(path);
    return worst * 1000;
}

static int stall_case(int sleepers, int loopers, int seconds)
{
    static pid_t kids[65536];
    int n = 0;
    for (int i = 0; i < sleepers + loopers && i < 65536; i++) {
        pid_t p = fork();
        if (p == 0) {
            if (i >= sleepers)
                loop_o_async();
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            pause();
            _exit(0);
        }
        if (p < 0)
            break;
        kids[n++] = p;
    }
    usleep(200000);
    printf("%d processes; bystander's worst round: %.0f ms\n", n, bystander(seconds));
    while (n > 0)
        kill(kids[--n], SIGKILL);
    while (wait(NULL) > 0)
        ;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "race") == 0)
        return race(atoi(argv[2]));
    if (argc == 2 && strcmp(argv[1], "thread") == 0)
        return thread_case();
    if (argc == 2 && strcmp(argv[1], "errno") == 0)
        return errno_case();
    if (argc == 2 && strcmp(argv[1], "nproc") == 0)
        return nproc_case();
    if (argc == 5 && strcmp(argv[1], "stall") == 0)
        return stall_case(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc != 2 || strcmp(argv[1], "parity") != 0)
        return 2;
    signal(SIGUSR1, on_usr1);
    parity_case("fcntl");
    parity_case("ioctl");
    parity_case("nosession");
    return 0;
}
