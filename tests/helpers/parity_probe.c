/* parity_probe: the path calls yama-run must route for fs.protected_symlinks
 * parity beyond the common ones (tests/test_parity_routes.py): the mount
 * family, quotactl, acct, swapon, uselib, and i386 path calls made through
 * int $0x80 with every pointer in MAP_32BIT memory.
 *
 *   parity_probe [-n] < cases
 *
 * -n: first enter a user and mount namespace of our own (uid and gid 0
 * mapped to ours), / made private, as `unshare -Urm` does.
 * A case line is "ID OP ARG..."; the result line is "ID RESULT" where
 * RESULT is "ok" or the errno name. Every call that changes the mount table
 * runs in a child that made a mount namespace of its own first (so nothing
 * outlives the case): its result is the child's.
 *
 * Ops:
 *   mount_bind SRC DST      mount(SRC, DST, MS_BIND)
 *   mount_move SRC DST      mount(SRC, DST, MS_MOVE) after a tmpfs on MNT
 *                           (SRC's target, named as the 3rd word) - see below
 *   mount_tmpfs DST         mount("none", DST, "tmpfs")
 *   mount_overlay LOWER DST mount(overlay) with lowerdir=LOWER and no upper
 *   mount_fs TYPE SRC DST   mount(SRC, DST, TYPE)
 *   tmpfs_umount2 MNT PATH FLAGS   a tmpfs on MNT, then umount2(PATH, FLAGS)
 *   tmpfs_move_mount MNT FROM TO FLAGS  a tmpfs on MNT, then move_mount
 *   tmpfs_fspick MNT PATH FLAGS         a tmpfs on MNT, then fspick
 *   tmpfs_setattr MNT PATH FLAGS        a tmpfs on MNT, then mount_setattr
 *                                       (propagation MS_PRIVATE)
 *   tmpfs_open_tree MNT PATH FLAGS      a tmpfs on MNT, then open_tree
 *   tmpfs_at MNT DIR CALL NAME FLAGS    a tmpfs on MNT, then CALL (fspick, setattr,
 *                                       move_mount to t_dst) of NAME relative to
 *                                       DIR opened O_PATH
 *   pivot_root NEW OLD      NEW bound onto itself first (by its real name,
 *                           the 3rd word REAL)
 *   mount_opts TYPE SRC DST OPTS  mount(SRC, DST, TYPE, 0, OPTS)
 *   fsconfig_string KEY PATH  fsopen("overlay") and FSCONFIG_SET_STRING
 *   fsconfig_path KEY PATH    fsopen("overlay") and FSCONFIG_SET_PATH
 *   fsconfig_on TYPE string|path KEY PATH   the same on fsopen(TYPE)
 *   quotactl SPECIAL        quotactl(QCMD(Q_GETFMT, USRQUOTA), SPECIAL)
 *   quotactl_type SPECIAL TYPE  the same of quota type TYPE
 *   quotaon SPECIAL TYPE FILE   quotactl(QCMD(Q_QUOTAON, TYPE), SPECIAL, QFMT_VFS_V0,
 *                           FILE); SPECIAL "-": NULL
 *   acct PATH               acct(PATH), acct(NULL) after a success
 *   swapon PATH             swapon(PATH, 0), swapoff after a success
 *   swapoff PATH
 *   uselib PATH
 *   lchown PATH   lgetxattr PATH   llistxattr PATH   lsetxattr PATH
 *   lremovexattr PATH       (ids -1; the name user.yr, value "v"; user.none)
 *   name_to_handle_at PATH FLAGS    inotify_add_watch PATH
 *   x32 NR PATH             the x32 call NR with PATH as its first argument
 *   bpf_obj_get PATH [FLAGS [BPF_FD]]  bpf(BPF_OBJ_GET)
 *   bpf_obj_get_at DIR NAME  the same, NAME relative to DIR opened O_PATH
 *                           (BPF_F_PATH_FD)
 *   i386:NAME ARGS          an i386 call by its name (see i386_call); the
 *                           AF_UNIX ones (connect, bind, sendmsg: the direct
 *                           numbers of Linux 4.3; socketcall_connect: the
 *                           multiplexer) name PATH as the address
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/quota.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MOVE_MOUNT_F_SYMLINKS
#define MOVE_MOUNT_F_SYMLINKS 0x1
#define MOVE_MOUNT_T_SYMLINKS 0x10
#endif
#ifndef FSCONFIG_SET_STRING
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_SET_PATH 3
#endif
#ifndef MOUNT_ATTR_SIZE_VER0
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif

static const char *ename(int e)
{
    static char buf[32];
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EACCES) E(EINVAL) E(ENOTDIR) E(ELOOP) E(EBUSY) E(EEXIST)
    E(ENOSYS) E(EFAULT) E(ENOTBLK) E(ENODEV) E(EBADF) E(ENOTTY) E(EISDIR) E(EROFS)
    E(ESRCH) E(EOPNOTSUPP) E(ENXIO)
    E(EXDEV) E(EMFILE) E(E2BIG) E(ENOEXEC) E(ENAMETOOLONG)
#undef E
    }
    snprintf(buf, sizeof(buf), "E%d", e);
    return buf;
}

static long rc_of(long r)
{
    return r < 0 ? -errno : r;
}

static void put(const char *id, long r)
{
    if (r >= 0)
        printf("%s ok\n", id);
    else
        printf("%s %s\n", id, ename((int)-r));
    fflush(stdout);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int own_namespaces(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    char map[64];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return -1;
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) < 0)
        return -1;
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) < 0)
        return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

/* ---- i386 ---------------------------------------------------------------- */

