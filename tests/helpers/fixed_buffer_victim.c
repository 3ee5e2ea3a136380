/* A process outside the sandbox with 144 bytes of 'V' at 0x10000000 (where
 * stalled_stat's caller asked for its stat result). Creates DIR/victim once
 * the buffer is there, waits SECONDS, then prints "untouched" or
 * "written" and exits 0 or 1.  usage: fixed_buffer_victim DIR SECONDS */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    unsigned char *b = mmap((void *)0x10000000, 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (b == MAP_FAILED)
        return 2;
    memset(b, 'V', 4096);
    char path[4096];
    snprintf(path, sizeof(path), "%s/victim", argv[1]);
    fclose(fopen(path, "w"));
    usleep((useconds_t)(atof(argv[2]) * 1e6));
    for (int i = 0; i < 144; i++)
        if (b[i] != 'V') {
            printf("written\n");
            return 1;
        }
    printf("untouched\n");
    return 0;
}
