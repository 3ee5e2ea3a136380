/* A program that makes itself non-dumpable (as ssh-agent, gpg-agent and
 * password managers do), then opens, stats and reads files by every route
 * the supervisor serves: absolute, relative to the cwd, relative to a dirfd,
 * the dirfd itself (AT_EMPTY_PATH), access(); with "own", also its own
 * descriptors in /proc (fd/N opened and stat'ed, the fd directory listed,
 * fdinfo/N and maps read, through self, thread-self and its pid: the kernel lets a
 * process reach its own whoever owns those directories). Prints one word
 * per step: "ok" or the errno's name; exits 0 only if every step worked.
 *   nodump_probe DIR FILE [own]    (FILE: a name in DIR) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>

static int failures;

static void step(const char *name, int rc)
{
    printf("%s %s\n", name, rc < 0 ? strerrorname_np(errno) : "ok");
    if (rc < 0)
        failures++;
}

/* Is fd listed in the directory at path? 0 or -1 (errno set). */
static int lists(const char *path, int fd)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char want[16];
    snprintf(want, sizeof(want), "%d", fd);
    int found = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        found |= strcmp(e->d_name, want) == 0;
    closedir(d);
    errno = ENOENT;
    return found ? 0 : -1;
}

/* Open path and read from it: 0 or -1 (errno set). */
static int reads(const char *path)
{
    char buf[64];
    int fd = open(path, O_RDONLY);
    int rc = fd < 0 ? -1 : (int)read(fd, buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return rc < 0 ? -1 : 0;
}

/* Each step prefixed with how the process names itself: [self], [thread-self], [PID]. */
static void own_step(const char *me, const char *name, int rc)
{
    printf("[%s] ", me);
    step(name, rc);
}

static void own_descriptors(const char *path)
{
    int fd = open(path, O_RDONLY);
    char p[96], pid[16];
    struct stat st;
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *const names[] = { "self", "thread-self", pid };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *me = names[i];
        snprintf(p, sizeof(p), "/proc/%s/fd/%d", me, fd);
        own_step(me, "own-fd-open", reads(p));
        own_step(me, "own-fd-stat", stat(p, &st));
        snprintf(p, sizeof(p), "/proc/%s/fd", me);
        own_step(me, "own-fd-list", lists(p, fd));
        snprintf(p, sizeof(p), "/proc/%s/fdinfo/%d", me, fd);
        own_step(me, "own-fdinfo-read", reads(p));
        snprintf(p, sizeof(p), "/proc/%s/maps", me);      /* 0444, under mm_access */
        own_step(me, "own-maps-read", reads(p));
    }
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "own") == 0))
        return 2;
    const char *dir = argv[1], *file = argv[2];
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    step("nondumpable", prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
    if (prctl(PR_GET_DUMPABLE) != 0)
        return 3;
    struct stat st;
    char buf[64];
    int fd = open(path, O_RDONLY);
    step("open", fd);
    step("read", fd < 0 ? -1 : (int)read(fd, buf, sizeof(buf)));
    step("stat", stat(path, &st));
    step("access", access(path, R_OK));
    step("chdir", chdir(dir));
    step("open-relative", fd = open(file, O_RDONLY));
    if (fd >= 0)
        close(fd);
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    step("openat-dirfd", fd = openat(dfd, file, O_RDONLY));
    step("fstatat-empty-path", fstatat(fd, "", &st, AT_EMPTY_PATH));
    step("fstatat-dirfd", fstatat(dfd, file, &st, 0));
    step("creat", fd = open("created-by-probe", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    step("unlink", unlink("created-by-probe"));
    if (argc == 4)
        own_descriptors(path);
    return failures ? 1 : 0;
}