static char *low;                 /* MAP_32BIT scratch: strings and buffers */
static size_t low_used;

static uint32_t lowstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = low + low_used;
    memcpy(p, s, n);
    low_used += (n + 15) & ~(size_t)15;
    return (uint32_t)(uintptr_t)p;
}

static uint32_t lowbuf(size_t n)
{
    char *p = low + low_used;
    memset(p, 0, n);
    low_used += (n + 15) & ~(size_t)15;
    return (uint32_t)(uintptr_t)p;
}

static long int80(long nr, long a, long b, long c, long d, long e)
{
    long ret;
    __asm__ volatile("push %%rbp\n\txor %%ebp, %%ebp\n\tint $0x80\n\tpop %%rbp"
                     : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                     : "memory", "r8", "r9", "r10", "r11", "cc");
    return ret;
}

/* bpf(BPF_OBJ_GET) of path, with flags and bpf_fd; with dir, path is
 * relative to dir opened O_PATH (BPF_F_PATH_FD). */
#define BPF_F_PATH_FD_ (1u << 14)
static long bpf_obj_get(int i386, const char *dir, const char *path, uint32_t flags,
                        uint32_t bpf_fd)
{
    struct bpf_obj { uint64_t pathname; uint32_t bpf_fd, file_flags; int32_t path_fd; };
    int dfd = dir ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    struct bpf_obj attr = { .bpf_fd = bpf_fd, .file_flags = flags | (dir ? BPF_F_PATH_FD_ : 0),
                            .path_fd = dir ? dfd : 0 };
    long r;
    if (i386) {
        struct bpf_obj *a = (struct bpf_obj *)(uintptr_t)lowbuf(sizeof(attr));
        *a = attr;
        a->pathname = lowstr(path);
        r = int80(357, 7 /* BPF_OBJ_GET */, (long)(uintptr_t)a, sizeof(attr), 0, 0);
    } else {
        attr.pathname = (uint64_t)(uintptr_t)path;
        r = rc_of(syscall(SYS_bpf, 7 /* BPF_OBJ_GET */, &attr, sizeof(attr)));
    }
    if (r >= 0) close((int)r);
    if (dfd >= 0) close(dfd);
    return r;
}

/* bpf_obj_get PATH [FLAGS [BPF_FD]], bpf_obj_get_at DIR NAME */
static long bpf_case(int i386, const char *op, char **w, int n)
{
    if (!strcmp(op, "bpf_obj_get_at"))
        return n < 2 ? -EINVAL : bpf_obj_get(i386, w[0], w[1], 0, 0);
    return bpf_obj_get(i386, NULL, w[0], n > 1 ? (uint32_t)strtoul(w[1], NULL, 0) : 0,
                       n > 2 ? (uint32_t)strtoul(w[2], NULL, 0) : 0);
}

