/* path_probe: perform path syscalls read from stdin, one case per line, and
 * print one result line per case, for native/yama-run parity tests.
 *
 *   path_probe [-C DIR] [-u UMASK] < cases
 *
 * A case line is "ID OP ARG...", words separated by blanks; the result line is
 * "ID RESULT [DETAIL]" where RESULT is "ok" or the errno name (EACCES...) and
 * DETAIL depends on OP: for a new descriptor
 * "fd=N fl=0xF cx=C t=TYPE m=MODE u=UID g=GID s=SIZE" (F_GETFL, FD_CLOEXEC, and
 * fstat of the descriptor, which is closed afterwards), for stat-like calls the
 * whole buffer as hex (filled with 0xa5 first, so unwritten bytes show), for
 * readlink/getcwd the string. Every call is a raw syscall.
 *
 * Arguments:
 *   DIR   CWD (AT_FDCWD), BAD (fd 999), NEG (-5), D:path (a directory opened
 *         O_RDONLY|O_DIRECTORY), F:path (a file opened O_RDONLY), P:path
 *         (O_PATH|O_NOFOLLOW) - the extra descriptor is closed after the case
 *   PATH  NULL (address 1), ZERO (a null pointer), KERNEL (a kernel address), LONG (PATH_MAX bytes
 *         without a NUL in them), EMPTY (""), EDGE:path (ends at the last byte
 *         of a page followed by an unmapped one), or the path itself
 *   FLAGS names joined by "|" (RDONLY WRONLY RDWR CREAT EXCL NOFOLLOW PATH
 *         DIRECTORY TRUNC APPEND NONBLOCK CLOEXEC TMPFILE NOCTTY NOATIME SYNC
 *         LARGEFILE; at-flags NOFOLLOW FOLLOW EMPTY EACCESS NOAUTOMOUNT;
 *         resolve flags BENEATH IN_ROOT NO_SYMLINKS NO_MAGICLINKS NO_XDEV
 *         CACHED),
 *         or a number (0x.. or 0..: octal)
 *
 * Ops (x86-64 unless prefixed i386:, which go through int $0x80 with every
 * pointer in MAP_32BIT memory):
 *   open PATH FLAGS [MODE]          openat DIR PATH FLAGS [MODE]
 *   openat2 DIR PATH FLAGS RESOLVE [MODE]                 creat PATH MODE
 *   stat PATH   lstat PATH   newfstatat DIR PATH FLAGS   statx DIR PATH FLAGS MASK
 *   access PATH MODE   faccessat DIR PATH MODE   faccessat2 DIR PATH MODE FLAGS
 *   execve PATH   execveat DIR PATH FLAGS     (in a child: "ok st=STATUS")
 *   chdir PATH (prints the new cwd, then goes back)   chroot PATH (in a child)
 *   truncate PATH LEN   chmod PATH MODE   fchmodat DIR PATH MODE
 *   fchmodat2 DIR PATH MODE FLAGS   chown PATH UID GID   lchown PATH UID GID
 *   fchownat DIR PATH UID GID FLAGS   utimensat DIR PATH FLAGS (fixed times)
 *   utime PATH   utimes PATH   futimesat DIR PATH
 *   linkat ODIR OLD NDIR NEW FLAGS  (NEW is unlinked again after a success)
 *   symlink TARGET PATH   symlinkat TARGET DIR PATH  (unlinked after success)
 *   getxattr PATH NAME   lgetxattr PATH NAME   setxattr PATH NAME VALUE
 *   listxattr PATH   removexattr PATH NAME   getxattrat DIR PATH FLAGS NAME
 *   inotify PATH [dontfollow]   fanotify PATH [dontfollow]   statfs PATH   readlink PATH
 *   name_to_handle_at DIR PATH FLAGS   open_tree DIR PATH FLAGS
 *   race N GOOD BAD TARGET  N opens and stats of a buffer another thread keeps
 *                    rewriting between GOOD and BAD: "ok opened=.. opened_bad=..
 *                    statted=.. statted_bad=.." (_bad: BAD's TARGET was reached)
 *   alarmopen PATH   open O_RDONLY with SIGALRM (no SA_RESTART) due in 1 s
 *   tmpfile DIR NEW  O_TMPFILE in DIR, written, linked as NEW via /proc/self/fd
 *   tmpfile_by_fd DIR NEW  DIR held O_PATH, O_TMPFILE through /proc/self/fd/D,
 *                    linked as NEW by its descriptor (linkat AT_EMPTY_PATH)
 *   unlink PATH   rmdir PATH     (for clean-up between cases)
 *   status PATH      open, read, "ok Pid=N Tgid=N me=TGID tid=TID"
 *   read PATH        open, read, "ok <first line, blanks as _>"
 *   thread OP ARG..  perform the case in a second thread (prints tid= too)
 *   threads N M PATH N threads each open+read PATH M times: "ok n=N*M" when
 *                    every read gives the same bytes and no descriptor leaks
 *   i386:open PATH FLAGS [MODE]  i386:openat DIR PATH FLAGS [MODE]
 *   i386:creat PATH MODE  i386:stat PATH  i386:stat64 PATH  i386:lstat64 PATH
 *   i386:fstatat64 DIR PATH FLAGS  i386:statx DIR PATH FLAGS MASK
 *   i386:access PATH MODE  i386:chdir PATH  i386:truncate PATH LEN
 *   i386:chmod PATH MODE
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#define MAXW 16
#define OUT 16384

extern char **environ;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- names ---------------------------------------------------------------- */

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

