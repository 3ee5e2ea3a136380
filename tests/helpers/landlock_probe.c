/* landlock_probe: confine itself with Landlock as a program would (reading
 * only below /usr), then try what the domain forbids.
 *
 * Prints, one per line:
 *   abi N|ERRNO          landlock_create_ruleset(NULL, 0, VERSION)
 *   restrict ok|ERRNO    the ruleset made and the domain entered
 *   read-allowed ok|ERRNO   open of /usr/lib/os-release
 *   read-denied ok|ERRNO    open of FILE (argv[1]), outside /usr
 *   create-denied ok|ERRNO  open(O_CREAT) of DIR/created (argv[2])
 * usage: landlock_probe FILE DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *err(int e)
{
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSYS: return "ENOSYS";
    case ENOENT: return "ENOENT";
    default: return strerror(e);
    }
}

static void try_open(const char *what, const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    printf("%s %s\n", what, fd >= 0 ? "ok" : err(errno));
    if (fd >= 0) {
        close(fd);
        if (flags & O_CREAT)
            unlink(path);
    }
}

static int confine(void)
{
    struct landlock_ruleset_attr attr = {
        .handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                             LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG,
    };
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (rs < 0)
        return -errno;
    struct landlock_path_beneath_attr below = {
        .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR,
        .parent_fd = open("/usr", O_PATH | O_CLOEXEC),
    };
    if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &below, 0) < 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_landlock_restrict_self, rs, 0) < 0)
        return -errno;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: landlock_probe FILE DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        printf("abi %s\n", err(errno));
    else
        printf("abi %ld\n", abi);
    int rc = confine();
    printf("restrict %s\n", rc == 0 ? "ok" : err(-rc));
    char created[4096];
    snprintf(created, sizeof(created), "%s/created", argv[2]);
    try_open("read-allowed", "/usr/lib/os-release", O_RDONLY);
    try_open("read-denied", argv[1], O_RDONLY);
    try_open("create-denied", created, O_WRONLY | O_CREAT | O_EXCL);
    return 0;
}