/* i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl) */
/* An i386 AF_UNIX call naming path: a socket of ours, the address and every
 * structure the call reads in MAP_32BIT memory, in i386's layouts. */
static long i386_unix(const char *name, const char *path)
{
    int dgram = !strcmp(name, "sendmsg");
    int fd = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0)
        return -1000;
    struct sockaddr_un *sa = (void *)(uintptr_t)lowbuf(sizeof(*sa));
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
    uint32_t a = (uint32_t)(uintptr_t)sa, len = sizeof(*sa);
    long r = -ENOSYS - 1000;
    if (!strcmp(name, "connect"))
        r = int80(362, fd, a, len, 0, 0);
    else if (!strcmp(name, "bind"))
        r = int80(361, fd, a, len, 0, 0);
    else if (!strcmp(name, "socketcall_connect")) {
        uint32_t *args = (void *)(uintptr_t)lowbuf(3 * 4);
        args[0] = (uint32_t)fd, args[1] = a, args[2] = len;
        r = int80(102, 3 /* SYS_CONNECT */, (uint32_t)(uintptr_t)args, 0, 0, 0);
    } else if (dgram) {
        uint32_t *iov = (void *)(uintptr_t)lowbuf(2 * 4), *msg = (void *)(uintptr_t)lowbuf(7 * 4);
        iov[0] = lowstr("x"), iov[1] = 1;
        msg[0] = a, msg[1] = len, msg[2] = (uint32_t)(uintptr_t)iov, msg[3] = 1;
        r = int80(370, fd, (uint32_t)(uintptr_t)msg, 0, 0, 0);
    }
    if (r == 0 && !strcmp(name, "bind"))
        unlink(path);
    close(fd);
    return r;
}