struct flagname { const char *name; long value; };

static const struct flagname OPEN_FLAGS[] = {
    {"RDONLY", O_RDONLY}, {"WRONLY", O_WRONLY}, {"RDWR", O_RDWR}, {"CREAT", O_CREAT},
    {"EXCL", O_EXCL}, {"NOFOLLOW", O_NOFOLLOW}, {"PATH", O_PATH},
    {"DIRECTORY", O_DIRECTORY}, {"TRUNC", O_TRUNC}, {"APPEND", O_APPEND},
    {"NONBLOCK", O_NONBLOCK}, {"CLOEXEC", O_CLOEXEC}, {"TMPFILE", O_TMPFILE},
    {"NOCTTY", O_NOCTTY}, {"NOATIME", O_NOATIME}, {"SYNC", O_SYNC},
    {"LARGEFILE", 0100000}, {NULL, 0}};
static const struct flagname AT_FLAGS[] = {
    {"NOFOLLOW", AT_SYMLINK_NOFOLLOW}, {"FOLLOW", AT_SYMLINK_FOLLOW},
    {"EMPTY", AT_EMPTY_PATH}, {"EACCESS", AT_EACCESS}, {"NOAUTOMOUNT", AT_NO_AUTOMOUNT},
    {"RECURSIVE", AT_RECURSIVE}, {"CLONE", 1 /* OPEN_TREE_CLONE */}, {NULL, 0}};
static const struct flagname RESOLVE_FLAGS[] = {
    {"BENEATH", RESOLVE_BENEATH}, {"IN_ROOT", RESOLVE_IN_ROOT},
    {"NO_SYMLINKS", RESOLVE_NO_SYMLINKS}, {"NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS},
    {"NO_XDEV", RESOLVE_NO_XDEV}, {"CACHED", RESOLVE_CACHED}, {NULL, 0}};
static const struct flagname ACCESS_MODES[] = {
    {"F", F_OK}, {"R", R_OK}, {"W", W_OK}, {"X", X_OK}, {NULL, 0}};

static long flags(const char *s, const struct flagname *table)
{
    if (!s) return 0;
    if (s[0] >= '0' && s[0] <= '9') return strtol(s, NULL, 0);
    long v = 0;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", s);
    char *save = NULL;
    for (char *w = strtok_r(copy, "|", &save); w; w = strtok_r(NULL, "|", &save)) {
        const struct flagname *f;
        for (f = table; f->name && strcmp(f->name, w) != 0; f++)
            ;
        if (!f->name) { fprintf(stderr, "unknown flag %s\n", w); exit(2); }
        v |= f->value;
    }
    return v;
}

/* ---- arguments -------------------------------------------------------------- */

struct ctx {
    int extra_fd;          /* a DIR argument's descriptor, closed after the case */
    int dir_err;           /* opening a DIR argument failed with this errno */
    char *free_me[4];
    int nfree;
};

static const char *path_arg(struct ctx *c, const char *s)
{
    if (!s) return NULL;
    if (!strcmp(s, "NULL")) return (const char *)1;
    if (!strcmp(s, "ZERO")) return NULL;
    if (!strcmp(s, "KERNEL")) return (const char *)0xffffffffff600000UL;
    if (!strcmp(s, "EMPTY")) return "";
    if (!strcmp(s, "LONG")) {
        char *p = malloc(PATH_MAX + 1);
        memset(p, 'a', PATH_MAX);
        p[PATH_MAX] = '\0';
        c->free_me[c->nfree++] = p;
        return p;
    }
    if (!strncmp(s, "EDGE:", 5)) {   /* the NUL is the last byte of a mapped page */
        static char *page;
        if (!page) {
            page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            munmap(page + 4096, 4096);
        }
        size_t n = strlen(s + 5);
        char *p = page + 4096 - n - 1;
        memcpy(p, s + 5, n + 1);
        return p;
    }
    return s;
}

static int dir_arg(struct ctx *c, const char *s)
{
    if (!strcmp(s, "CWD")) return AT_FDCWD;
    if (!strcmp(s, "BAD")) return 999;
    if (!strcmp(s, "NEG")) return -5;
    int how = O_RDONLY | O_DIRECTORY;
    if (!strncmp(s, "F:", 2)) how = O_RDONLY;
    else if (!strncmp(s, "P:", 2)) how = O_PATH | O_NOFOLLOW;
    else if (strncmp(s, "D:", 2)) { fprintf(stderr, "bad DIR %s\n", s); exit(2); }
    int fd = (int)syscall(SYS_openat, AT_FDCWD, s + 2, how | O_CLOEXEC);
    if (fd < 0) {         /* reported as the case's result: DIRFD_<errno> */
        c->dir_err = errno;
        return 998;
    }
    c->extra_fd = fd;
    return fd;
}

static long num(const char *s) { return s ? strtol(s, NULL, 0) : 0; }

/* ---- output ----------------------------------------------------------------- */

static void emit(const char *id, const char *text)
{
    char line[OUT + 256];
    int n = snprintf(line, sizeof(line), "%s %s\n", id, text);
    if (n > (int)sizeof(line)) n = sizeof(line);
    pthread_mutex_lock(&out_lock);
    if (write(1, line, (size_t)n) < 0) exit(3);
    pthread_mutex_unlock(&out_lock);
}

static const char *ftype(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "lnk";
    case S_IFIFO: return "fifo";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
    case S_IFSOCK: return "sock";
    }
    return "?";
}

