/* A program that writes cgroup files (tests/test_escape_cgroups.py).
 *
 *   cgroup_probe OP LABEL PATH [VALUE] [OP LABEL PATH [VALUE]]...
 *
 * OPs, each printing "LABEL RESULT" (ok, or the errno's name; a failed
 * write is "write-ERRNO"):
 *   w   open(PATH, O_WRONLY), write VALUE
 *   a   openat2(AT_FDCWD, PATH, O_WRONLY), write VALUE
 *   p   an O_PATH handle of PATH opened again for writing through
 *       /proc/self/fd/N, write VALUE
 *   h   open_by_handle_at of PATH's handle, for writing (its directory as the
 *       mount's descriptor), write VALUE
 *   r   open(PATH, O_RDONLY), read
 *   m   mkdir(PATH) (a cgroup of the program's own)
 * VALUE "SELF" is the program's pid, "PARENT" its parent's (under yama-run:
 * the supervisor). The last line is "alive yes" once every OP is done. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *name_of(int e)
{
    static char other[16];
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case EEXIST: return "EEXIST";
    case ENOTSUP: return "ENOTSUP";
    case ESRCH: return "ESRCH";
    default:
        snprintf(other, sizeof(other), "E%d", e);
        return other;
    }
}

static const char *put(int fd, const char *value)
{
    static char res[32];
    if (fd < 0)
        return name_of(errno);
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(res, sizeof(res), "write-%s", name_of(e));
        return res;
    }
    return "ok";
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i + 2 < argc;) {
        const char *op = argv[i], *label = argv[i + 1], *path = argv[i + 2];
        const char *value = "";
        char num[32];
        i += 3;
        if (strchr("waph", op[0]) && i < argc) {
            value = argv[i++];
            if (strcmp(value, "SELF") == 0 || strcmp(value, "PARENT") == 0) {
                snprintf(num, sizeof(num), "%d", strcmp(value, "SELF") == 0 ? getpid() : getppid());
                value = num;
            }
        }
        const char *res;
        if (op[0] == 'w') {
            res = put(open(path, O_WRONLY | O_CLOEXEC), value);
        } else if (op[0] == 'a') {
            struct open_how how = { .flags = O_WRONLY | O_CLOEXEC };
            res = put((int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how)), value);
        } else if (op[0] == 'p') {
            int h = open(path, O_PATH | O_CLOEXEC);
            char again[64];
            snprintf(again, sizeof(again), "/proc/self/fd/%d", h);
            res = h < 0 ? name_of(errno) : put(open(again, O_WRONLY | O_CLOEXEC), value);
            if (h >= 0)
                close(h);
        } else if (op[0] == 'h') {
            struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
            char dir[4096];
            int mount_id;
            snprintf(dir, sizeof(dir), "%s", path);
            *strrchr(dir, '/') = '\0';
            fh->handle_bytes = MAX_HANDLE_SZ;
            int m = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (m < 0 || name_to_handle_at(AT_FDCWD, path, fh, &mount_id, 0) < 0)
                res = name_of(errno);
            else
                res = put(open_by_handle_at(m, fh, O_WRONLY | O_CLOEXEC), value);
            if (m >= 0)
                close(m);
            free(fh);
        } else if (op[0] == 'r') {
            char buf[4096];
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            res = fd < 0 ? name_of(errno) : read(fd, buf, sizeof(buf)) < 0 ? "read-failed" : "ok";
            if (fd >= 0)
                close(fd);
        } else if (op[0] == 'm') {
            res = mkdir(path, 0755) < 0 ? name_of(errno) : "ok";
        } else {
            res = "bad-op";
        }
        printf("%s %s\n", label, res);
    }
    printf("alive yes\n");
    return 0;
}