static long i386_call(const char *name, char **w, int n)
{
    low_used = 0;
    const char *p = n > 0 ? w[0] : "";
    uint32_t s = lowstr(p);
    uint32_t buf = lowbuf(512);
    const long AT_FDCWD_ = -100;
    if (!strcmp(name, "connect") || !strcmp(name, "bind") || !strcmp(name, "sendmsg") ||
        !strcmp(name, "socketcall_connect"))
        return i386_unix(name, p);
    if (!strcmp(name, "oldstat")) return int80(18, s, buf, 0, 0, 0);
    if (!strcmp(name, "oldlstat")) return int80(84, s, buf, 0, 0, 0);
    if (!strcmp(name, "stat")) return int80(106, s, buf, 0, 0, 0);
    if (!strcmp(name, "lstat")) return int80(107, s, buf, 0, 0, 0);
    if (!strcmp(name, "stat64")) return int80(195, s, buf, 0, 0, 0);
    if (!strcmp(name, "lstat64")) return int80(196, s, buf, 0, 0, 0);
    if (!strcmp(name, "fstatat64")) return int80(300, AT_FDCWD_, s, buf, 0, 0);
    if (!strcmp(name, "statx")) return int80(383, AT_FDCWD_, s, 0, 0xfff, buf);
    if (!strcmp(name, "statfs")) return int80(99, s, buf, 0, 0, 0);
    if (!strcmp(name, "statfs64")) return int80(268, s, 84, buf, 0, 0);
    if (!strcmp(name, "truncate")) return int80(92, s, 0, 0, 0, 0);
    if (!strcmp(name, "truncate64")) return int80(193, s, 0, 0, 0, 0);
    if (!strcmp(name, "chmod")) return int80(15, s, 0666, 0, 0, 0);
    if (!strcmp(name, "fchmodat")) return int80(306, AT_FDCWD_, s, 0666, 0, 0);
    if (!strcmp(name, "fchmodat2")) return int80(452, AT_FDCWD_, s, 0666, 0, 0);
    /* ids -1: no change, only the walk and the permission matter */
    if (!strcmp(name, "chown16")) return int80(182, s, 0xffff, 0xffff, 0, 0);
    if (!strcmp(name, "lchown16")) return int80(16, s, 0xffff, 0xffff, 0, 0);
    if (!strcmp(name, "chown32")) return int80(212, s, -1, -1, 0, 0);
    if (!strcmp(name, "lchown32")) return int80(198, s, -1, -1, 0, 0);
    if (!strcmp(name, "lgetxattr")) return int80(230, s, lowstr("user.yr"), buf, 64, 0);
    if (!strcmp(name, "lsetxattr")) return int80(227, s, lowstr("user.yr"), lowstr("v"), 1, 0);
    if (!strcmp(name, "lremovexattr")) return int80(236, s, lowstr("user.none"), 0, 0, 0);
    if (!strcmp(name, "fchownat")) return int80(298, AT_FDCWD_, s, -1, -1, 0);
    if (!strcmp(name, "utime")) return int80(30, s, 0, 0, 0, 0);
    if (!strcmp(name, "utimes")) return int80(271, s, 0, 0, 0, 0);
    if (!strcmp(name, "futimesat")) return int80(299, AT_FDCWD_, s, 0, 0, 0);
    if (!strcmp(name, "utimensat")) return int80(320, AT_FDCWD_, s, 0, 0, 0);
    if (!strcmp(name, "utimensat_time64")) return int80(412, AT_FDCWD_, s, 0, 0, 0);
    if (!strcmp(name, "access")) return int80(33, s, 4, 0, 0, 0);
    if (!strcmp(name, "faccessat")) return int80(307, AT_FDCWD_, s, 4, 0, 0);
    if (!strcmp(name, "faccessat2")) return int80(439, AT_FDCWD_, s, 4, 0, 0);
    if (!strcmp(name, "getxattr")) return int80(229, s, lowstr("user.yr"), buf, 64, 0);
    if (!strcmp(name, "listxattr")) return int80(232, s, buf, 256, 0, 0);
    if (!strcmp(name, "setxattr")) return int80(226, s, lowstr("user.yr"), lowstr("v"), 1, 0);
    if (!strcmp(name, "removexattr")) return int80(235, s, lowstr("user.none"), 0, 0, 0);
    if (!strcmp(name, "chdir")) {
        long r = int80(12, s, 0, 0, 0, 0);
        if (r == 0) chdir(n > 1 ? w[1] : "/");
        return r;
    }
    if (!strcmp(name, "readlink")) return int80(85, s, buf, 256, 0, 0);
    if (!strcmp(name, "inotify_add_watch")) {
        int fd = (int)syscall(SYS_inotify_init1, 0);
        long r = int80(292, fd, s, 0x00000fff, 0, 0);
        close(fd);
        return r;
    }
    if (!strcmp(name, "name_to_handle_at")) {
        uint32_t h = lowbuf(256);
        *(uint32_t *)(uintptr_t)h = 128;
        return int80(341, AT_FDCWD_, s, h, buf, 0x400 /* AT_SYMLINK_FOLLOW */);
    }
    if (!strcmp(name, "open")) {
        long r = int80(5, s, 0 /* O_RDONLY */, 0, 0, 0);
        if (r >= 0) close((int)r);
        return r;
    }
    if (!strcmp(name, "open_tree")) {
        long r = int80(428, AT_FDCWD_, s, 0, 0, 0);
        if (r >= 0) close((int)r);
        return r;
    }
    if (!strcmp(name, "uselib")) return int80(86, s, 0, 0, 0, 0);
    if (!strncmp(name, "bpf_obj_get", 11)) return bpf_case(1, name, w, n);
    if (!strcmp(name, "acct")) {
        long r = int80(51, s, 0, 0, 0, 0);
        if (r == 0) acct(NULL);
        return r;
    }
    if (!strcmp(name, "quotactl"))
        return int80(131, QCMD(Q_GETFMT, USRQUOTA), s, 0, buf, 0);
    if (!strcmp(name, "swapon")) {
        long r = int80(87, s, 0, 0, 0, 0);
        if (r == 0) swapoff(p);
        return r;
    }
    return -ENOSYS - 1000;
}

/* ---- the mount family, in a child with a mount namespace of its own -------- */

static long tmpfs_on(const char *mnt)
{
    return rc_of(mount("none", mnt, "tmpfs", 0, NULL));
}