/* Describe a new descriptor and close it. */
static void describe_fd(char *out, size_t size, long fd)
{
    struct stat st;
    int fl = fcntl((int)fd, F_GETFL), fdfl = fcntl((int)fd, F_GETFD);
    if (fstat((int)fd, &st) < 0)
        memset(&st, 0, sizeof(st));
    snprintf(out, size, "ok fd=%ld fl=%#o cx=%d t=%s m=%04o u=%u g=%u s=%lld", fd, fl,
             fdfl >= 0 && (fdfl & FD_CLOEXEC), ftype(st.st_mode), st.st_mode & 07777,
             st.st_uid, st.st_gid, (long long)st.st_size);
    close((int)fd);
}

static void hex(char *out, size_t size, const char *prefix, const void *buf, size_t n)
{
    size_t at = (size_t)snprintf(out, size, "%s", prefix);
    for (size_t i = 0; i < n && at + 3 < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%02x", ((const unsigned char *)buf)[i]);
}

/* chdir cases go back to where they started (by name: no descriptor of
 * ours should depend on what is under test). */
static char saved_cwd[PATH_MAX];

static void remember_cwd(void)
{
    if (!getcwd(saved_cwd, sizeof(saved_cwd))) exit(4);
}

static void restore_cwd(void)
{
    if (chdir(saved_cwd) < 0) exit(4);
}

/* ---- i386 system calls from 64-bit code ------------------------------------- */

static long int80(long nr, long a, long b, long c, long d, long e)
{
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                     : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

static char *low;                 /* MAP_32BIT scratch: strings and buffers */

static long low_str(const char *s, int slot)
{
    if ((uintptr_t)s == 1)                   /* NULL: a bad pointer */
        return 1;
    if ((uintptr_t)s == 0xffffffffff600000UL) /* KERNEL: above TASK_SIZE of i386 */
        return 0xffffe000L;
    size_t n = strlen(s);
    if (n > 4095 * 2) n = 4095 * 2;
    char *p = low + slot * 8192;
    memcpy(p, s, n);
    p[n] = '\0';
    return (long)(uintptr_t)p;
}

static int i386_nr(const char *op)
{
    static const struct { const char *name; int nr; } t[] = {
        {"open", 5}, {"creat", 8}, {"chdir", 12}, {"chmod", 15}, {"access", 33},
        {"truncate", 92}, {"stat", 106}, {"stat64", 195}, {"lstat64", 196},
        {"openat", 295}, {"fstatat64", 300}, {"statx", 383}, {NULL, 0}};
    for (int i = 0; t[i].name; i++)
        if (!strcmp(t[i].name, op)) return t[i].nr;
    return -1;
}

static void do_i386(struct ctx *c, const char *op, char **w, int nw, char *out, size_t size)
{
    int nr = i386_nr(op);
    if (nr < 0 || !low) { snprintf(out, size, "BADOP"); return; }
    char *buf = low + 3 * 8192;
    size_t bufsize = 0;
    long r;
    memset(buf, 0xa5, 512);
    if (!strcmp(op, "open"))
        r = int80(nr, low_str(path_arg(c, w[0]), 0), flags(w[1], OPEN_FLAGS), num(w[2]), 0, 0);
    else if (!strcmp(op, "openat"))
        r = int80(nr, dir_arg(c, w[0]), low_str(path_arg(c, w[1]), 0), flags(w[2], OPEN_FLAGS),
                  num(w[3]), 0);
    else if (!strcmp(op, "creat") || !strcmp(op, "chmod") || !strcmp(op, "access") ||
             !strcmp(op, "truncate"))
        r = int80(nr, low_str(path_arg(c, w[0]), 0),
                  !strcmp(op, "access") ? flags(w[1], ACCESS_MODES) : num(w[1]), 0, 0, 0);
    else if (!strcmp(op, "chdir")) {
        remember_cwd();
        r = int80(nr, low_str(path_arg(c, w[0]), 0), 0, 0, 0, 0);
    }
    else if (!strcmp(op, "stat") || !strcmp(op, "stat64") || !strcmp(op, "lstat64")) {
        bufsize = !strcmp(op, "stat") ? 64 : 96;
        r = int80(nr, low_str(path_arg(c, w[0]), 0), (long)(uintptr_t)buf, 0, 0, 0);
    } else if (!strcmp(op, "fstatat64")) {
        bufsize = 96;
        r = int80(nr, dir_arg(c, w[0]), low_str(path_arg(c, w[1]), 0), (long)(uintptr_t)buf,
                  flags(w[2], AT_FLAGS), 0);
    } else {   /* statx */
        bufsize = sizeof(struct statx);
        r = int80(nr, dir_arg(c, w[0]), low_str(path_arg(c, w[1]), 0), flags(w[2], AT_FLAGS),
                  num(w[3]), (long)(uintptr_t)buf);
    }
    (void)nw;
    if (r < 0 && r > -4096) snprintf(out, size, "%s", errname((int)-r));
    else if (bufsize) hex(out, size, "ok ", buf, bufsize);
    else if (!strcmp(op, "open") || !strcmp(op, "openat") || !strcmp(op, "creat"))
        describe_fd(out, size, r);
    else if (!strcmp(op, "chdir")) {
        char cwd[PATH_MAX];
        snprintf(out, size, "ok %s", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    } else snprintf(out, size, "ok");
    if (!strcmp(op, "chdir")) restore_cwd();
}

/* ---- x86-64 calls ------------------------------------------------------------- */

static void fail_or(char *out, size_t size, long r, const char *okdetail)
{
    if (r < 0) snprintf(out, size, "%s", errname(errno));
    else snprintf(out, size, "ok%s%s", okdetail ? " " : "", okdetail ? okdetail : "");
}

static void result_fd(char *out, size_t size, long r)
{
    if (r < 0) snprintf(out, size, "%s", errname(errno));
    else describe_fd(out, size, r);
}

static void result_buf(char *out, size_t size, long r, const void *buf, size_t n)
{
    if (r < 0) snprintf(out, size, "%s", errname(errno));
    else hex(out, size, "ok ", buf, n);
}

/* execve/execveat in a child; the parent reports how the exec went. */
static void do_exec(struct ctx *c, int at, char **w, char *out, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) { snprintf(out, size, "PIPE"); return; }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        const char *path = at ? path_arg(c, w[1]) : path_arg(c, w[0]);
        char *argv[] = {(char *)"probe-exec", NULL};
        int dfd = at ? dir_arg(c, w[0]) : 0;
        if (at) syscall(SYS_execveat, dfd, path, argv, environ, flags(w[2], AT_FLAGS));
        else syscall(SYS_execve, path, argv, environ);
        int e = errno;
        if (write(p[1], &e, sizeof(e)) < 0) _exit(126);
        _exit(127);
    }
    close(p[1]);
    int e = 0, st = 0;
    ssize_t n = read(p[0], &e, sizeof(e));
    close(p[0]);
    waitpid(pid, &st, 0);
    if (n == sizeof(e)) snprintf(out, size, "%s", errname(e));
    else snprintf(out, size, "ok st=%d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static void do_chroot(struct ctx *c, char **w, char *out, size_t size)
{
    int p[2];
    if (pipe(p) < 0) { snprintf(out, size, "PIPE"); return; }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int e = syscall(SYS_chroot, path_arg(c, w[0])) < 0 ? errno : 0;
        if (write(p[1], &e, sizeof(e)) < 0) _exit(1);
        _exit(0);
    }
    close(p[1]);
    int e = -1;
    if (read(p[0], &e, sizeof(e)) != sizeof(e)) e = -1;
    close(p[0]);
    waitpid(pid, NULL, 0);
    if (e == 0) snprintf(out, size, "ok");
    else snprintf(out, size, "%s", e < 0 ? "NORESULT" : errname(e));
}

static void do_status(struct ctx *c, char **w, char *out, size_t size)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path_arg(c, w[0]), O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(out, size, "%s", errname(errno)); return; }
    char buf[8192];
    ssize_t n = read((int)fd, buf, sizeof(buf) - 1);
    close((int)fd);
    if (n < 0) { snprintf(out, size, "READ_%s", errname(errno)); return; }
    buf[n] = '\0';
    const char *pid = strstr(buf, "\nPid:\t"), *tgid = strstr(buf, "\nTgid:\t");
    snprintf(out, size, "ok Pid=%ld Tgid=%ld me=%d tid=%ld", pid ? atol(pid + 6) : -1L,
             tgid ? atol(tgid + 7) : -1L, getpid(), (long)syscall(SYS_gettid));
}

