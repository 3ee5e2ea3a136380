/* The paths the mount family and a few other calls name, which the kernel
 * follows but which cannot be made for the caller.
 *
 * mount, umount2 (and i386's umount), pivot_root, move_mount, fspick,
 * mount_setattr, fsconfig, quotactl, acct, swapon, swapoff, bpf(BPF_OBJ_GET),
 * and i386's oldstat and oldlstat resolve their
 * paths with LOOKUP_FOLLOW (fs/namespace.c, fs/quota/quota.c,
 * kernel/acct.c, mm/swapfile.c, kernel/bpf/inode.c, fs/stat.c), so fs.protected_symlinks
 * refuses a protected trailing link in them. They change the caller's own
 * mount table, its accounting or swap, or fill a compat layout: each path is
 * walked and judged here as connect's address is, then the call is
 * continued. Paths are listed in the order the kernel resolves them: a
 * walk's error other than EACCES and EPERM continues the call at once, and
 * the kernel then stops at that same path. A path the kernel does not follow
 * is listed only when a slash ends it (the slash makes the link trailing and
 * followed, as for lstat); otherwise its walk would check nothing the kernel
 * checks. A path relative to a descriptor other than AT_FDCWD (move_mount,
 * fspick, mount_setattr) is walked as /proc/self/fd/N/PATH, the caller's
 * descriptor followed as the kernel follows it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "engine.h"


#define MS_REMOUNT_ 32
#define MS_BIND_ 4096
#define MS_MOVE_ 8192
#define MS_PROPAGATION_ ((1 << 17) | (1 << 18) | (1 << 19) | (1 << 20))
#define MS_MGC_MSK_ 0xffff0000u
#define MS_MGC_VAL_ 0xC0ED0000u
#define UMOUNT_NOFOLLOW_ 8
#define UMOUNT_FLAGS_ 15                     /* MNT_FORCE, MNT_DETACH, MNT_EXPIRE, NOFOLLOW */
#define MOVE_MOUNT_F_SYMLINKS_ 0x01
#define MOVE_MOUNT_T_SYMLINKS_ 0x10
#define MOVE_MOUNT_MASK_ 0x377
#define Q_QUOTAON_ 0x800002
#define Q_SUBCMDMASK 0xff
#define Q_MAXQUOTAS 3                             /* user, group, project */
#define FSPICK_SYMLINK_NOFOLLOW_ 0x2
#define FSPICK_FLAGS_ 0xf                   /* CLOEXEC, SYMLINK_NOFOLLOW, NO_AUTOMOUNT, EMPTY_PATH */
#define MOUNT_SETATTR_FLAGS_ (AT_EMPTY_PATH | 0x8000 /* AT_RECURSIVE */ | AT_SYMLINK_NOFOLLOW | \
                              AT_NO_AUTOMOUNT)

/* Is there a link for the walk to judge on path (as the caller, from its cwd
 * or root)? Not when the whole path resolves without following any link
 * (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, O_PATH: a trailing
 * link is ELOOP too), nor when it does not resolve at all (the kernel fails
 * there as well: walked then, below). Nothing is asked of a filesystem's
 * server: a mount whose FUSE daemon does not answer (umount -l is how one
 * gets rid of it) is never asked anything the kernel's own look-up does not
 * ask. A path with ".." is walked: from a cwd
 * outside the caller's root it would climb where the kernel's does not. */
