/* stop_while_waiting FIFO SIG MODE (tests/test_stop_while_waiting.py): a
 * child opens FIFO for reading, nobody writing yet, and waits there; it is
 * sent SIG (a stop signal at its default action) and must be seen stopped
 * within a second (waitpid WUNTRACED, as a shell sees Ctrl-Z); it is
 * continued, a writer opens FIFO, and the child's open (restarted) must
 * return a descriptor: the child exits 0.
 * MODE: "alone" (the child has one thread), "leader" (its main thread opens
 * while another thread runs), "thread" (another thread opens while the main
 * thread runs: the main thread takes the signal and the stop reaches the
 * waiting thread as a group stop).
 * Prints "stopped=SECONDS|no states=STATES exit=STATUS", STATES the
 * child's threads' states while it was seen stopped. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *fifo;
static volatile int opened = -1;    /* the open's errno, 0: a descriptor */

static void *open_fifo(void *unused)
{
    (void)unused;
    int fd = open(fifo, O_RDONLY);
    opened = fd >= 0 ? 0 : errno;
    return NULL;
}

static void *spin(void *unused)
{
    (void)unused;
    while (opened < 0)
        ;
    return NULL;
}

static int child(const char *mode)
{
    /* A group of its own, its parent in another group of the session: not
     * orphaned, or the kernel would discard SIGTSTP at its default action. */
    setpgid(0, 0);
    pthread_t t;
    if (strcmp(mode, "alone") == 0)
        open_fifo(NULL);
    else if (strcmp(mode, "leader") == 0) {
        pthread_create(&t, NULL, spin, NULL);
        open_fifo(NULL);
    } else {
        pthread_create(&t, NULL, open_fifo, NULL);
        spin(NULL);
    }
    if (opened != 0)
        printf("open: %s\n", strerror(opened));
    return opened != 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The states of pid's threads, one letter each. */
static void states_of(pid_t pid, char *out, size_t size)
{
    char path[300], buf[512];
    size_t n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d)) && n + 1 < size;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[got] = 0;
        char *paren = strrchr(buf, ')');
        if (paren && paren[1] && paren[2])
            out[n++] = paren[2];
    }
    if (d)
        closedir(d);
    out[n] = 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: stop_while_waiting FIFO SIG alone|leader|thread\n");
        return 2;
    }
    fifo = argv[1];
    int sig = atoi(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(argv[3]));
    struct timespec settle = { 0, 300000000L };  /* the open waits by then */
    nanosleep(&settle, NULL);
    kill(pid, sig);
    double sent = now(), stopped = -1;
    char states[64] = "";
    int status;
    while (now() - sent < 1.0) {
        if (waitpid(pid, &status, WUNTRACED | WNOHANG) == pid && WIFSTOPPED(status)) {
            stopped = now() - sent;
            states_of(pid, states, sizeof(states));
            break;
        }
        usleep(5000);
    }
    kill(pid, SIGCONT);
    alarm(10);                                  /* a writer's open never waits for ever */
    int w = open(fifo, O_WRONLY);
    if (w >= 0)
        close(w);
    waitpid(pid, &status, 0);
    if (stopped < 0)
        printf("stopped=no states=- exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else
        printf("stopped=%.3f states=%s exit=%d\n", stopped, states,
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
