/* async_devices (tests/test_hostile.py): O_ASYNC turned on for character
 * devices that are no terminal, by F_SETFL and by FIOASYNC; for each path:
 * "PATH: F_SETFL=ERRNO FIOASYNC=ERRNO owner=none|self|other" (ERRNO "ok"
 * for 0; owner: F_GETOWN after both, "self" for our own pid). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *err(long rc)
{
    return rc < 0 ? strerrorname_np(errno) : "ok";
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDWR | O_NONBLOCK);
        if (fd < 0) {
            printf("%s: open=%s\n", argv[i], strerrorname_np(errno));
            continue;
        }
        const char *setfl = err(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC));
        int on = 1;
        const char *fioasync = err(ioctl(fd, FIOASYNC, &on));
        int owner = fcntl(fd, F_GETOWN);
        printf("%s: F_SETFL=%s FIOASYNC=%s owner=%s\n", argv[i], setfl, fioasync,
               owner == 0 ? "none" : owner == getpid() ? "self" : "other");
        close(fd);
    }
    return 0;
}