static void do_read(struct ctx *c, char **w, char *out, size_t size)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path_arg(c, w[0]), O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(out, size, "%s", errname(errno)); return; }
    char buf[256];
    ssize_t n = read((int)fd, buf, sizeof(buf) - 1);
    close((int)fd);
    if (n < 0) { snprintf(out, size, "READ_%s", errname(errno)); return; }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == ' ' || *p == '\t') *p = '_';
    snprintf(out, size, "ok %s", buf);
}

/* open(PATH, O_RDONLY) interrupted after a second by SIGALRM, whose handler
 * has no SA_RESTART: a blocking FIFO open then fails with EINTR. */
static void on_alarm(int sig) { (void)sig; }

static void do_alarmopen(struct ctx *c, char **w, char *out, size_t size)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;          /* no SA_RESTART */
    sigaction(SIGALRM, &sa, &old);
    alarm(1);
    long fd = syscall(SYS_openat, AT_FDCWD, path_arg(c, w[0]), O_RDONLY | O_CLOEXEC);
    int e = errno;
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    if (fd >= 0) close((int)fd);
    snprintf(out, size, "%s", fd < 0 ? errname(e) : "ok");
}

/* O_TMPFILE in DIR, some bytes written, then given the name NEW through
 * /proc/self/fd/N (AT_SYMLINK_FOLLOW), as open(2) shows. */
