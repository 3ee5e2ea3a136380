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
 *                          SIGUSR1. */
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

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "race") == 0)
        return race(atoi(argv[2]));
    if (argc != 2 || strcmp(argv[1], "parity") != 0)
        return 2;
    signal(SIGUSR1, on_usr1);
    parity_case("fcntl");
    parity_case("ioctl");
    parity_case("nosession");
    return 0;
}