static int has_link(struct yr_call *c, const char *path)
{
    if (yr_has_dotdot(path))
        return 1;
    uint64_t res = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int start, cwd = -1;                         /* the caller's root is the call's, kept */
    const char *rel = path;
    if (path[0] == '/') {
        if (yr_open_root(c) < 0)
            return 1;
        while (*rel == '/')
            rel++;
        if (!*rel)
            return 0;                            /* "/" */
        start = c->res.root;
        res |= RESOLVE_IN_ROOT;
    } else if ((start = cwd = yr_start_at(c, AT_FDCWD_INT, 1)) < 0) {
        return 1;
    }
    int fd = yr_openat2(start, rel, O_PATH, res);
    yr_close(cwd);
    /* Walked too: a name missing, or found in our /proc, since our own fd
     * table (bound elsewhere, too) would answer by name where the caller's
     * search is refused: the walk answers EACCES there (gate.c). The found
     * object's device only, asked of no filesystem's server: umount -l of a
     * FUSE mount whose daemon hangs must go on. (Another procfs of our pids
     * can only be root's making, and root searches our fd table natively.) */
    struct statx sx;
    int on_proc = fd >= 0 && statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0, &sx) == 0 &&
                  yr_on_own_proc(&(struct stat){ .st_dev = makedev(sx.stx_dev_major,
                                                                   sx.stx_dev_minor) });
    if (fd >= 0)
        close(fd);
    return on_proc || fd == -ELOOP || fd == -EXDEV || fd == -EAGAIN || fd == -ENOENT ||
           fd == -ENOTDIR;
}

/* The path at addr added to the call's list (follows: the kernel follows its
 * trailing link; else it is listed only when a slash ends it), relative to
 * dirfd. Unreadable, empty or too long names are the kernel's to refuse:
 * they name no path here. */
static int add_named(struct yr_call *c, int dirfd, uint64_t addr, int follows)
{
    if (!addr)
        return 0;
    if (c->nsock >= YR_NAMED_PATHS)
        return -EACCES;                          /* more than we keep: refused */
    char *out = c->named[c->nsock];              /* named[0] first: mount's layers go in [1] */
    int pre = 0;
    if (dirfd != AT_FDCWD_INT)
        pre = snprintf(out, YR_PATH_MAX, "/proc/self/fd/%d/", dirfd);
    int n = yr_read_path(c, addr, out + pre, YR_PATH_MAX - (size_t)pre);
    if (n == -ENAMETOOLONG && pre)
        return -EACCES;                          /* too long once prefixed: refused */
    if (n <= 0)
        return 0;                                /* EFAULT, ENAMETOOLONG, ENOENT: the kernel's */
    if (pre && out[pre] == '/')
        memmove(out, out + pre, (size_t)n + 1);  /* absolute: the descriptor plays no part */
    if ((!follows && out[strlen(out) - 1] != '/') || !has_link(c, out))
        return 0;
    c->sock[c->nsock++] = out;
    return 0;
}

/* Checks the kernel makes before any look-up: without the capability the
 * call is EPERM whatever its paths, so none is walked (may_mount() is
 * CAP_SYS_ADMIN over the caller's mount namespace: at least in its effective
 * set; capable() is in the initial namespace: the identity's caps). */
int yr_may_mount(const struct yr_call *c)
{
    return (c->ev.cap_effective >> CAP_SYS_ADMIN) & 1;
}

/* ---- paths in a filesystem's options -----------------------------------
 *
 * overlayfs resolves each layer it is given (lowerdir, lowerdir+, upperdir,
 * workdir, datadir+) with kern_path(LOOKUP_FOLLOW) when the option is parsed
 * (fs/overlayfs/params.c), for mount(2)'s options and for fsconfig's
 * FSCONFIG_SET_STRING alike. As the kernel: mount(2)'s options are split at
 * commas not escaped by a backslash (ovl_next_opt); lowerdir's value at
 * colons not escaped ("::" too); lowerdir, upperdir and workdir are then
 * unescaped (ovl_unescape: a backslash takes the next character as it is),
 * lowerdir+ and datadir+ are taken as they are.
 *
 * Block filesystems name devices in their options, which the kernel looks up
 * with LOOKUP_FOLLOW: ext4's journal_path (fs_lookup_param when parsed, from
 * FSCONFIG_SET_PATH too) and btrfs's device (scanned when parsed): options
 * are parsed before mount_capable() and before the source is looked up, so
 * these are walked whenever the caller may mount at all, before the source.
 * xfs's logdev and rtdev are only kept when parsed and opened once the
 * source is (xfs_open_devices): walked after the source, for a caller that
 * may mount a block filesystem. mount(2)'s options of filesystems other
 * than overlayfs are split at every comma (vfs_parse_comma_sep) and taken as
 * they are. The paths are kept in named[1], one after the other. */

