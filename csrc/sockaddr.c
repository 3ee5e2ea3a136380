/* AF_UNIX path addresses: connect, bind, sendto, sendmsg, sendmmsg, and
 * i386's socketcall of the same, read from the caller's memory.
 *
 * The kernel resolves such an address as a path: connect and the sends
 * follow a trailing symlink (unix_find_bsd, LOOKUP_FOLLOW), bind walks to
 * its parent and creates the name. The supervisor cannot make these calls
 * for the caller: the peer would see the supervisor's credentials and pid
 * (SO_PEERCRED, SO_PEERPIDFD, SCM_CREDENTIALS), and a peer that trusts them
 * would give the caller the supervisor's authority. So each path is walked
 * and judged here (follow_link, the gate), then the call is continued: the
 * residual window is documented in docs/path-engine.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "engine.h"

#define UIO_MAXIOV_ 1024
enum { SYS_BIND_ = 2, SYS_CONNECT_ = 3, SYS_SENDTO_ = 11, SYS_SENDMSG_ = 16,
       SYS_SENDMMSG_ = 20 };

/* The path of the address at addr (len bytes: an int to the kernel, the
 * register's upper half ignored), added to the call's list when it is one:
 * AF_UNIX, named, not abstract. Unreadable or odd addresses are the
 * kernel's to refuse; they name no path here. */
static int add_address(struct yr_call *c, uint64_t addr, uint64_t reg_len)
{
    struct sockaddr_un sun;
    int32_t len = (int32_t)reg_len;
    if (!addr || len <= (int32_t)offsetof(struct sockaddr_un, sun_path) ||
        len > (int32_t)sizeof(sun))
        return 0;                                 /* none, or the kernel's EINVAL */
    size_t n = (size_t)len;
    memset(&sun, 0, sizeof(sun));
    if (yr_read_caller(c, addr, &sun, n) < 0 || sun.sun_family != AF_UNIX ||
        sun.sun_path[0] == '\0')
        return 0;
    size_t plen = strnlen(sun.sun_path, n - offsetof(struct sockaddr_un, sun_path));
    for (int i = 0; i < c->nsock; i++)
        if (strlen(c->sock[i]) == plen && memcmp(c->sock[i], sun.sun_path, plen) == 0)
            return 0;                             /* the same path, checked once */
    if (c->nsock >= YR_SOCK_PATHS)
        return -EACCES;                           /* more than we keep: refused */
    memcpy(c->sock_buf[c->nsock], sun.sun_path, plen);
    c->sock_buf[c->nsock][plen] = '\0';
    c->sock[c->nsock] = c->sock_buf[c->nsock];
    c->nsock++;
    return 0;
}

/* msghdr's msg_name and msg_namelen, in the caller's layout. */
static int add_msghdr(struct yr_call *c, uint64_t msg, int compat)
{
    if (compat) {
        uint32_t h[2];
        return yr_read_caller(c, msg, h, sizeof(h)) < 0 ? 0 : add_address(c, h[0], h[1]);
    }
    struct { uint64_t name; uint32_t namelen; } h;
    return yr_read_caller(c, msg, &h, sizeof(h)) < 0 ? 0 : add_address(c, h.name, h.namelen);
}

static int add_mmsghdr(struct yr_call *c, uint64_t vec, uint64_t vlen, int compat)
{
    size_t stride = compat ? 32 : 64;            /* struct mmsghdr, per ABI */
    if (vlen > UIO_MAXIOV_)
        vlen = UIO_MAXIOV_;                      /* the kernel sends no more */
    for (uint64_t i = 0; i < vlen; i++) {
        int err = add_msghdr(c, vec + i * stride, compat);
        if (err < 0)
            return err;
    }
    return 0;
}

/* One call of the family, by its socketcall number, arguments a[]. */
static int add_call(struct yr_call *c, int call, const uint64_t *a, int compat)
{
    switch (call) {
    case SYS_BIND_:
        c->res.follow = 0;                       /* the name is created: its parent walked */
        return add_address(c, a[1], a[2]);
    case SYS_CONNECT_:
        return add_address(c, a[1], a[2]);
    case SYS_SENDTO_:
        return add_address(c, a[4], a[5]);
    case SYS_SENDMSG_:
        return add_msghdr(c, a[1], compat);
    case SYS_SENDMMSG_:
        return add_mmsghdr(c, a[1], a[2], compat);
    }
    return 0;
}

/* The paths the call names (c->sock, c->nsock), all walked from the
 * caller's cwd (or root). 0 or -errno. */
int yr_checked_paths(struct yr_call *c)
{
    const struct yr_event *ev = &c->ev;
    int compat = ev->arch == AUDIT_ARCH_I386_;
    const uint64_t *a = ev->args;               /* i386's: their low halves (yr_event_args) */
    c->nsock = 0;
    c->res.follow = 1;
    c->dirfd = AT_FDCWD_INT;                     /* a walk started again starts here too */
    c->flags = 0;
    c->mode = 0;
    switch (ev->sys) {
    case YR_SYS_BIND:
        return add_call(c, SYS_BIND_, a, compat);
    case YR_SYS_CONNECT:
        return add_call(c, SYS_CONNECT_, a, compat);
    case YR_SYS_SENDTO:
        return add_call(c, SYS_SENDTO_, a, compat);
    case YR_SYS_SENDMSG:
        return add_call(c, SYS_SENDMSG_, a, compat);
    case YR_SYS_SENDMMSG:
        return add_call(c, SYS_SENDMMSG_, a, compat);
    case YR_SYS_SOCKETCALL: {
        uint32_t args[6] = { 0 };
        int call = (int)ev->args[0];
        int n = call == SYS_SENDTO_ ? 6 : call == SYS_SENDMMSG_ ? 4 : 3;
        if (yr_read_caller(c, a[1], args, (size_t)n * 4) < 0)
            return 0;                            /* the kernel's EFAULT */
        uint64_t w[6];
        for (int i = 0; i < 6; i++)
            w[i] = args[i];
        return add_call(c, call, w, 1);
    }
    default:
        return yr_named_paths(c, a);             /* the mount family and the others: named.c */
    }
}