static void do_tmpfile(struct ctx *c, char **w, char *out, size_t size)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path_arg(c, w[0]), O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) { snprintf(out, size, "%s", errname(errno)); return; }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%ld", fd);
    if (write((int)fd, "tmpfile\n", 8) != 8) { snprintf(out, size, "WRITE"); return; }
    long r = syscall(SYS_linkat, AT_FDCWD, proc, AT_FDCWD, path_arg(c, w[1]), AT_SYMLINK_FOLLOW);
    if (r < 0) { snprintf(out, size, "LINK_%s", errname(errno)); close((int)fd); return; }
    describe_fd(out, size, fd);
}

/* DIR held O_PATH, O_TMPFILE opened through the magic link /proc/self/fd/D,
 * then named NEW by its own descriptor (AT_EMPTY_PATH: the opener's
 * credentials are the caller's own). */
static void do_tmpfile_by_fd(struct ctx *c, char **w, char *out, size_t size)
{
    long d = syscall(SYS_openat, AT_FDCWD, path_arg(c, w[0]), O_PATH | O_DIRECTORY, 0);
    if (d < 0) { snprintf(out, size, "DIR_%s", errname(errno)); return; }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%ld", d);
    long fd = syscall(SYS_openat, AT_FDCWD, proc, O_TMPFILE | O_RDWR, 0600);
    close((int)d);
    if (fd < 0) { snprintf(out, size, "%s", errname(errno)); return; }
    long r = syscall(SYS_linkat, fd, "", AT_FDCWD, path_arg(c, w[1]), AT_EMPTY_PATH);
    if (r < 0) { snprintf(out, size, "LINK_%s", errname(errno)); close((int)fd); return; }
    describe_fd(out, size, fd);
}

/* ---- a racing path rewrite ----------------------------------------------------- */

/* Another thread keeps rewriting the path buffer between GOOD and BAD (same
 * length) while this one opens and stats it N times: a supervisor that
 * decided on one string and then let the kernel read the other would open or
 * stat BAD's target although BAD is refused. BAD's target holds "bad". */
struct flipper { char *buf; const char *good, *bad; volatile int stop, running; };

static void *flip_main(void *arg)
{
    struct flipper *f = arg;
    size_t n = strlen(f->good) + 1;
    f->running = 1;
    while (!f->stop) {
        memcpy(f->buf, f->bad, n);
        memcpy(f->buf, f->good, n);
    }
    return NULL;
}

static void do_race(char **w, char *out, size_t size)
{
    int times = (int)num(w[0]);
    const char *good = w[1], *bad = w[2];
    if (strlen(good) != strlen(bad)) { snprintf(out, size, "BADARGS"); return; }
    struct stat bad_st;
    if (stat(w[3], &bad_st) < 0) { snprintf(out, size, "NOTARGET"); return; }
    static char buf[PATH_MAX];
    memcpy(buf, good, strlen(good) + 1);
    struct flipper f = {buf, good, bad, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, flip_main, &f);
    /* The opens start once the flipper runs: on a loaded machine a new thread
     * can otherwise be scheduled only after a fast (native) loop has ended. */
    while (!f.running) sched_yield();
    int opened = 0, opened_bad = 0, statted = 0, statted_bad = 0;
    for (int i = 0; i < times; i++) {
        long fd = syscall(SYS_openat, AT_FDCWD, buf, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            struct stat st;
            opened++;
            if (fstat((int)fd, &st) == 0 && st.st_ino == bad_st.st_ino) opened_bad++;
            close((int)fd);
        }
        struct stat st;
        if (syscall(SYS_newfstatat, AT_FDCWD, buf, &st, 0) == 0) {
            statted++;
            if (st.st_ino == bad_st.st_ino) statted_bad++;
        }
    }
    f.stop = 1;
    pthread_join(t, NULL);
    snprintf(out, size, "ok opened=%d opened_bad=%d statted=%d statted_bad=%d", opened,
             opened_bad, statted, statted_bad);
}

/* ---- many threads ---------------------------------------------------------- */

struct reader { const char *path; int times; char want[128]; ssize_t want_n; int bad; int err; };

