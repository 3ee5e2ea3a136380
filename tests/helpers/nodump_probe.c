/* A program that makes itself non-dumpable (as ssh-agent, gpg-agent and
 * password managers do), then opens, stats and reads files by every route
 * the supervisor serves: absolute, relative to the cwd, relative to a dirfd,
 * the dirfd itself (AT_EMPTY_PATH), access(). Prints one word per step:
 * "ok" or the errno's name; exits 0 only if every step worked.
 *   nodump_probe DIR FILE    (FILE: a name in DIR) */
#define _GNU_SOURCE
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

int main(int argc, char **argv)
{
    if (argc != 3)
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
    return failures ? 1 : 0;
}
