/* linkat(fd, "", ..., AT_EMPTY_PATH): may the caller name that file?
 *
 * Since 6.10 the kernel lets a caller give a name to a file by its
 * descriptor only if the file was opened with the caller's current
 * credentials (file->f_cred == current_cred()), or with CAP_DAC_READ_SEARCH
 * in the opener's user namespace; else ENOENT (fs/namei.c, path_init with
 * LOOKUP_LINKAT_EMPTY). It keeps a process from naming a file that was only
 * handed to it. Which credential structure opened a file is out of user
 * space's reach, so the rule here allows only what the kernel allows:
 *
 *   - a caller in the initial user namespace with CAP_DAC_READ_SEARCH in
 *     effect (capable in every namespace);
 *   - a file the caller got through the supervisor (an open performed and
 *     installed for it, an O_PATH or open_tree open checked and continued:
 *     natively each of these opens is the caller's own), by this process,
 *     while its credentials are what they were then and it has not called
 *     execve since (execve replaces the credentials; it is routed whenever
 *     links are, so the supervisor sees every one).
 *
 * Everything else is ENOENT, where the kernel may allow it: a file the
 * caller opened without the supervisor (a plain open while opens are not
 * routed) and then names by descriptor. What is recorded is the inode, for
 * the last RECORDS opens: a caller that also holds another descriptor of
 * the same inode, handed to it, may name it through that one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/capability.h>

#include "engine.h"

#define PROC_USER_INIT_INO 0xEFFFFFFDU
#define RECORDS 512
#define EXECS 256

/* Who the caller was when it got the file: its identity as the cache has
 * it (ids, groups, capabilities), and its process's count of execve. */
struct print {
    struct yr_fsid id;
    uint64_t eff, perm;
    uint32_t execs;
};

struct record {
    pid_t tgid;
    dev_t dev;
    ino_t ino;
    struct print print;
};

static struct record records[RECORDS];
static unsigned next_record;
static struct { pid_t tgid; uint32_t count; } execs[EXECS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t execs_of(pid_t tgid)
{
    unsigned slot = (unsigned)tgid % EXECS;
    return execs[slot].tgid == tgid ? execs[slot].count : 0;
}

static void print_of(const struct yr_call *c, pid_t tgid, struct print *p)
{
    p->id = c->id;
    p->eff = c->ev.cap_effective;
    p->perm = c->ev.cap_permitted;
    p->execs = execs_of(tgid);
}

static int same_print(const struct print *a, const struct print *b)
{
    const struct yr_fsid *x = &a->id, *y = &b->id;
    return x->ruid == y->ruid && x->rgid == y->rgid && x->fsuid == y->fsuid &&
           x->fsgid == y->fsgid && x->caps == y->caps && x->ngroups == y->ngroups &&
           x->ngroups <= YR_MAX_GROUPS &&
           memcmp(x->groups, y->groups, x->ngroups * sizeof(x->groups[0])) == 0 &&
           a->eff == b->eff && a->perm == b->perm && a->execs == b->execs;
}

/* An execve of the caller's process is about to be continued. */
void yr_exec_seen(struct yr_call *c)
{
    pid_t tgid = yr_caller_tgid(c);
    unsigned slot = (unsigned)tgid % EXECS;
    pthread_mutex_lock(&lock);
    if (execs[slot].tgid != tgid)
        execs[slot].tgid = tgid, execs[slot].count = 0;
    execs[slot].count++;
    pthread_mutex_unlock(&lock);
}

/* The caller gets (or the kernel opens for it) a file on this inode. */
void yr_opened_for(struct yr_call *c, const struct stat *st)
{
    pid_t tgid = yr_caller_tgid(c);
    if (tgid <= 0)
        return;
    pthread_mutex_lock(&lock);
    struct record *r = &records[next_record++ % RECORDS];      /* the oldest gives way */
    r->tgid = tgid;
    r->dev = st->st_dev;
    r->ino = st->st_ino;
    print_of(c, tgid, &r->print);
    pthread_mutex_unlock(&lock);
}

/* May the caller name the file its descriptor (held: our O_PATH copy, st)
 * stands for by AT_EMPTY_PATH? 1 or 0. */
int yr_empty_path_link_allowed(struct yr_call *c, const struct stat *st)
{
    struct stat ns;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)c->ev.tid);
    if ((c->ev.cap_effective >> CAP_DAC_READ_SEARCH & 1) && stat(path, &ns) == 0 &&
        ns.st_ino == PROC_USER_INIT_INO)
        return 1;
    pid_t tgid = yr_caller_tgid(c);
    struct print now;
    int known = 0;
    pthread_mutex_lock(&lock);
    print_of(c, tgid, &now);
    for (int i = 0; i < RECORDS && !known; i++) {
        const struct record *r = &records[i];
        known = r->tgid == tgid && r->dev == st->st_dev && r->ino == st->st_ino &&
                same_print(&r->print, &now);
    }
    pthread_mutex_unlock(&lock);
    return known;
}
