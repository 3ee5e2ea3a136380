/* link_race DIR ALLOWED FORBIDDEN N: one thread calls linkat(path, DIR/lN) in a
 * loop while another keeps rewriting the path buffer between ALLOWED and
 * FORBIDDEN (same length). Prints "RACE links=K forbidden=F": F must be 0
 * under yama-run when FORBIDDEN may not be linked. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char buf[4096];
static const char *a, *b;
static volatile int stop;

static void *flipper(void *arg)
{
    (void)arg;
    size_t n = strlen(a) + 1;
    while (!stop) {
        memcpy(buf, a, n);
        memcpy(buf, b, n);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5 || strlen(argv[2]) != strlen(argv[3])) return 2;
    const char *dir = argv[1];
    a = argv[2];
    b = argv[3];
    int n = atoi(argv[4]);
    struct stat forbidden;
    if (stat(b, &forbidden) < 0) return 2;
    strcpy(buf, a);
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    int links = 0, bad = 0;
    char dst[4200];
    for (int i = 0; i < n; i++) {
        snprintf(dst, sizeof(dst), "%s/l%d", dir, i);
        if (syscall(SYS_linkat, AT_FDCWD, buf, AT_FDCWD, dst, 0) == 0) {
            struct stat st;
            links++;
            if (stat(dst, &st) == 0 && st.st_ino == forbidden.st_ino && st.st_dev == forbidden.st_dev)
                bad++;
            unlink(dst);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("RACE links=%d forbidden=%d\n", links, bad);
    return 0;
}