static long mount_op(int i386, const char *op, char **w, int n)
{
    const long AT_FDCWD_ = -100;
    low_used = 0;
    if (!strcmp(op, "mount_bind") && n >= 2)
        return i386 ? int80(21, lowstr(w[0]), lowstr(w[1]), 0, MS_BIND, 0)
                    : rc_of(mount(w[0], w[1], NULL, MS_BIND, NULL));
    if (!strcmp(op, "mount_tmpfs") && n >= 1)
        return i386 ? int80(21, lowstr("none"), lowstr(w[0]), lowstr("tmpfs"), 0, 0)
                    : rc_of(mount("none", w[0], "tmpfs", 0, NULL));
    if (!strcmp(op, "mount_overlay") && n >= 2) {
        char data[4200];
        snprintf(data, sizeof(data), "lowerdir=%s", w[0]);
        return i386 ? int80(21, lowstr("overlay"), lowstr(w[1]), lowstr("overlay"), 0,
                            lowstr(data))
                    : rc_of(mount("overlay", w[1], "overlay", 0, data));
    }
    if (!strcmp(op, "mount_fs") && n >= 3)              /* TYPE SRC DST */
        return i386 ? int80(21, lowstr(w[1]), lowstr(w[2]), lowstr(w[0]), 0, 0)
                    : rc_of(mount(w[1], w[2], w[0], 0, NULL));
    if (!strcmp(op, "mount_move") && n >= 3) {          /* MNT SRC DST */
        if (tmpfs_on(w[0]) < 0)
            return -1000;
        return i386 ? int80(21, lowstr(w[1]), lowstr(w[2]), 0, MS_MOVE, 0)
                    : rc_of(mount(w[1], w[2], NULL, MS_MOVE, NULL));
    }
    if (!strcmp(op, "pivot_root") && n >= 3) {          /* NEW OLD REAL */
        if (mount(w[2], w[2], NULL, MS_BIND, NULL) < 0)
            return -1000;
        return i386 ? int80(217, lowstr(w[0]), lowstr(w[1]), 0, 0, 0)
                    : rc_of(syscall(SYS_pivot_root, w[0], w[1]));
    }
    if (!strcmp(op, "mount_opts") && n >= 4)            /* TYPE SRC DST OPTS */
        return i386 ? int80(21, lowstr(w[1]), lowstr(w[2]), lowstr(w[0]), 0, lowstr(w[3]))
                    : rc_of(mount(w[1], w[2], w[0], 0, w[3]));
    if (!strcmp(op, "fsconfig_on") && n >= 4) {         /* TYPE string|path KEY PATH */
        const char *type = w[0];
        int path = !strcmp(w[1], "path");
        w += 2;
        int fs = (int)syscall(SYS_fsopen, type, 0);
        if (fs < 0)
            return -1000 - errno;
        int cmd = path ? FSCONFIG_SET_PATH : FSCONFIG_SET_STRING;
        int aux = path ? AT_FDCWD : 0;
        return i386 ? int80(431, fs, cmd, lowstr(w[0]), lowstr(w[1]), aux)
                    : rc_of(syscall(SYS_fsconfig, fs, cmd, w[0], w[1], aux));
    }
    if (!strcmp(op, "fsconfig_string") || !strcmp(op, "fsconfig_path")) {
        int fs = (int)syscall(SYS_fsopen, "overlay", 0);
        if (fs < 0)
            return -1000;
        int cmd = !strcmp(op, "fsconfig_path") ? FSCONFIG_SET_PATH : FSCONFIG_SET_STRING;
        int aux = cmd == FSCONFIG_SET_PATH ? AT_FDCWD : 0;
        return i386 ? int80(431, fs, cmd, lowstr(w[0]), lowstr(w[1]), aux)
                    : rc_of(syscall(SYS_fsconfig, fs, cmd, w[0], w[1], aux));
    }
    if (n < 2 || strncmp(op, "tmpfs_", 6))
        return -ENOSYS - 1000;
    if (tmpfs_on(w[0]) < 0)
        return -1000;
    op += 6;
    if (!strcmp(op, "at") && n >= 5) {            /* MNT DIR CALL NAME FLAGS: by a dirfd */
        int dfd = open(w[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return -1000 - errno;
        unsigned fl = (unsigned)strtoul(w[4], NULL, 0);
        long r;
        struct mount_attr attr = { .propagation = MS_PRIVATE };
        if (!strcmp(w[2], "fspick")) {
            r = i386 ? int80(433, dfd, lowstr(w[3]), fl, 0, 0)
                     : rc_of(syscall(SYS_fspick, dfd, w[3], fl));
            if (r >= 0) close((int)r);
        } else if (!strcmp(w[2], "setattr")) {
            if (i386) {
                uint32_t at = lowbuf(sizeof(attr));
                memcpy((void *)(uintptr_t)at, &attr, sizeof(attr));
                r = int80(442, dfd, lowstr(w[3]), fl, at, sizeof(attr));
            } else {
                r = rc_of(syscall(SYS_mount_setattr, dfd, w[3], fl, &attr, sizeof(attr)));
            }
        } else {                                  /* move_mount from DIR/NAME to the cwd's t_dst */
            r = i386 ? int80(429, dfd, lowstr(w[3]), -100, lowstr("t_dst"), fl)
                     : rc_of(syscall(SYS_move_mount, dfd, w[3], AT_FDCWD, "t_dst", fl));
        }
        close(dfd);
        return r;
    }
    const char *path = w[1];
    unsigned flags = n > 2 ? (unsigned)strtoul(w[n - 1], NULL, 0) : 0;
    if (!strcmp(op, "umount") && !i386)
        return rc_of(umount(path));
    if (!strcmp(op, "umount"))
        return int80(22, lowstr(path), 0, 0, 0, 0);
    if (!strcmp(op, "umount2"))
        return i386 ? int80(52, lowstr(path), flags, 0, 0, 0) : rc_of(umount2(path, (int)flags));
    if (!strcmp(op, "move_mount") && n >= 4)              /* MNT FROM TO FLAGS */
        return i386 ? int80(429, AT_FDCWD_, lowstr(w[1]), AT_FDCWD_, lowstr(w[2]), flags)
                    : rc_of(syscall(SYS_move_mount, AT_FDCWD, w[1], AT_FDCWD, w[2], flags));
    if (!strcmp(op, "fspick")) {
        long r = i386 ? int80(433, AT_FDCWD_, lowstr(path), flags, 0, 0)
                      : rc_of(syscall(SYS_fspick, AT_FDCWD, path, flags));
        if (r >= 0) close((int)r);
        return r;
    }
    if (!strcmp(op, "open_tree")) {
        long r = i386 ? int80(428, AT_FDCWD_, lowstr(path), flags, 0, 0)
                      : rc_of(syscall(SYS_open_tree, AT_FDCWD, path, flags));
        if (r >= 0) close((int)r);
        return r;
    }
    if (!strcmp(op, "setattr")) {
        struct mount_attr attr = { .propagation = MS_PRIVATE };
        if (i386) {
            uint32_t a = lowbuf(sizeof(attr));
            memcpy((void *)(uintptr_t)a, &attr, sizeof(attr));
            return int80(442, AT_FDCWD_, lowstr(path), flags, a, sizeof(attr));
        }
        return rc_of(syscall(SYS_mount_setattr, AT_FDCWD, path, flags, &attr, sizeof(attr)));
    }
    return -ENOSYS - 1000;
}

static int is_mount_op(const char *op)
{
    return !strncmp(op, "mount_", 6) || !strncmp(op, "tmpfs_", 6) ||
           !strcmp(op, "pivot_root") || !strncmp(op, "fsconfig_", 9);
}

static long in_child(int i386, const char *op, char **w, int n)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1000;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        long r = unshare(CLONE_NEWNS) < 0 ? -1000 - errno
                 : mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? -1000 - errno
                 : mount_op(i386, op, w, n);
        write(pfd[1], &r, sizeof(r));
        _exit(0);
    }
    close(pfd[1]);
    long r = -1000;
    if (read(pfd[0], &r, sizeof(r)) != sizeof(r))
        r = -1000;
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    return r;
}

