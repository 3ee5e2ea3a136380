/* walk_race: an attacker's races on the path walk (tests/test_escape_walk.py).
 *
 *   walk_race [-U] [-m DIR] [-j JAIL [-k]] [-c DIR] [-L LINK] A B N OP PATH
 *
 * A second process, forked before anything else (so outside any jail), swaps
 * the names A and B with renameat2(RENAME_EXCHANGE) for as long as this
 * process, in a user namespace of its own (-U: uid 0 there), chrooted into
 * JAIL (-j; -k: the cwd kept, not the jail's root) and in DIR (-c, after the
 * chroot), does OP on PATH N times; it
 * stops after an even number of swaps, so A and B are as they were. N = 0:
 * no swapper, OP once. One line per distinct outcome, "KEY COUNT":
 *   read:TEXT   OP open/beneath/inroot: opened, TEXT its first line
 *   ino:N       OP stat: the inode stat() gave (the link followed)
 *   err:ENAME   the call failed
 * -L LINK makes LINK a symlink to /proc/PPID first (the supervisor, under
 * yama-run). -m DIR bind-mounts /proc/PPID on DIR in a mount namespace of
 * this process's own (after -U), before the swapper starts. OP: open (open O_RDONLY), stat, beneath / inroot (openat2 from
 * the cwd with RESOLVE_BENEATH / RESOLVE_IN_ROOT). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEYS 32
static char keys[KEYS][96];
static long counts[KEYS];

static void tally(const char *key)
{
    int i;
    for (i = 0; i < KEYS && keys[i][0]; i++)
        if (strcmp(keys[i], key) == 0)
            break;
    if (i == KEYS)
        i = KEYS - 1;                           /* overflow: lumped in the last */
    if (!keys[i][0])
        snprintf(keys[i], sizeof(keys[i]), "%s", key);
    counts[i]++;
}

static void tally_err(int e)
{
    char key[64];
    const char *name = strerrorname_np(e);
    snprintf(key, sizeof(key), "err:%s", name ? name : "?");
    tally(key);
}

static void tally_fd(int fd)
{
    char buf[64], key[96];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        tally_err(errno);
        return;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    for (char *p = buf; *p; p++)
        if (*p < ' ' || *p > '~')
            *p = '?';
    snprintf(key, sizeof(key), "read:%s", buf);
    tally(key);
}

static void attempt(const char *op, const char *path)
{
    int fd;
    if (strcmp(op, "stat") == 0) {
        struct stat st;
        char key[64];
        if (stat(path, &st) < 0) {
            tally_err(errno);
            return;
        }
        snprintf(key, sizeof(key), "ino:%lu", (unsigned long)st.st_ino);
        tally(key);
        return;
    }
    if (strcmp(op, "open") == 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } else {
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                               .resolve = strcmp(op, "beneath") == 0 ? RESOLVE_BENEATH
                                                                    : RESOLVE_IN_ROOT};
        fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    }
    if (fd < 0) {
        tally_err(errno);
        return;
    }
    tally_fd(fd);
    close(fd);
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int exchange(const char *a, const char *b)
{
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

static pid_t swapper(const char *a, const char *b)
{
    signal(SIGTERM, on_term);                   /* before the fork: no SIGTERM is lost */
    pid_t pid = fork();
    if (pid != 0) {
        signal(SIGTERM, SIG_DFL);
        return pid;
    }
    while (!stop)                               /* in pairs: they end as they began */
        if (exchange(a, b) < 0 || exchange(a, b) < 0)
            _exit(3);
    _exit(0);
}

/* /proc/PPID bind-mounted on dir, in a mount namespace of our own. */
static int proc_mount(const char *dir)
{
    char src[32];
    snprintf(src, sizeof(src), "/proc/%d", (int)getppid());
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return mount(src, dir, NULL, MS_BIND, NULL);
}

static int own_namespace(void)
{
    char map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER) < 0)
        return -1;
    int fd = open("/proc/self/setgroups", O_WRONLY);
    if (fd < 0 || write(fd, "deny", 4) != 4)
        return -1;
    close(fd);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0 || write(fd, map, strlen(map)) < 0)
        return -1;
    close(fd);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0 || write(fd, map, strlen(map)) < 0)
        return -1;
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *jail = NULL, *dir = NULL, *link = NULL, *mnt = NULL;
    int opt, userns = 0, keep = 0;
    while ((opt = getopt(argc, argv, "Ukj:c:L:m:")) != -1) {
        if (opt == 'U') userns = 1;
        else if (opt == 'k') keep = 1;
        else if (opt == 'j') jail = optarg;
        else if (opt == 'c') dir = optarg;
        else if (opt == 'L') link = optarg;
        else if (opt == 'm') mnt = optarg;
        else return 2;
    }
    if (argc - optind != 5)
        return 2;
    const char *a = argv[optind], *b = argv[optind + 1], *op = argv[optind + 3],
               *path = argv[optind + 4];
    long n = atol(argv[optind + 2]);
    if (link) {
        char target[32];
        snprintf(target, sizeof(target), "/proc/%d", (int)getppid());
        unlink(link);
        if (symlink(target, link) < 0) {
            perror("symlink");
            return 2;
        }
    }
    /* The mount is made before the swapper starts, so that it is on DIR as
     * named (the swapper, in this namespace then, renames only its parents). */
    if (mnt && ((userns && own_namespace() < 0) || proc_mount(mnt) < 0)) {
        perror("mount");
        return 2;
    }
    pid_t pid = n > 0 ? swapper(a, b) : 0;
    if (pid < 0)
        return 2;
    if ((userns && !mnt && own_namespace() < 0) || (jail && (chroot(jail) < 0 || (!keep && chdir("/") < 0))) ||
        (dir && chdir(dir) < 0)) {
        perror("jail");
        if (pid > 0)
            kill(pid, SIGKILL);
        return 2;
    }
    for (long i = 0; i < (n > 0 ? n : 1); i++)
        attempt(op, path);
    int status = 0;
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
    }
    for (int i = 0; i < KEYS && keys[i][0]; i++)
        printf("%s %ld\n", keys[i], counts[i]);
    if (pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        printf("swapper failed %d\n", status);
    return 0;
}
