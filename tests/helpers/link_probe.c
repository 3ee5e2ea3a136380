/* link_probe: one link or linkat call, its result printed as "LINKAT 0" or
 * "LINKAT EPERM" (errno name), for native/yama-run parity tests.
 *
 *   link_probe [-C DIR] [-R ROOT] [-u] link OLD NEW
 *   link_probe [-C DIR] [-R ROOT] [-u] linkat OLDDIR OLD NEWDIR NEW FLAGS
 *   link_probe [-C DIR] fdsrc FILE NEW      via /proc/self/fd/N, AT_SYMLINK_FOLLOW
 *   link_probe [-C DIR] emptysrc FILE NEW   linkat(fd, "", AT_EMPTY_PATH)
 *
 * DIR arguments: CWD (AT_FDCWD), BAD (fd 999), NEG (-5), FILE:path (a regular
 * file as dirfd), or a directory to open. OLD/NEW: NULL and KERNEL give bad
 * pointers, LONG a string of PATH_MAX bytes, EDGE a path that ends just
 * before an unmapped page. FLAGS: 0, follow, empty, follow+empty, bogus.
 * -C chdir first; -R chroot to ROOT (then chdir to -C's DIR inside it);
 * -u also chdir("/") after chroot when no -C. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EACCES) E(EEXIST) E(EXDEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ELOOP) E(ENAMETOOLONG) E(EMLINK) E(EROFS) E(EFAULT) E(EBADF) E(ENOSYS) E(ESRCH)
#undef E
    default: return "E?";
    }
}

static int dirarg(const char *s)
{
    if (strcmp(s, "CWD") == 0) return AT_FDCWD;
    if (strcmp(s, "BAD") == 0) return 999;
    if (strcmp(s, "NEG") == 0) return -5;
    if (strncmp(s, "FILE:", 5) == 0) return open(s + 5, O_RDONLY);
    int fd = open(s, O_RDONLY | O_DIRECTORY);
    if (fd < 0) { perror(s); exit(2); }
    return fd;
}

static const char *patharg(const char *s)
{
    if (strcmp(s, "NULL") == 0) return (const char *)1;
    if (strcmp(s, "KERNEL") == 0) return (const char *)0xffffffffff600000UL;
    if (strcmp(s, "LONG") == 0) {
        char *p = malloc(PATH_MAX + 1);
        memset(p, 'a', PATH_MAX);
        p[PATH_MAX] = '\0';
        return p;
    }
    if (strncmp(s, "EDGE:", 5) == 0) {        /* the string's NUL is the page's last byte */
        char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(m + 4096, 4096);
        size_t n = strlen(s + 5);
        char *p = m + 4096 - n - 1;
        memcpy(p, s + 5, n + 1);
        return p;
    }
    return s;
}

static int flagsarg(const char *s)
{
    if (strcmp(s, "follow") == 0) return AT_SYMLINK_FOLLOW;
    if (strcmp(s, "empty") == 0) return AT_EMPTY_PATH;
    if (strcmp(s, "follow+empty") == 0) return AT_SYMLINK_FOLLOW | AT_EMPTY_PATH;
    if (strcmp(s, "bogus") == 0) return 0x8000000;
    return 0;
}

int main(int argc, char **argv)
{
    const char *cd = NULL, *root = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+C:R:")) != -1) {
        if (opt == 'C') cd = optarg;
        else if (opt == 'R') root = optarg;
        else return 2;
    }
    argv += optind;
    argc -= optind;
    if (argc < 1) return 2;
    if (root && (chroot(root) < 0 || (!cd && chdir("/") < 0))) { perror("chroot"); return 2; }
    if (cd && chdir(cd) < 0) { perror("chdir"); return 2; }
    long rc;
    if (strcmp(argv[0], "link") == 0 && argc == 3) {
        rc = syscall(SYS_link, patharg(argv[1]), patharg(argv[2]));
    } else if (strcmp(argv[0], "linkat") == 0 && argc == 6) {
        int od = dirarg(argv[1]), nd = dirarg(argv[3]);
        rc = syscall(SYS_linkat, od, patharg(argv[2]), nd, patharg(argv[4]), flagsarg(argv[5]));
    } else if (strcmp(argv[0], "fdsrc") == 0 && argc == 3) {
        int fd = open(argv[1], O_PATH | O_NOFOLLOW);
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        rc = syscall(SYS_linkat, AT_FDCWD, p, AT_FDCWD, argv[2], AT_SYMLINK_FOLLOW);
    } else if (strcmp(argv[0], "emptysrc") == 0 && argc == 3) {
        int fd = open(argv[1], O_PATH | O_NOFOLLOW);
        rc = syscall(SYS_linkat, fd, "", AT_FDCWD, argv[2], AT_EMPTY_PATH);
    } else {
        return 2;
    }
    printf("LINKAT %s\n", errname(rc < 0 ? errno : 0));
    return 0;
}
