/* Opens /proc/CHILD/maps of its own children while they exit: CHILDREN
 * children, each spinning a moment and exiting, and 40 opens of each before
 * it is reaped. The kernel allows every one (one's own child, then a task
 * without an mm). Prints "eacces=N opened=N" (other errors not counted). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: exiting_child_maps CHILDREN\n");
        return 2;
    }
    int children = atoi(argv[1]), eacces = 0, opened = 0;
    for (int i = 0; i < children; i++) {
        pid_t child = fork();
        if (child == 0) {
            for (volatile int spin = 0; spin < 20000 * (i % 8); spin++)
                ;
            _exit(0);
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/maps", (int)child);
        for (int k = 0; k < 40; k++) {
            int fd = open(path, O_RDONLY);
            if (fd >= 0) {
                opened++;
                close(fd);
            } else if (errno == EACCES) {
                eacces++;
            }
        }
        waitpid(child, NULL, 0);
    }
    printf("eacces=%d opened=%d\n", eacces, opened);
    return 0;
}