enum { LAYER_NONE, LAYER_SPLIT, LAYER_ESCAPED, LAYER_RAW };
enum { KEY_OVERLAY = 1, KEY_DEVICE = 2, KEY_DEVICE_LATE = 4,
       KEY_SET_PATH = 8 /* also given as FSCONFIG_SET_PATH */ };

/* How key (n bytes) names paths, among the keys of the kinds in `where`. */
static int layer_kind(const char *key, size_t n, int where)
{
    static const struct { const char *key; int kind, where; } keys[] = {
        { "lowerdir", LAYER_SPLIT, KEY_OVERLAY }, { "upperdir", LAYER_ESCAPED, KEY_OVERLAY },
        { "workdir", LAYER_ESCAPED, KEY_OVERLAY }, { "lowerdir+", LAYER_RAW, KEY_OVERLAY },
        { "datadir+", LAYER_RAW, KEY_OVERLAY },
        { "journal_path", LAYER_RAW, KEY_DEVICE | KEY_SET_PATH },
        { "device", LAYER_RAW, KEY_DEVICE }, { "logdev", LAYER_RAW, KEY_DEVICE_LATE },
        { "rtdev", LAYER_RAW, KEY_DEVICE_LATE },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if ((keys[i].where & where) && strlen(keys[i].key) == n &&
            memcmp(keys[i].key, key, n) == 0)
            return keys[i].kind;
    return LAYER_NONE;
}

/* One path, value[0..n), listed (unescaped when asked). */
static int add_layer(struct yr_call *c, char **room, const char *value, size_t n, int unescape)
{
    char *end = c->named[1] + YR_PATH_MAX;
    char *out = *room, *d = out;
    for (size_t i = 0; i < n; i++) {
        if (unescape && value[i] == '\\' && ++i == n)
            break;
        if (d + 1 >= end)
            return -EACCES;                      /* more than we keep: refused */
        *d++ = value[i];
    }
    /* Empty: the kernel's EINVAL, nothing to walk, and nothing written: an
     * earlier path may have filled the room to its last byte, and *room is
     * then the end of named[1] (a NUL there lands in the fields after it). */
    if (d == out)
        return 0;
    *d = '\0';                                   /* d < end: the loop kept a byte for it */
    if (!has_link(c, out))
        return 0;
    if (c->nsock >= YR_CALL_PATHS)
        return -EACCES;
    c->sock[c->nsock++] = out;
    *room = d + 1;
    return 0;
}

/* key=value (value n bytes): the paths it names. */
static int add_layers(struct yr_call *c, char **room, const char *key, size_t klen,
                      const char *value, size_t n, int where)
{
    int kind = layer_kind(key, klen, where);
    if (kind == LAYER_NONE)
        return 0;
    if (kind != LAYER_SPLIT)
        return add_layer(c, room, value, n, kind == LAYER_ESCAPED);
    /* Split at every ':' not escaped, as ovl_parse_param_split_lowerdirs:
     * a backslash keeps the byte after it in the layer, and a last one stays
     * in the last layer (the kernel's split copies it, unescaping then drops
     * it: "a:b\\" names a and b). */
    size_t from = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i + 1 < n && value[i] == '\\') {
            i++;
            continue;
        }
        if (i == n || value[i] == ':') {
            int err = add_layer(c, room, value + from, i - from, 1);
            if (err < 0)
                return err;
            from = i + 1;
        }
    }
    return 0;
}

/* mount(2)'s options (opts, NUL-terminated): the paths the keys of `where`
 * name; overlayfs's commas may be escaped. */
