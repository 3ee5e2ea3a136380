/* N threads hammer hooked calls at once. Prints "THREADS <calls> <failures>". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/uio.h>

#define PR_SET_PTRACER 0x59616d61
static int rounds;

static void *worker(void *arg)
{
    long failures = 0;
    char src[16] = "hooked", dst[16];
    for (int i = 0; i < rounds; i++) {
        if (prctl(PR_SET_PTRACER, i % 2 ? 0 : getpid(), 0, 0, 0) != 0)
            failures++;
        struct iovec l = { dst, sizeof dst }, r = { src, sizeof src };
        if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != sizeof src)
            failures++;
    }
    (void)arg;
    return (void *)failures;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    rounds = argc > 2 ? atoi(argv[2]) : 100;
    pthread_t t[n];
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, NULL)) { perror("pthread_create"); return 2; }
    long failures = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        failures += (long)r;
    }
    printf("THREADS %d %ld\n", n * rounds * 2, failures);
    return failures != 0;
}
