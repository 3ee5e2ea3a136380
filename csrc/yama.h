/* yama-run fast path: the mechanism under the Python supervisor.
 *
 * spawn.c     fork, no_new_privs, install the filter, hand the listener back, exec
 * notify.c    the user-notify receive loop and the replies
 * procinfo.c  facts about tasks, read from the kernel as cheaply as it allows
 *
 * Everything here is called from Python through cffi (the GIL is released
 * around each call), so a blocking receive runs in a Python thread. */
#ifndef YAMA_RUN_H
#define YAMA_RUN_H

#include <stdint.h>
#include <sys/types.h>

/* Logical syscalls: one id for every ABI's number of the same call.
 * Python fills the (arch, nr) -> id table from libseccomp's own tables. */
enum yr_sys {
    YR_SYS_NONE = 0,
    YR_SYS_PTRACE,
    YR_SYS_PRCTL,
    YR_SYS_PROCESS_VM_READV,
    YR_SYS_PROCESS_VM_WRITEV,
    YR_SYS_PIDFD_GETFD,
    YR_SYS_LINK,
    YR_SYS_LINKAT,
    YR_SYS_COUNT
};

/* What one notification is, decoded. */
struct yr_event {
    uint64_t id;
    int32_t tid;            /* the calling thread, as the notification names it */
    int32_t tgid;           /* its process */
    uint32_t arch;          /* AUDIT_ARCH_* */
    int32_t nr;             /* the ABI's syscall number */
    int32_t sys;            /* enum yr_sys */
    uint64_t args[6];
    uint64_t cap_effective; /* the caller's effective capabilities */
};

struct yr_ctx;

/* creds.c: a caller's credentials, and a supervisor thread acting as it. */
#define YR_MAX_GROUPS 256
struct yr_creds {
    uint32_t ruid, euid, suid, fsuid;
    uint32_t rgid, egid, sgid, fsgid;
    uint32_t ngroups;
    uint32_t groups[YR_MAX_GROUPS];
    uint64_t cap_effective;
};
struct yr_creds_saved {
    int32_t active;
    uint32_t ruid, euid, suid, rgid, egid, sgid;
    uint32_t ngroups;
    uint32_t groups[YR_MAX_GROUPS];
    uint64_t cap_effective, cap_permitted;
};
int yr_creds_read(pid_t tid, struct yr_creds *c);
int yr_creds_enter(const struct yr_creds *c, struct yr_creds_saved *saved);
int yr_creds_leave(struct yr_creds_saved *saved);
int yr_getfd_as(const struct yr_creds *c, int pidfd, int target_fd);

/* spawn.c */
struct yr_spawn_result {
    int32_t pid;
    int32_t listener;       /* -1 when no filter was installed */
    int32_t status_fd;      /* reads 0 bytes once exec succeeded, else a yr_spawn_failure */
};
struct yr_spawn_failure {
    int32_t stage;          /* YR_STAGE_* */
    int32_t err;            /* errno */
};
enum { YR_STAGE_SETUP = 1, YR_STAGE_FILTER = 2, YR_STAGE_EXEC = 3 };
/* bpf NULL: no filter. path: the PATH to search when file has no slash. */
int yr_spawn_path(const char *file, char *const argv[], char *const envp[],
                  const char *path, const void *bpf, size_t insns,
                  uint32_t flags, struct yr_spawn_result *out);
int yr_filter_flags_supported(uint32_t flags);

/* notify.c */
struct yr_ctx *yr_ctx_new(int listener);
void yr_ctx_free(struct yr_ctx *ctx);
int yr_ctx_map(struct yr_ctx *ctx, uint32_t arch, int32_t nr, int32_t sys);
int yr_ctx_sync_wakeup(struct yr_ctx *ctx);
int yr_next(struct yr_ctx *ctx, struct yr_event *ev);
int yr_reply_continue(struct yr_ctx *ctx, uint64_t id);
int yr_reply(struct yr_ctx *ctx, uint64_t id, int64_t val, int32_t err);
int yr_id_valid(struct yr_ctx *ctx, uint64_t id);
int yr_reply_addfd(struct yr_ctx *ctx, uint64_t id, int fd, uint32_t newfd_flags);
void yr_ctx_stats(struct yr_ctx *ctx, uint64_t out[4]);

/* procinfo.c */
pid_t yr_tgid_of(pid_t tid);
pid_t yr_ppid_of(pid_t pid);
pid_t yr_tracer_of(pid_t pid);
int yr_is_descendant(pid_t ancestor_tgid, pid_t tid);
int yr_cap_effective(pid_t tid, uint64_t *out);
int yr_fetch_fd(pid_t tgid, int fd);
int yr_set_subreaper(void);

#endif