static ssize_t read_once(const char *path, char *buf, size_t n, int *err)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *err = errno; return -1; }
    ssize_t got = pread((int)fd, buf, n, 0);
    close((int)fd);
    return got;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char buf[128];
    for (int i = 0; i < r->times; i++) {
        int err = 0;
        ssize_t n = read_once(r->path, buf, sizeof(buf), &err);
        if (n != r->want_n || memcmp(buf, r->want, (size_t)r->want_n) != 0) {
            r->bad++;
            if (err) r->err = err;
        }
    }
    return NULL;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void do_threads(char **w, char *out, size_t size)
{
    int nthreads = (int)num(w[0]), times = (int)num(w[1]);
    if (nthreads < 1 || nthreads > 64) nthreads = 1;
    struct reader r[64];
    pthread_t t[64];
    int err = 0;
    int fds_before = count_fds();
    r[0].path = w[2];
    r[0].want_n = read_once(w[2], r[0].want, sizeof(r[0].want), &err);
    if (r[0].want_n < 0) { snprintf(out, size, "%s", errname(err)); return; }
    for (int i = 0; i < nthreads; i++) {
        r[i] = r[0];
        r[i].times = times;
        r[i].bad = r[i].err = 0;
        pthread_create(&t[i], NULL, reader_main, &r[i]);
    }
    int bad = 0, lasterr = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        bad += r[i].bad;
        if (r[i].err) lasterr = r[i].err;
    }
    int fds_after = count_fds();
    if (bad) snprintf(out, size, "BAD n=%d err=%s", bad, lasterr ? errname(lasterr) : "0");
    else if (fds_after != fds_before) snprintf(out, size, "LEAK %d->%d", fds_before, fds_after);
    else snprintf(out, size, "ok n=%d", nthreads * times);
}

/* ---- one case --------------------------------------------------------------- */

static void run_case(char **w, int nw, char *out, size_t size);

struct threaded { char **w; int nw; char *out; size_t size; };

static void *threaded_main(void *arg)
{
    struct threaded *t = arg;
    run_case(t->w, t->nw, t->out, t->size);
    size_t at = strlen(t->out);
    snprintf(t->out + at, t->size - at, " thread=%ld", (long)syscall(SYS_gettid));
    return NULL;
}

#define W(i) ((i) < nw ? w[i] : NULL)

