/* stat results written to the caller in the layout of its ABI: the kernel's
 * own struct stat for x86-64 and x32, struct stat64 for i386, statx. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include "engine.h"

#define STATX_SYNC_BITS (AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC)

/* i386's struct stat64 (packed, 96 bytes); the kernel's cp_stat64 leaves
 * the padding as it was, so only the fields are written. */
struct stat64_i386 {
    uint64_t st_dev;
    uint8_t pad0[4];
    uint32_t st_ino32;
    uint32_t st_mode, st_nlink, st_uid, st_gid;
    uint64_t st_rdev;
    uint8_t pad3[4];
    int64_t st_size;
    uint32_t st_blksize;
    int64_t st_blocks;
    uint32_t st_atime_, st_atime_nsec, st_mtime_, st_mtime_nsec, st_ctime_, st_ctime_nsec;
    uint64_t st_ino;
} __attribute__((packed));

static uint64_t huge_encode_dev(dev_t d)
{
    uint64_t ma = major(d), mi = minor(d);
    return (mi & 0xff) | (ma << 8) | ((mi & ~0xffull) << 12);
}

static int put_stat64(struct yr_call *c, const struct stat *st)
{
    struct stat64_i386 s;
    memset(&s, 0, sizeof(s));
    s.st_dev = huge_encode_dev(st->st_dev);
    s.st_ino32 = (uint32_t)st->st_ino;
    s.st_ino = st->st_ino;
    s.st_mode = st->st_mode;
    s.st_nlink = (uint32_t)st->st_nlink;
    s.st_uid = st->st_uid;
    s.st_gid = st->st_gid;
    s.st_rdev = huge_encode_dev(st->st_rdev);
    s.st_size = st->st_size;
    s.st_blksize = (uint32_t)st->st_blksize;
    s.st_blocks = st->st_blocks;
    s.st_atime_ = (uint32_t)st->st_atim.tv_sec;
    s.st_atime_nsec = (uint32_t)st->st_atim.tv_nsec;
    s.st_mtime_ = (uint32_t)st->st_mtim.tv_sec;
    s.st_mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
    s.st_ctime_ = (uint32_t)st->st_ctim.tv_sec;
    s.st_ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
    char *b = (char *)&s;
    uint64_t at = c->buf;
    struct iovec l[3] = { { b, 8 }, { b + 12, 28 }, { b + 44, 52 } };
    struct iovec r[3] = { { (void *)(uintptr_t)at, 8 }, { (void *)(uintptr_t)(at + 12), 28 },
                          { (void *)(uintptr_t)(at + 44), 52 } };
    return yr_write_caller(c, l, 3, r, 3);
}

/* The object fd stands for, stat'ed (or its stat st, taken already) and
 * written in the caller's ABI's layout. 0 or -errno (EFAULT for a bad
 * buffer). */
int yr_stat_to_caller(struct yr_call *c, int fd, const struct stat *taken)
{
    if (c->op == OP_STATX) {
        struct statx sx;
        memset(&sx, 0, sizeof(sx));
        if (statx(fd, "", AT_EMPTY_PATH | (c->flags & (STATX_SYNC_BITS | AT_NO_AUTOMOUNT)),
                  c->mode, &sx) < 0)
            return -errno;
        yr_ids_for_caller(c, &sx.stx_uid, &sx.stx_gid);
        struct iovec l = { &sx, sizeof(sx) }, r = { (void *)(uintptr_t)c->buf, sizeof(sx) };
        return yr_write_caller(c, &l, 1, &r, 1);
    }
    struct stat st;
    if (taken)
        st = *taken;
    else if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
        return -errno;
    yr_ids_for_caller(c, &st.st_uid, &st.st_gid);
    if (c->op == OP_STAT64)
        return put_stat64(c, &st);
    /* x86-64 and x32: the kernel's own layout, padding zeroed */
    struct iovec l = { &st, sizeof(st) }, r = { (void *)(uintptr_t)c->buf, sizeof(st) };
    return yr_write_caller(c, &l, 1, &r, 1);
}
