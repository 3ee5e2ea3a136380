/* walk_probe: mechanism checks of the emulated path walk.
 *
 *   walk_probe race SAFE EVIL N   one thread flips a path buffer between SAFE
 *                                 and EVIL while this one opens and reads it N
 *                                 times; prints "safe=A evil=B denied=C other=D"
 *                                 (evil: the read saw EVIL's target's bytes)
 *   walk_probe how SIZE [TAIL]    openat2(AT_FDCWD, ".", how of SIZE bytes, the
 *                                 bytes after the first 24 set to TAIL); prints
 *                                 the errno name or "ok" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static char buf[4096];
static const char *paths[2];
static volatile int stop;
static volatile unsigned flips;

static void *flipper(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !stop; i++) {
        strcpy(buf, paths[i & 1]);          /* the same length: no torn NUL */
        flips = i;
    }
    return NULL;
}

static const char *name(int e)
{
    switch (e) {
    case 0: return "ok";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "race") == 0) {
        paths[0] = argv[2];
        paths[1] = argv[3];
        if (strlen(paths[0]) != strlen(paths[1]))
            return 2;
        strcpy(buf, paths[0]);
        pthread_t t;
        pthread_create(&t, NULL, flipper, NULL);
        while (flips < 1000)                /* flipping before the first open */
            ;
        int n = atoi(argv[4]), safe = 0, evil = 0, denied = 0, other = 0;
        for (int i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_openat, AT_FDCWD, buf, O_RDONLY);
            if (fd < 0) {
                if (errno == EACCES)
                    denied++;
                else
                    other++;
                continue;
            }
            char c = 0;
            if (read(fd, &c, 1) == 1 && c == 'S')
                safe++;
            else if (c == 'E')
                evil++;
            else
                other++;
            close(fd);
        }
        stop = 1;
        pthread_join(t, NULL);
        printf("safe=%d evil=%d denied=%d other=%d\n", safe, evil, denied, other);
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "how") == 0) {
        size_t size = (size_t)atol(argv[2]);
        unsigned char *how = calloc(1, size + 8);
        if (argc == 4)
            memset(how + 24, atoi(argv[3]), size > 24 ? size - 24 : 0);
        ((unsigned long long *)how)[0] = O_RDONLY | O_DIRECTORY;
        long fd = syscall(SYS_openat2, AT_FDCWD, ".", how, size);
        printf("%s\n", name(fd < 0 ? errno : 0));
        return 0;
    }
    return 2;
}
