/* PIDFD_GET_INFO (6.13), which Debian 12's headers predate: the first 64
 * bytes of struct pidfd_info, enough for the ids. */
#ifndef YAMA_PIDFD_H
#define YAMA_PIDFD_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>

struct yr_pidfd_info {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define YR_PIDFD_INFO_PID (1UL << 0)
#define YR_PIDFD_INFO_CREDS (1UL << 1)
#define YR_PIDFD_GET_INFO _IOWR(0xFF, 11, struct yr_pidfd_info)
#define YR_PIDFD_THREAD O_EXCL      /* pidfd_open of any thread (6.9) */
#define YR_PIDFS_MAGIC 0x50494446   /* pidfds on pidfs (6.9): an inode per struct pid */

#endif
