/* stale_answer DIR ROUNDS (tests/test_backend_ptrace.py): each round, the
 * leader waits to read FIFO DIR/aN (a worker of yama-run opens it) while
 * another thread execs this program again, whose image takes the leader's
 * tid; the new leader waits to read DIR/bN, and a thread of its own opens
 * aN for writing without waiting (natively ENXIO: aN's reader died with the
 * old image; under yama-run it may find the worker still there: "armed"),
 * then bN, and writes "bN" into it. The new leader must read "bN" from
 * what its open of bN returned, never what was written into aN. The new
 * image then plays the old one's part for the next round.
 * Prints "rounds=R armed=K wrong=W" (and each wrong round); exit 0 if no
 * round was wrong. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;
static int round_, rounds, armed, wrong;

static void fifo_name(char *buf, size_t size, char which, int n)
{
    snprintf(buf, size, "%s/%c%d", dir, which, n);
}

static void *exec_again(void *unused)
{
    (void)unused;
    usleep(110 * 1000);                      /* the leader waits in open(aN) by now */
    char r[16], k[16], w[16];
    snprintf(r, sizeof(r), "%d", round_);
    snprintf(k, sizeof(k), "%d", armed);
    snprintf(w, sizeof(w), "%d", wrong);
    char *args[] = { "stale_answer", (char *)dir, r, k, w, NULL };
    char rounds_env[16];
    snprintf(rounds_env, sizeof(rounds_env), "%d", rounds);
    setenv("STALE_ROUNDS", rounds_env, 1);
    execv("/proc/self/exe", args);
    perror("execv");
    _exit(125);
}

/* The old image's part: wait in open(aN) until another thread's exec. */
static void old_image(void)
{
    char a[4096], b[4096];
    fifo_name(a, sizeof(a), 'a', round_);
    fifo_name(b, sizeof(b), 'b', round_);
    if (mkfifo(a, 0600) < 0 || mkfifo(b, 0600) < 0) {
        perror("mkfifo");
        exit(125);
    }
    pthread_t t;
    pthread_create(&t, NULL, exec_again, NULL);
    int fd = open(a, O_RDONLY);
    printf("old image: open(a%d) returned %d\n", round_, fd);
    exit(125);
}

static void *writer(void *unused)
{
    (void)unused;
    char a[4096], b[4096], marker[16];
    fifo_name(a, sizeof(a), 'a', round_);
    fifo_name(b, sizeof(b), 'b', round_);
    usleep(30 * 1000);                       /* the leader waits in open(bN) by now */
    int w = open(a, O_WRONLY | O_NONBLOCK);
    if (w >= 0) {
        armed++;
        snprintf(marker, sizeof(marker), "a%d", round_);
        (void)!write(w, marker, strlen(marker));
        close(w);
    }
    w = open(b, O_WRONLY);
    snprintf(marker, sizeof(marker), "b%d", round_);
    if (w >= 0) {
        (void)!write(w, marker, strlen(marker));
        close(w);
    }
    return NULL;
}

/* The new image's part: open bN while a thread opens aN, then bN. */
static void new_image(void)
{
    char b[4096], want[16], got[16] = { 0 };
    fifo_name(b, sizeof(b), 'b', round_);
    snprintf(want, sizeof(want), "b%d", round_);
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    int fd = open(b, O_RDONLY);
    if (fd >= 0)
        (void)!read(fd, got, sizeof(got) - 1);
    pthread_join(t, NULL);
    if (fd < 0 || strcmp(got, want)) {
        wrong++;
        printf("round %d: open(%s) = %d, read \"%s\"\n", round_, want, fd, got);
    }
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);                /* aN's reader may be gone by the write */
    if (argc == 3) {                         /* the first image */
        dir = argv[1];
        rounds = atoi(argv[2]);
        old_image();
    }
    if (argc != 5 || !getenv("STALE_ROUNDS"))
        return 125;
    dir = argv[1];
    round_ = atoi(argv[2]);
    armed = atoi(argv[3]);
    wrong = atoi(argv[4]);
    rounds = atoi(getenv("STALE_ROUNDS"));
    new_image();
    if (++round_ < rounds)
        old_image();
    printf("rounds=%d armed=%d wrong=%d\n", rounds, armed, wrong);
    return wrong ? 1 : 0;
}
