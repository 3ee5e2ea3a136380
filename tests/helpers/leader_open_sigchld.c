/* leader_open_sigchld FIFO_A FIFO_B MODE (tests/test_stop_while_waiting.py):
 * the main thread (the leader) opens FIFO_A for reading, nobody writing yet,
 * while another thread T forks a child that exits 0.4 s later; a writer
 * process opens both FIFOs 2 s after the start. SIGCHLD is caught.
 * MODE "other": T opens FIFO_B and waits too, SIGCHLD not blocked (handler
 *   with SA_RESTART). The kernel offers the child's SIGCHLD to its parent
 *   thread T (do_notify_parent), never to the leader: the leader's open is
 *   not interrupted and returns a descriptor once the writer comes.
 * MODE "blocked": T blocks SIGCHLD and sleeps (handler without SA_RESTART).
 *   T cannot take it, so the kernel offers it to the leader (complete_signal):
 *   the leader's open fails with EINTR, the handler having run.
 * Prints "leader=ok|errno:N handled=N" (handled: SIGCHLDs taken by the time
 * the leader's open returned). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *fifo_a, *fifo_b;
static int blocked;
static volatile sig_atomic_t handled;

static void on_chld(int sig)
{
    (void)sig;
    handled++;
}

static void *forker(void *unused)
{
    (void)unused;
    if (blocked) {
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        pthread_sigmask(SIG_BLOCK, &chld, NULL);
    }
    pid_t child = fork();
    if (child == 0) {
        usleep(400000);
        _exit(0);
    }
    if (blocked) {
        usleep(2500000);
    } else {
        int fd = open(fifo_b, O_RDONLY);        /* T waits in an open too */
        if (fd >= 0)
            close(fd);
    }
    waitpid(child, NULL, 0);
    return NULL;
}

static void writer(void)
{
    usleep(2000000);
    int a = open(fifo_a, O_WRONLY | O_NONBLOCK), b = open(fifo_b, O_WRONLY | O_NONBLOCK);
    usleep(300000);
    close(a);
    close(b);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: leader_open_sigchld FIFO_A FIFO_B other|blocked\n");
        return 2;
    }
    fifo_a = argv[1];
    fifo_b = argv[2];
    blocked = strcmp(argv[3], "blocked") == 0;
    pid_t w = fork();
    if (w == 0)
        writer();
    struct sigaction sa = { .sa_handler = on_chld, .sa_flags = blocked ? 0 : SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, forker, NULL);
    int fd = open(fifo_a, O_RDONLY);
    int err = errno, seen = handled;
    if (fd >= 0)
        printf("leader=ok handled=%d\n", seen);
    else
        printf("leader=errno:%d handled=%d\n", err, seen);
    if (fd >= 0)
        close(fd);
    pthread_join(t, NULL);
    waitpid(w, NULL, 0);
    return 0;
}