static long run(const char *op, char **w, int n)
{
    int i386 = !strncmp(op, "i386:", 5);
    if (i386)
        op += 5;
    if (is_mount_op(op))
        return in_child(i386, op, w, n);
    if (i386)
        return i386_call(op, w, n);
    if (!strcmp(op, "quotactl")) {
        uint32_t fmt;
        return rc_of(quotactl(QCMD(Q_GETFMT, USRQUOTA), w[0], 0, (caddr_t)&fmt));
    }
    if (!strcmp(op, "quotactl_type") && n >= 2) {
        uint32_t fmt;
        return rc_of(quotactl(QCMD(Q_GETFMT, atoi(w[1])), w[0], 0, (caddr_t)&fmt));
    }
    if (!strcmp(op, "quotaon") && n >= 3)      /* QFMT_VFS_V0 */
        return rc_of(syscall(SYS_quotactl, QCMD(Q_QUOTAON, atoi(w[1])),
                             strcmp(w[0], "-") ? w[0] : NULL, 2, w[2]));
    if (!strcmp(op, "acct")) {
        long r = rc_of(acct(w[0]));
        if (r == 0) acct(NULL);
        return r;
    }
    if (!strcmp(op, "swapon")) {
        long r = rc_of(swapon(w[0], 0));
        if (r == 0) swapoff(w[0]);
        return r;
    }
    if (!strcmp(op, "swapoff"))
        return rc_of(swapoff(w[0]));
    if (!strcmp(op, "uselib"))
        return rc_of(syscall(134, w[0]));
    if (!strcmp(op, "lchown"))
        return rc_of(syscall(SYS_lchown, w[0], -1, -1));
    if (!strcmp(op, "lgetxattr")) {
        char v[64];
        return rc_of(syscall(SYS_lgetxattr, w[0], "user.yr", v, sizeof(v)));
    }
    if (!strcmp(op, "llistxattr")) {
        char v[256];
        return rc_of(syscall(SYS_llistxattr, w[0], v, sizeof(v)));
    }
    if (!strcmp(op, "lsetxattr"))
        return rc_of(syscall(SYS_lsetxattr, w[0], "user.yr", "v", 1, 0));
    if (!strcmp(op, "lremovexattr"))
        return rc_of(syscall(SYS_lremovexattr, w[0], "user.none"));
    if (!strcmp(op, "name_to_handle_at")) {
        struct { uint32_t bytes; int type; unsigned char h[128]; } fh = { .bytes = 128 };
        int mnt;
        return rc_of(syscall(SYS_name_to_handle_at, AT_FDCWD, w[0], &fh, &mnt,
                             n > 1 ? (int)strtol(w[1], NULL, 0) : 0));
    }
    if (!strcmp(op, "x32") && n >= 2)        /* x32 NR PATH: the path first, the rest 0 */
        return rc_of(syscall(0x40000000L | strtol(w[0], NULL, 0), w[1], 0, 0, 0, 0, 0));
    if (!strncmp(op, "bpf_obj_get", 11))
        return bpf_case(0, op, w, n);
    if (!strcmp(op, "inotify_add_watch")) {
        int fd = (int)syscall(SYS_inotify_init1, 0);
        long r = rc_of(syscall(SYS_inotify_add_watch, fd, w[0], 0xfffu));
        close(fd);
        return r;
    }
    return -ENOSYS - 1000;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "-n") && own_namespaces() < 0) {
        printf("- setup %s\n", ename(errno));
        return 1;
    }
    low = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
               -1, 0);
    if (low == MAP_FAILED)
        return 1;
    char line[8192];
    while (fgets(line, sizeof(line), stdin)) {
        char *w[16];
        int n = 0;
        for (char *t = strtok(line, " \t\n"); t && n < 16; t = strtok(NULL, " \t\n"))
            w[n++] = t;
        if (n < 2)
            continue;
        long r = run(w[1], w + 2, n - 2);
        if (r <= -1000)
            printf("%s setup-failed %s\n", w[0], ename((int)(-r - 1000)));
        else
            put(w[0], r);
        fflush(stdout);
    }
    return 0;
}