static int option_paths(struct yr_call *c, char **room, const char *opts, int where)
{
    const char *p = opts;
    while (*p) {
        const char *q = p;
        while (*q && *q != ',') {
            if (where == KEY_OVERLAY && *q == '\\' && q[1])
                q++;
            q++;
        }
        const char *eq = memchr(p, '=', (size_t)(q - p));
        if (eq) {
            int err = add_layers(c, room, p, (size_t)(eq - p), eq + 1, (size_t)(q - eq - 1),
                                 where);
            if (err < 0)
                return err;
        }
        p = *q ? q + 1 : q;
    }
    return 0;
}

/* Does the filesystem type need a block device (listed without "nodev" in
 * /proc/filesystems)? Its source is then a path: get_tree_bdev looks it up
 * with lookup_bdev (LOOKUP_FOLLOW), once the caller may mount it
 * (mount_capable: CAP_SYS_ADMIN, such filesystems are not mounted in a user
 * namespace). */
static int block_fs(const char *type)
{
    int fd = open("/proc/filesystems", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char list[8192];
    ssize_t n = read(fd, list, sizeof(list) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    list[n] = '\0';
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (tab && strcmp(tab + 1, type) == 0)
            return strncmp(line, "nodev", 5) != 0;
    }
    return 0;
}

/* mount(2) of a new filesystem: the paths its options name (overlayfs's
 * layers, a block filesystem's devices: the other filesystems refuse these
 * keys), then a block filesystem's source and late devices, after the
 * target. */
static int mount_new(struct yr_call *c, const uint64_t *a, uint32_t flags)
{
    char type[64];
    if (flags & (MS_REMOUNT_ | MS_BIND_ | MS_MOVE_ | MS_PROPAGATION_) || !a[2])
        return 0;
    if (yr_read_path(c, a[2], type, sizeof(type)) <= 0)
        return 0;
    int overlay = strcmp(type, "overlay") == 0, block = !overlay && block_fs(type);
    if (!overlay && !block)
        return 0;
    char *room = c->named[1];
    char opts[4096];                             /* copy_mount_options: one page */
    int have_opts = a[4] && yr_read_path(c, a[4], opts, sizeof(opts)) >= 0;  /* else not parsed */
    int err = have_opts ? option_paths(c, &room, opts, overlay ? KEY_OVERLAY : KEY_DEVICE) : 0;
    if (err < 0 || overlay || !(c->id.caps >> CAP_SYS_ADMIN & 1))
        return err;
    char source[YR_PATH_MAX];
    int n = a[0] ? yr_read_path(c, a[0], source, sizeof(source)) : 0;
    if (n > 0 && (err = add_layer(c, &room, source, (size_t)n, 0)) < 0)
        return err;
    return have_opts ? option_paths(c, &room, opts, KEY_DEVICE_LATE) : 0;
}

/* fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0): a layer given to an
 * overlayfs context, or a device to a block filesystem's (a context of
 * another filesystem refuses these keys itself: EINVAL, where a protected
 * link there is EACCES here); the kernel takes a value of at most 255
 * bytes. fsconfig(fd, FSCONFIG_SET_PATH[_EMPTY], key, path, dirfd): a device
 * given by path (ext4's journal_path; overlayfs takes no layer so). */
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_SET_PATH_ 3
#define FSCONFIG_SET_PATH_EMPTY_ 4
static int fsconfig_paths(struct yr_call *c, const uint64_t *a)
{
    uint32_t cmd = (uint32_t)a[1];
    char key[16], value[256];
    if (yr_read_path(c, a[2], key, sizeof(key)) <= 0)
        return 0;
    if (cmd == FSCONFIG_SET_PATH_ || cmd == FSCONFIG_SET_PATH_EMPTY_)
        return layer_kind(key, strlen(key), KEY_SET_PATH) == LAYER_NONE ? 0
               : add_named(c, (int32_t)a[4], a[3], 1);
    if (cmd != FSCONFIG_SET_STRING_ || yr_read_path(c, a[3], value, sizeof(value)) < 0)
        return 0;
    char *room = c->named[1];
    return add_layers(c, &room, key, strlen(key), value, strlen(value),
                      KEY_OVERLAY | KEY_DEVICE | KEY_DEVICE_LATE);
}

/* bpf(BPF_OBJ_GET, attr, size): the pinned object's path, which
 * bpf_obj_get_user looks up with LOOKUP_FOLLOW, from attr's path_fd with
 * BPF_F_PATH_FD. Any user may ask (unprivileged_bpf_disabled guards the
 * making of maps and programs, not this). Looked up only once the kernel has
 * found the attributes valid: at most a page (E2BIG), no bpf_fd, known
 * flags, nothing after path_fd (EINVAL). */
#define BPF_ATTR_OBJ_ 20                     /* pathname, bpf_fd, file_flags, path_fd */
#define BPF_F_PATH_FD_ (1u << 14)
#define BPF_OBJ_FLAGS_ ((1u << 3) | (1u << 4) | BPF_F_PATH_FD_)   /* RDONLY, WRONLY */
static int bpf_obj_path(struct yr_call *c, const uint64_t *a)
{
    unsigned char attr[4096] = { 0 };
    size_t size = (uint32_t)a[2];                 /* an unsigned int */
    if (size > sizeof(attr) || !a[1] || yr_read_caller(c, a[1], attr, size) < 0)
        return 0;                                /* E2BIG, EFAULT: the kernel's */
    for (size_t i = BPF_ATTR_OBJ_; i < size; i++)
        if (attr[i])
            return 0;
    uint64_t path;
    uint32_t bpf_fd, flags;
    int32_t path_fd;
    memcpy(&path, attr, 8);
    memcpy(&bpf_fd, attr + 8, 4);
    memcpy(&flags, attr + 12, 4);
    memcpy(&path_fd, attr + 16, 4);
    if (bpf_fd || (flags & ~BPF_OBJ_FLAGS_) || (!(flags & BPF_F_PATH_FD_) && path_fd))
        return 0;
    return add_named(c, flags & BPF_F_PATH_FD_ ? path_fd : AT_FDCWD_INT, path, 1);
}

/* The paths the call (one of those above) names, added to c->sock in the
 * order the kernel resolves them: 0 or -errno. */
int yr_named_paths(struct yr_call *c, const uint64_t *a)
{
    switch (c->ev.sys) {
    case YR_SYS_MOUNT: {                         /* source, target, type, flags, data */
        uint32_t flags = (uint32_t)a[3];
        if ((flags & MS_MGC_MSK_) == MS_MGC_VAL_)
            flags &= ~MS_MGC_MSK_;
        int err = add_named(c, AT_FDCWD_INT, a[1], 1);  /* the target: always followed */
        if (err < 0 || (flags & MS_REMOUNT_) || !yr_may_mount(c))
            return err;                          /* path_mount: may_mount() first */
        if ((flags & MS_BIND_) || ((flags & MS_MOVE_) && !(flags & MS_PROPAGATION_)))
            return add_named(c, AT_FDCWD_INT, a[0], 1);  /* do_loopback, do_move_mount_old */
        return mount_new(c, a, flags);
    }
    case YR_SYS_UMOUNT2: {                       /* i386's umount (22) has no flags */
        uint32_t flags = c->ev.nr == 22 && c->ev.arch == AUDIT_ARCH_I386_ ? 0 : (uint32_t)a[1];
        if (flags & ~(uint32_t)UMOUNT_FLAGS_)
            return 0;                            /* the kernel's EINVAL, before any look-up */
        int err = add_named(c, AT_FDCWD_INT, a[0], !(flags & UMOUNT_NOFOLLOW_));
        if (err == 0 && c->nsock == 1)
            /* The object judged last stays held until the call is continued,
             * and a mount we hold is busy (EBUSY): the root is walked last,
             * so that the mount to go is no longer held when the kernel
             * unmounts it. */
            c->sock[c->nsock++] = "/";
        return err;
    }
    case YR_SYS_PIVOT_ROOT: {                    /* new_root, then put_old: both followed */
        if (!yr_may_mount(c))
            return 0;
        int err = add_named(c, AT_FDCWD_INT, a[0], 1);
        return err < 0 ? err : add_named(c, AT_FDCWD_INT, a[1], 1);
    }
    case YR_SYS_MOVE_MOUNT: {                    /* from_dfd, from, to_dfd, to, flags */
        uint32_t flags = (uint32_t)a[4];
        if ((flags & ~(uint32_t)MOVE_MOUNT_MASK_) || !yr_may_mount(c))
            return 0;                            /* EINVAL, EPERM */
        /* an empty path (MOVE_MOUNT_[FT]_EMPTY_PATH: the descriptor) names none */
        int err = add_named(c, (int32_t)a[0], a[1], (flags & MOVE_MOUNT_F_SYMLINKS_) != 0);
        if (err == 0)
            err = add_named(c, (int32_t)a[2], a[3], (flags & MOVE_MOUNT_T_SYMLINKS_) != 0);
        return err;
    }
    case YR_SYS_FSPICK: {                        /* dfd, path, flags */
        uint32_t flags = (uint32_t)a[2];
        if ((flags & ~(uint32_t)FSPICK_FLAGS_) || !yr_may_mount(c))
            return 0;                            /* EPERM first, then EINVAL */
        return add_named(c, (int32_t)a[0], a[1], !(flags & FSPICK_SYMLINK_NOFOLLOW_));
    }
    case YR_SYS_MOUNT_SETATTR: {                 /* dfd, path, flags, attr, size */
        /* looked up only once the flags, the size and the attributes are
         * valid and change something: a no-op is 0 without a look-up */
        uint32_t flags = (uint32_t)a[2];
        uint64_t attr[3];                        /* attr_set, attr_clr, propagation */
        if ((flags & ~(uint32_t)MOUNT_SETATTR_FLAGS_) || a[4] < 32 || a[4] > 4096 ||
            !yr_may_mount(c) || yr_read_caller(c, a[3], attr, sizeof(attr)) < 0 ||
            (!attr[0] && !attr[1] && !attr[2]))
            return 0;
        return add_named(c, (int32_t)a[0], a[1], !(flags & AT_SYMLINK_NOFOLLOW));
    }
    case YR_SYS_QUOTACTL: {                      /* cmd, special, id, addr */
        /* The kernel's order (fs/quota/quota.c): a bad type is EINVAL and no
         * device ENODEV before any path is looked up; the quota file's own
         * error comes after the device's and after the permission check
         * (EPERM without CAP_SYS_ADMIN), so it is walked only for a caller
         * that has it. cmd is a register: no thread can change it later. */
        uint32_t cmd = (uint32_t)a[0];
        if ((cmd & Q_SUBCMDMASK) >= Q_MAXQUOTAS || !a[1])
            return 0;
        int err = add_named(c, AT_FDCWD_INT, a[1], 1);    /* lookup_bdev */
        if (err == 0 && cmd >> 8 == Q_QUOTAON_ && (c->id.caps >> CAP_SYS_ADMIN & 1))
            err = add_named(c, AT_FDCWD_INT, a[3], 1);    /* the quota file */
        return err;
    }
    case YR_SYS_ACCT:
        if (!(c->id.caps >> CAP_SYS_PACCT & 1))
            return 0;
        return add_named(c, AT_FDCWD_INT, a[0], 1);       /* file_open_name; NULL: off */
    case YR_SYS_SWAPON: case YR_SYS_SWAPOFF:
        if (!(c->id.caps >> CAP_SYS_ADMIN & 1))
            return 0;
        /* fall through */
    case YR_SYS_OLDSTAT:
        return add_named(c, AT_FDCWD_INT, a[0], 1);       /* file_open_name, user_path */
    case YR_SYS_OLDLSTAT: case YR_SYS_LCHOWN: case YR_SYS_LSETXATTR: case YR_SYS_LREMOVEXATTR:
        return add_named(c, AT_FDCWD_INT, a[0], 0);      /* only before a trailing slash */
    case YR_SYS_FSCONFIG:
        return fsconfig_paths(c, a);
    case YR_SYS_BPF:
        return bpf_obj_path(c, a);
    }
    return 0;
}