static void run_case(char **w, int nw, char *out, size_t size)
{
    struct ctx c = {.extra_fd = -1};
    const char *op = w[0];
    char **a = w + 1;
    int na = nw - 1;
    unsigned char buf[512];
    long r;
    memset(buf, 0xa5, sizeof(buf));
#define A(i) ((i) < na ? a[i] : NULL)
#define P(i) path_arg(&c, A(i))
#define D(i) dir_arg(&c, A(i))
    errno = 0;
    if (!strncmp(op, "i386:", 5)) {
        do_i386(&c, op + 5, a, na, out, size);
    } else if (!strcmp(op, "open")) {
        r = syscall(SYS_open, P(0), flags(A(1), OPEN_FLAGS), num(A(2)));
        result_fd(out, size, r);
    } else if (!strcmp(op, "openat")) {
        int d = D(0);
        r = syscall(SYS_openat, d, P(1), flags(A(2), OPEN_FLAGS), num(A(3)));
        result_fd(out, size, r);
    } else if (!strcmp(op, "openat2")) {
        struct open_how how = {.flags = (uint64_t)flags(A(2), OPEN_FLAGS),
                               .mode = (uint64_t)num(A(4)),
                               .resolve = (uint64_t)flags(A(3), RESOLVE_FLAGS)};
        int d = D(0);
        r = syscall(SYS_openat2, d, P(1), &how, sizeof(how));
        result_fd(out, size, r);
    } else if (!strcmp(op, "creat")) {
        r = syscall(SYS_creat, P(0), num(A(1)));
        result_fd(out, size, r);
    } else if (!strcmp(op, "stat") || !strcmp(op, "lstat")) {
        r = syscall(!strcmp(op, "stat") ? SYS_stat : SYS_lstat, P(0), buf);
        result_buf(out, size, r, buf, sizeof(struct stat));
    } else if (!strcmp(op, "newfstatat")) {
        int d = D(0);
        r = syscall(SYS_newfstatat, d, P(1), buf, flags(A(2), AT_FLAGS));
        result_buf(out, size, r, buf, sizeof(struct stat));
    } else if (!strcmp(op, "statx")) {
        int d = D(0);
        r = syscall(SYS_statx, d, P(1), flags(A(2), AT_FLAGS), num(A(3)), buf);
        result_buf(out, size, r, buf, sizeof(struct statx));
    } else if (!strcmp(op, "access")) {
        fail_or(out, size, syscall(SYS_access, P(0), flags(A(1), ACCESS_MODES)), NULL);
    } else if (!strcmp(op, "faccessat")) {
        int d = D(0);
        fail_or(out, size, syscall(SYS_faccessat, d, P(1), flags(A(2), ACCESS_MODES)), NULL);
    } else if (!strcmp(op, "faccessat2")) {
        int d = D(0);
        fail_or(out, size, syscall(SYS_faccessat2, d, P(1), flags(A(2), ACCESS_MODES),
                                   flags(A(3), AT_FLAGS)), NULL);
    } else if (!strcmp(op, "execve") || !strcmp(op, "execveat")) {
        do_exec(&c, !strcmp(op, "execveat"), a, out, size);
    } else if (!strcmp(op, "chdir")) {
        char cwd[PATH_MAX];
        remember_cwd();
        r = syscall(SYS_chdir, P(0));
        if (r == 0) snprintf(out, size, "ok %s", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
        else snprintf(out, size, "%s", errname(errno));
        restore_cwd();
    } else if (!strcmp(op, "chroot")) {
        do_chroot(&c, a, out, size);
    } else if (!strcmp(op, "truncate")) {
        fail_or(out, size, syscall(SYS_truncate, P(0), num(A(1))), NULL);
    } else if (!strcmp(op, "chmod")) {
        fail_or(out, size, syscall(SYS_chmod, P(0), num(A(1))), NULL);
    } else if (!strcmp(op, "fchmodat")) {
        int d = D(0);
        fail_or(out, size, syscall(SYS_fchmodat, d, P(1), num(A(2))), NULL);
    } else if (!strcmp(op, "fchmodat2")) {
        int d = D(0);
        fail_or(out, size, syscall(SYS_fchmodat2, d, P(1), num(A(2)), flags(A(3), AT_FLAGS)),
                NULL);
    } else if (!strcmp(op, "chown") || !strcmp(op, "lchown")) {
        r = syscall(!strcmp(op, "chown") ? SYS_chown : SYS_lchown, P(0), num(A(1)), num(A(2)));
        fail_or(out, size, r, NULL);
    } else if (!strcmp(op, "fchownat")) {
        int d = D(0);
        fail_or(out, size, syscall(SYS_fchownat, d, P(1), num(A(2)), num(A(3)),
                                   flags(A(4), AT_FLAGS)), NULL);
    } else if (!strcmp(op, "utimensat")) {
        struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
        int d = D(0);
        fail_or(out, size, syscall(SYS_utimensat, d, P(1), ts, flags(A(2), AT_FLAGS)), NULL);
    } else if (!strcmp(op, "utime")) {
        struct utimbuf ub = {1000000000, 1000000000};
        fail_or(out, size, syscall(SYS_utime, P(0), &ub), NULL);
    } else if (!strcmp(op, "utimes") || !strcmp(op, "futimesat")) {
        struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
        if (!strcmp(op, "utimes")) r = syscall(SYS_utimes, P(0), tv);
        else { int d = D(0); r = syscall(SYS_futimesat, d, P(1), tv); }
        fail_or(out, size, r, NULL);
    } else if (!strcmp(op, "linkat")) {
        int od = D(0), nd;
        int keep = c.extra_fd;
        c.extra_fd = -1;
        nd = D(2);
        r = syscall(SYS_linkat, od, P(1), nd, P(3), flags(A(4), AT_FLAGS));
        int e = errno;
        if (r == 0) syscall(SYS_unlinkat, nd, P(3), 0);
        errno = e;
        fail_or(out, size, r, NULL);
        if (keep >= 0) close(keep);
    } else if (!strcmp(op, "symlink") || !strcmp(op, "symlinkat")) {
        int at = !strcmp(op, "symlinkat");
        int d = at ? D(1) : AT_FDCWD;
        const char *path = at ? P(2) : P(1);
        r = syscall(SYS_symlinkat, P(0), d, path);
        int e = errno;
        if (r == 0) syscall(SYS_unlinkat, d, path, 0);
        errno = e;
        fail_or(out, size, r, NULL);
    } else if (!strcmp(op, "getxattr") || !strcmp(op, "lgetxattr")) {
        char v[256];
        r = syscall(!strcmp(op, "getxattr") ? SYS_getxattr : SYS_lgetxattr, P(0), A(1), v,
                    sizeof(v) - 1);
        if (r >= 0) v[r] = '\0';
        fail_or(out, size, r, r >= 0 ? v : NULL);
    } else if (!strcmp(op, "setxattr")) {
        const char *v = A(2) ? A(2) : "";
        fail_or(out, size, syscall(SYS_setxattr, P(0), A(1), v, strlen(v), 0), NULL);
    } else if (!strcmp(op, "listxattr")) {
        char v[1024];
        r = syscall(SYS_listxattr, P(0), v, sizeof(v));
        char n[32];
        snprintf(n, sizeof(n), "n=%ld", r);
        fail_or(out, size, r, n);
    } else if (!strcmp(op, "removexattr")) {
        fail_or(out, size, syscall(SYS_removexattr, P(0), A(1)), NULL);
    } else if (!strcmp(op, "getxattrat")) {
        struct { uint64_t value; uint32_t size, flags; } args;
        char v[256];
        args.value = (uint64_t)(uintptr_t)v;
        args.size = sizeof(v) - 1;
        args.flags = 0;
        int d = D(0);
        r = syscall(SYS_getxattrat, d, P(1), flags(A(2), AT_FLAGS), A(3), &args, sizeof(args));
        if (r >= 0) v[r] = '\0';
        fail_or(out, size, r, r >= 0 ? v : NULL);
    } else if (!strcmp(op, "inotify")) {
        int ifd = inotify_init1(IN_CLOEXEC);
        const char *how = A(1) ? A(1) : "";
        uint32_t mask = IN_ALL_EVENTS | (!strcmp(how, "dontfollow") ? IN_DONT_FOLLOW : 0);
        r = syscall(SYS_inotify_add_watch, ifd, P(0), mask);
        fail_or(out, size, r, NULL);
        close(ifd);
    } else if (!strcmp(op, "fanotify")) {
        int gfd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
        const char *how = A(1) ? A(1) : "";
        unsigned int mark = FAN_MARK_ADD | (!strcmp(how, "dontfollow") ? FAN_MARK_DONT_FOLLOW : 0);
        r = gfd < 0 ? gfd : syscall(SYS_fanotify_mark, gfd, mark, FAN_OPEN, AT_FDCWD, P(0));
        fail_or(out, size, r, NULL);
        if (gfd >= 0)
            close(gfd);
    } else if (!strcmp(op, "statfs")) {
        struct statfs sf;
        r = syscall(SYS_statfs, P(0), &sf);
        char d[64];
        snprintf(d, sizeof(d), "type=%#lx", (unsigned long)sf.f_type);
        fail_or(out, size, r, r == 0 ? d : NULL);
    } else if (!strcmp(op, "readlink")) {
        char v[PATH_MAX];
        r = syscall(SYS_readlink, P(0), v, sizeof(v) - 1);
        if (r >= 0) v[r] = '\0';
        fail_or(out, size, r, r >= 0 ? v : NULL);
    } else if (!strcmp(op, "name_to_handle_at")) {
        struct { unsigned int bytes; int type; unsigned char h[128]; } fh = {128, 0, {0}};
        int mount_id, d = D(0);
        r = syscall(SYS_name_to_handle_at, d, P(1), &fh, &mount_id, flags(A(2), AT_FLAGS));
        fail_or(out, size, r, NULL);
    } else if (!strcmp(op, "open_tree")) {
        int d = D(0);
        r = syscall(SYS_open_tree, d, P(1), flags(A(2), AT_FLAGS) | O_CLOEXEC);
        if (r >= 0) close((int)r);
        fail_or(out, size, r, NULL);
    } else if (!strcmp(op, "race") && na >= 4) {
        do_race(a, out, size);
    } else if (!strcmp(op, "alarmopen")) {
        do_alarmopen(&c, a, out, size);
    } else if (!strcmp(op, "tmpfile")) {
        do_tmpfile(&c, a, out, size);
    } else if (!strcmp(op, "tmpfile_by_fd")) {
        do_tmpfile_by_fd(&c, a, out, size);
    } else if (!strcmp(op, "unlink")) {
        fail_or(out, size, syscall(SYS_unlink, P(0)), NULL);
    } else if (!strcmp(op, "rmdir")) {
        fail_or(out, size, syscall(SYS_rmdir, P(0)), NULL);
    } else if (!strcmp(op, "status")) {
        do_status(&c, a, out, size);
    } else if (!strcmp(op, "read")) {
        do_read(&c, a, out, size);
    } else if (!strcmp(op, "thread") && na >= 1) {
        struct threaded t = {a, na, out, size};
        pthread_t th;
        pthread_create(&th, NULL, threaded_main, &t);
        pthread_join(th, NULL);
    } else if (!strcmp(op, "threads") && na >= 3) {
        do_threads(a, out, size);
    } else {
        snprintf(out, size, "BADOP");
    }
    if (c.extra_fd >= 0) close(c.extra_fd);
    if (c.dir_err) snprintf(out, size, "DIRFD_%s", errname(c.dir_err));
    for (int i = 0; i < c.nfree; i++) free(c.free_me[i]);
#undef A
#undef P
#undef D
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "+C:u:")) != -1) {
        if (opt == 'C' && chdir(optarg) < 0) { perror("chdir"); return 2; }
        else if (opt == 'u') umask((mode_t)strtol(optarg, NULL, 8));
        else if (opt != 'C') return 2;
    }
    low = mmap(NULL, 4 * 8192, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) low = NULL;
    char line[8192];
    static char out[OUT];
    while (fgets(line, sizeof(line), stdin)) {
        char *w[MAXW + 1];
        int nw = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\n", &save); t && nw < MAXW;
             t = strtok_r(NULL, " \t\n", &save))
            w[nw++] = t;
        if (nw < 2 || w[0][0] == '#') continue;
        w[nw] = NULL;
        out[0] = '\0';
        run_case(w + 1, nw - 1, out, sizeof(out));
        emit(w[0], out);
    }
    return 0;
}
