/* Owners as the kernel gives them to us, for the rules that compare them.
 *
 * fstat and statx name an owner as our user namespace sees it, through the
 * object's mount's idmap first (from_kuid_munged of i_uid_into_vfsuid): an
 * id we cannot name (yama-run started in a user namespace: the host's ids),
 * or one the mount's idmap does not map (an invalid vfsuid), reads as the
 * overflow id, 65534. Two such owners then read equal, and equal a caller
 * whose fsuid reads 65534, where the kernel matches nothing: may_follow_link
 * and may_create_in_sticky ask vfsuid_valid and vfsuid_eq, may_linkat's
 * CAP_FOWNER is capable_wrt_inode_uidgid (the inode's uid and gid mapped in
 * the caller's namespace). So an owner that reads as the overflow id is
 * YR_UNMAPPED, which matches nothing, unless it is proved the real id:
 * - our uid_map (gid_map) is the identity over every id, so nothing we stat
 *   is unmapped to us; and
 * - the object's mount is one of our mount namespace that is not idmapped
 *   (statmount's MOUNT_ATTR_IDMAP). A mount elsewhere is not proved (a
 *   filesystem a user namespace mounted, FUSE's, may hold invalid ids).
 * Every other value is the id itself: the common case costs one compare.
 * The race: none. The mount is the one our descriptor pins (its unique id,
 * never reused), and an attached mount's idmap is never changed (the
 * kernel sets one only on a detached mount, which statmount does not find
 * in our namespace). The overflow ids are read once: a later change of
 * kernel.overflowuid by the administrator is not seen. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "engine.h"

#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif
#define STATMOUNT_MNT_BASIC 0x2U
#define MOUNT_ATTR_IDMAP_BIT 0x00100000ULL

struct mnt_req { uint32_t size, spare; uint64_t mnt_id, param; };
/* statmount's answer, as far as mnt_attr (its layout since 6.8). */
struct mnt_basic {
    uint32_t size, mnt_opts;
    uint64_t mask;
    uint32_t sb_dev_major, sb_dev_minor;
    uint64_t sb_magic;
    uint32_t sb_flags, fs_type;
    uint64_t mnt_id, mnt_parent_id;
    uint32_t mnt_id_old, mnt_parent_id_old;
    uint64_t mnt_attr;
};

static uint32_t read_overflow(int gid)
{
    char buf[16];
    const char *path = gid ? "/proc/sys/kernel/overflowgid" : "/proc/sys/kernel/overflowuid";
    return yr_read_text(path, buf, sizeof(buf)) > 0 ? (uint32_t)strtoul(buf, NULL, 10) : 65534;
}

/* Is /proc/self/<name> the identity over every id ("0 0 4294967295")? */
static int identity_map(const char *name)
{
    char path[32], buf[64];
    snprintf(path, sizeof(path), "/proc/self/%s", name);
    if (yr_read_text(path, buf, sizeof(buf)) <= 0)
        return 0;
    unsigned long first, lower, count;
    char rest;
    return sscanf(buf, "%lu %lu %lu %c", &first, &lower, &count, &rest) == 3 &&
           first == 0 && lower == 0 && count == 0xFFFFFFFFUL;
}

/* Facts of our own namespace, read once (threads racing here compute the
 * same values). */
static _Atomic uint32_t overflow[2];
static _Atomic int identity[2];       /* 0 unknown, 1 yes, 2 no */

static uint32_t overflow_id(int gid)
{
    uint32_t v = atomic_load(&overflow[gid]);
    if (!v) {
        v = read_overflow(gid);
        atomic_store(&overflow[gid], v);
    }
    return v;
}

static int ours_is_identity(int gid)
{
    int v = atomic_load(&identity[gid]);
    if (!v) {
        v = identity_map(gid ? "gid_map" : "uid_map") ? 1 : 2;
        atomic_store(&identity[gid], v);
    }
    return v == 1;
}

/* fd's mount, in our mount namespace: 1 idmapped, 0 not, -1 not known
 * (another namespace's or a detached mount, a kernel before 6.8). */
static int mount_idmapped(int fd)
{
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID_UNIQUE, &sx) < 0 ||
        !(sx.stx_mask & STATX_MNT_ID_UNIQUE))
        return -1;
    struct mnt_req req = { .size = sizeof(req), .mnt_id = sx.stx_mnt_id,
                           .param = STATMOUNT_MNT_BASIC };
    union { struct mnt_basic sm; char room[1024]; } buf;
    if (syscall(SYS_statmount, &req, &buf, sizeof(buf), 0) < 0 ||
        !(buf.sm.mask & STATMOUNT_MNT_BASIC))
        return -1;
    return (buf.sm.mnt_attr & MOUNT_ATTR_IDMAP_BIT) != 0;
}

uint32_t yr_owner(int fd, uint32_t id, int gid)
{
    if (id != overflow_id(gid))
        return id;
    return ours_is_identity(gid) && mount_idmapped(fd) == 0 ? id : YR_UNMAPPED;
}

int yr_same_owner(uint32_t owner, uint32_t id)
{
    return owner != YR_UNMAPPED && owner == id;
}

/* may_linkat's first test: with every id ours to name, an owner that reads
 * as the overflow id through an idmapped mount is one its idmap does not
 * map (an invalid vfsuid or vfsgid): EOVERFLOW, before the sysctl. Taken
 * so also where the idmap maps an id onto 65534 itself (fail closed). Out
 * of our namespace's reach we cannot tell: the rule's EPERM, or the
 * kernel's own EOVERFLOW when the rule allows. */
int yr_owner_overflows(int fd, const struct stat *st)
{
    int uid = st->st_uid == overflow_id(0) && ours_is_identity(0);
    int gid = st->st_gid == overflow_id(1) && ours_is_identity(1);
    return (uid || gid) && mount_idmapped(fd) == 1;
}

/* May id open the object st (held: fd) for want (4 read, 2 write, 1 search)
 * by its mode bits (generic_permission's choice of owner, group or other
 * bits, an unmapped owner or group matching none of id's)? Capabilities are
 * not counted: the callers that count them do so first. */
int yr_mode_allows(const struct yr_fsid *id, int fd, const struct stat *st, unsigned int want)
{
    uint32_t gid = yr_owner(fd, st->st_gid, 1);
    int in_group = yr_same_owner(gid, id->fsgid);
    for (uint32_t i = 0; i < id->ngroups && !in_group; i++)
        in_group = yr_same_owner(gid, id->groups[i]);
    int shift = yr_same_owner(yr_owner(fd, st->st_uid, 0), id->fsuid) ? 6 : in_group ? 3 : 0;
    return (st->st_mode >> shift & want) == want;
}
