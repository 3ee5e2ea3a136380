/* pidns_jump (tests/test_pidns_parity.py): enter a pid namespace outside the
 * sandbox by its nsfs handle (root inside: open_by_handle_at, read-only),
 * and from a child made there make the calls that reach every process of
 * that namespace.
 *
 *   handle PATH            (outside) print the handle of the namespace file
 *                          PATH: "TYPE HEX"
 *   jump TYPE HEX kill     setns into it, fork; the child: kill(-1, SIGKILL)
 *   jump TYPE HEX prio     ... setpriority(PRIO_USER, 0, 19)
 * Each prints "setns: 0" and the child's "CALL: 0" or its errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HANDLE_MAX 64

static const char *result(int rc)
{
    return rc == 0 ? "0" : strerrorname_np(errno);
}

static int print_handle(const char *path)
{
    struct file_handle *h = malloc(sizeof(*h) + HANDLE_MAX);
    int mount_id;
    h->handle_bytes = HANDLE_MAX;
    if (name_to_handle_at(AT_FDCWD, path, h, &mount_id, AT_SYMLINK_FOLLOW) < 0) {
        printf("name_to_handle_at: %s\n", strerrorname_np(errno));
        return 1;
    }
    printf("%d ", h->handle_type);
    for (unsigned i = 0; i < h->handle_bytes; i++)
        printf("%02x", h->f_handle[i]);
    printf("\n");
    return 0;
}

static int jump(int type, const char *hex, const char *mode)
{
    size_t n = strlen(hex) / 2;
    struct file_handle *h = malloc(sizeof(*h) + HANDLE_MAX);
    if (n > HANDLE_MAX)
        return 2;
    h->handle_bytes = (unsigned)n;
    h->handle_type = type;
    for (size_t i = 0; i < n; i++)
        sscanf(hex + 2 * i, "%2hhx", &h->f_handle[i]);
    int mount_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    int fd = open_by_handle_at(mount_fd, h, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("open_by_handle_at: %s\n", strerrorname_np(errno));
        return 0;
    }
    printf("setns: %s\n", result(setns(fd, CLONE_NEWPID)));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (strcmp(mode, "kill") == 0)
            printf("kill -1: %s\n", result(kill(-1, SIGKILL)));
        else
            printf("setpriority: %s\n", result(setpriority(PRIO_USER, 0, 19)));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "handle") == 0)
        return print_handle(argv[2]);
    if (argc == 5 && strcmp(argv[1], "jump") == 0)
        return jump(atoi(argv[2]), argv[3], argv[4]);
    fprintf(stderr, "usage: pidns_jump handle PATH | jump TYPE HEX kill|prio\n");
    return 2;
}
