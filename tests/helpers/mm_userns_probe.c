/* A non-dumpable process whose memory stays in the user namespace it was
 * started in (run it under `unshare -r`), then moved on into a nested user
 * namespace that maps no root ("1001 0 1"): its /proc files are owned by
 * the root of the first namespace, which is its own euid, as a dumpable
 * process's would be. A dumpable child in the nested namespace then opens
 * the parent's ptrace-checked entries; the kernel refuses them (no
 * CAP_SYS_PTRACE in the memory's namespace). Prints "ENTRY ok" or
 * "ENTRY ERRNO" for each. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    int ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

int main(void)
{
    static const char *const entries[] = { "environ", "mem", "maps", "auxv", "fdinfo/0" };
    if (prctl(PR_SET_DUMPABLE, 0) < 0 || unshare(CLONE_NEWUSER) < 0) {
        perror("setup");
        return 2;
    }
    if (put("/proc/self/setgroups", "deny") < 0 || put("/proc/self/uid_map", "1001 0 1\n") < 0 ||
        put("/proc/self/gid_map", "1001 0 1\n") < 0) {
        perror("maps");
        return 2;
    }
    pid_t target = getpid();
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_DUMPABLE, 1);
        for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
            char path[64];
            snprintf(path, sizeof(path), "/proc/%d/%s", (int)target, entries[i]);
            int fd = open(path, O_RDONLY);
            printf("%s %s\n", entries[i], fd >= 0 ? "ok" : strerrorname_np(errno));
            if (fd >= 0)
                close(fd);
        }
        return 0;
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
