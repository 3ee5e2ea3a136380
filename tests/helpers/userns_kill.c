/* userns_kill (tests/test_pid_pinning.py): A makes a user namespace (its
 * uid 0 is our 200000, 2,000 ids mapped) and is root there (CAP_KILL in it);
 * B, its child, is uid 1000 there. A sends B SIGTERM: by pid (pid) or to
 * its group (group: kill(0), A ignoring it). The kernel allows both
 * (kill_ok_by_cred: ns_capable(B's user namespace, CAP_KILL)). outside: A
 * sends its parent (root, outside the namespace; ignoring it) SIGTERM:
 * EPERM. "MODE: ERRNO target=died|alive|outside" (ERRNO "ok" for 0). Run
 * as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_file(pid_t pid, const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) {
        perror(path);
        exit(2);
    }
    close(fd);
}

/* In A, root of its namespace: B made, signalled, waited for a moment. */
static void signal_b(const char *mode)
{
    pid_t b = fork();
    if (b == 0) {
        if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
            _exit(3);
        alarm(3);                               /* never outlives the test */
        for (;;)
            pause();
    }
    usleep(100000);
    signal(SIGTERM, SIG_IGN);                   /* A survives its own group's */
    int e = (strcmp(mode, "group") ? kill(b, SIGTERM) : kill(0, SIGTERM)) < 0 ? errno : 0;
    int st = 0;
    pid_t r = 0;
    for (int i = 0; i < 100 && r == 0; i++, usleep(10000))
        r = waitpid(b, &st, WNOHANG);
    printf("%s: %s target=%s\n", mode, e ? strerrorname_np(e) : "ok",
           r == b && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "died" : "alive");
    if (r != b)
        waitpid(b, NULL, 0);                    /* its alarm ends it */
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    int go[2], ready[2];
    if (pipe(go) < 0 || pipe(ready) < 0)
        return 2;
    signal(SIGTERM, SIG_IGN);
    pid_t a = fork();
    if (a == 0) {
        char c;
        signal(SIGTERM, SIG_DFL);
        if (unshare(CLONE_NEWUSER) < 0 || write(ready[1], "u", 1) != 1 ||
            read(go[0], &c, 1) != 1 || setresgid(0, 0, 0) || setresuid(0, 0, 0))
            _exit(2);
        if (strcmp(argv[1], "outside")) {
            signal_b(argv[1]);
        } else {
            int e = kill(getppid(), SIGTERM) < 0 ? errno : 0;
            printf("outside: %s target=outside\n", e ? strerrorname_np(e) : "ok");
        }
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 2;
    write_file(a, "setgroups", "deny");
    write_file(a, "uid_map", "0 200000 2000\n");
    write_file(a, "gid_map", "0 200000 2000\n");
    if (write(go[1], "g", 1) != 1)
        return 2;
    int st;
    waitpid(a, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}
