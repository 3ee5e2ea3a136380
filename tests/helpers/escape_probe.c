/* escape_probe: a hostile program's ways out of yama-run's path engine,
 * each tried and reported, for tests/test_escape.py.
 *
 *   escape_probe victim               print "pid N", then wait; on SIGUSR1 print
 *                                     "victim intact" (or "victim CHANGED" when
 *                                     its marker was written) and exit
 *   escape_probe attack PID ATTACK..  each ATTACK against process PID (a victim
 *                                     started outside, or any process)
 *   escape_probe siblings ATTACK..    fork a victim A and an actor B (B is not
 *                                     A's ancestor: a sibling), run the attacks
 *                                     from B against A, then A's report
 *   escape_probe attack-parent ATTACK..  each ATTACK against its parent (under
 *                                     yama-run: the supervisor)
 *   escape_probe CASE ARG..           cases of its own:
 *     setsid-tty                 open /dev/tty after setsid(): ENXIO natively
 *     own-tty                    setsid, a new pty made the controlling terminal,
 *                                then /dev/tty: "same" when it is that pty
 *     foreign-tty UID            (as root) setsid, a new pty (root's, 0620) made
 *                                the controlling terminal, its slave kept open
 *                                O_RDWR, then ids dropped to UID and /dev/tty
 *                                opened O_RDWR: "same" when it is that pty
 *     tty-node-creat PATH [pty]  setsid (pty: and a new pty made the controlling
 *                                terminal), then open(PATH, O_WRONLY|O_CREAT|
 *                                O_NONBLOCK): ok or the errno
 *     open-all-ones              open("/", -1): build_open_how keeps O_PATH
 *     open PATH                  open(PATH, O_RDONLY): ok or the errno
 *     nr NR i386|x86_64          a raw syscall by number, every argument 0
 *     fifo-race DIR SECONDS      threads open /proc/self/fd/N while another
 *                                swaps N between a regular file and a FIFO
 *                                nobody writes (issue 13 item 1)
 *     bystander SECONDS FILE     stat FILE every 5 ms: "stall_ms=WORST"
 *     link-tmpfile DIR NAME [exec]   an O_TMPFILE in DIR named NAME by
 *                                linkat(fd, "", AT_EMPTY_PATH), by this program
 *                                or (exec) by the program it becomes
 *
 * Every line is "NAME RESULT": RESULT is LEAK (the victim's memory was read),
 * WROTE (it was written), ok (something harmless was opened), or the errno
 * name of the refusal. Victims and actors are forks of one image, so the
 * victim's marker sits at the same address in every one of them.
 *
 * Attacks on PID: reopen-mem[-i386|-openat2|-threadself|-devfd|-pidpath]
 * (O_PATH of /proc/PID/mem, then /proc/self/fd/N opened O_RDWR: issue 12
 * item 1; only reopen-mem itself writes what it could read), reopen-task-mem, reopen-dir-mem (O_PATH /proc/PID, then
 * /proc/self/fd/N/mem), open-mem, reopen-environ, open-syscall, open-stack,
 * open-personality, fd-link, cwd-link, root-link, exe-link, write-oom,
 * race-opath:N, race-idmap:N (a thread flips the path between a harmless name
 * and /proc/PID/mem while the caller opens it N times: O_PATH then reopen,
 * and an id-map open O_RDWR: issue 12 item 3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TAG 0x4573634500000000ULL       /* "EscE" + pid */

volatile uint64_t marker;

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void say(const char *name, const char *result)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s %s\n", name, result);
    if (write(1, line, (size_t)n) < 0)
        _exit(3);
}

/* ---- what an fd gives ------------------------------------------------------ */

/* fd (closed here) on pid's memory: LEAK if it reads pid's marker, WROTE if
 * it could also overwrite it, else the errno of the read. */
static const char *mem_result(long fd, pid_t pid, int try_write)
{
    static char buf[64];
    if (fd < 0)
        return errname(errno);
    uint64_t got = 0;
    ssize_t n = pread((int)fd, &got, sizeof(got), (off_t)(uintptr_t)&marker);
    int e = errno;
    const char *r;
    if (n == sizeof(got) && got == (TAG | (uint64_t)pid)) {
        uint64_t evil = TAG | 0xdeadULL;
        r = try_write && pwrite((int)fd, &evil, sizeof(evil), (off_t)(uintptr_t)&marker) ==
                             sizeof(evil) ? "WROTE" : "LEAK";
    } else if (n < 0) {
        snprintf(buf, sizeof(buf), "%s", errname(e));
        r = buf;
    } else {
        r = "ok";                             /* something else: not the victim's memory */
    }
    close((int)fd);
    return r;
}

/* fd (closed here) on a file: ok if a read gives bytes, else the errno. */
static const char *read_result(long fd)
{
    static char buf[64];
    if (fd < 0)
        return errname(errno);
    char b[64];
    ssize_t n = read((int)fd, b, sizeof(b));
    int e = errno;
    close((int)fd);
    if (n < 0) {
        snprintf(buf, sizeof(buf), "%s", errname(e));
        return buf;
    }
    return "ok";
}

static long int80_open(const char *path, int flags)
{
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(low, 4096, "%s", path);
    long ret, nr = 5;                         /* i386 open */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"((long)(uintptr_t)low),
                     "c"((long)flags), "d"(0L) : "memory", "r8", "r9", "r10", "r11");
    munmap(low, 4096);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

static long open_rw(const char *path)
{
    return syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
}

/* ---- attacks on a process ------------------------------------------------------- */

/* O_PATH of path (allowed: it opens nothing), then the magic link to it
 * opened for reading and writing in the form `how`. */
static const char *reopen(const char *path, const char *how, pid_t pid, int try_write)
{
    int o = open(path, O_PATH | O_CLOEXEC);
    if (o < 0)
        return errname(errno);
    char p[96];
    long fd;
    if (strcmp(how, "i386") == 0) {
        snprintf(p, sizeof(p), "/proc/self/fd/%d", o);
        fd = int80_open(p, O_RDWR | O_CLOEXEC);
    } else if (strcmp(how, "openat2") == 0) {
        snprintf(p, sizeof(p), "/proc/self/fd/%d", o);
        struct open_how oh = { .flags = O_RDWR | O_CLOEXEC };
        fd = syscall(SYS_openat2, AT_FDCWD, p, &oh, sizeof(oh));
    } else {
        if (strcmp(how, "threadself") == 0)
            snprintf(p, sizeof(p), "/proc/thread-self/fd/%d", o);
        else if (strcmp(how, "devfd") == 0)
            snprintf(p, sizeof(p), "/dev/fd/%d", o);
        else if (strcmp(how, "pidpath") == 0)
            snprintf(p, sizeof(p), "/proc/%d/fd/%d", (int)getpid(), o);
        else
            snprintf(p, sizeof(p), "/proc/self/fd/%d", o);
        fd = open_rw(p);
    }
    int e = errno;
    close(o);
    errno = e;
    return mem_result(fd, pid, try_write);
}

struct flip {
    char buf[256];
    char a[256], b[256];
    volatile int stop;
};

static void *flipper(void *arg)
{
    struct flip *f = arg;
    for (unsigned i = 0; !f->stop; i++)
        memcpy(f->buf, (i & 1) ? f->b : f->a, sizeof(f->buf));
    return NULL;
}

/* a and b of the same length: the one padded with slashes after "/proc". */
static void same_length(char *a, char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *shorter = la < lb ? a : b;
    size_t d = la < lb ? lb - la : la - lb, ls = strlen(shorter);
    memmove(shorter + 5 + d, shorter + 5, ls - 5 + 1);
    memset(shorter + 5, '/', d);
}

/* N opens of a path flipped between a harmless name and pid's mem. */
static void race(const char *name, pid_t pid, long n, int idmap)
{
    static struct flip f;
    memset(&f, 0, sizeof(f));
    if (idmap)
        snprintf(f.a, sizeof(f.a), "/proc/self/uid_map");
    else
        snprintf(f.a, sizeof(f.a), "/proc/self/oom_score_adj");
    snprintf(f.b, sizeof(f.b), "/proc/%d/mem", (int)pid);
    same_length(f.a, f.b);
    memcpy(f.buf, f.a, sizeof(f.buf));
    pthread_t t;
    pthread_create(&t, NULL, flipper, &f);
    long leaks = 0, opened = 0;
    for (long i = 0; i < n; i++) {
        long fd;
        if (idmap) {
            fd = open_rw(f.buf);
        } else {
            int o = open(f.buf, O_PATH | O_CLOEXEC);
            if (o < 0)
                continue;
            char p[64];
            snprintf(p, sizeof(p), "/proc/self/fd/%d", o);
            fd = open_rw(p);
            close(o);
        }
        if (fd < 0)
            continue;
        opened++;
        const char *r = mem_result(fd, pid, 0);
        if (strcmp(r, "LEAK") == 0)
            leaks++;
    }
    f.stop = 1;
    pthread_join(t, NULL);
    char out[96];
    snprintf(out, sizeof(out), "%s tries=%ld opened=%ld", leaks ? "LEAK" : "none", n, opened);
    say(name, out);
}

static void attack(pid_t pid, const char *what)
{
    char p[128];
    if (strncmp(what, "reopen-mem", 10) == 0) {
        snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
        say(what, reopen(p, what[10] ? what + 11 : "", pid, what[10] == '\0'));
    } else if (strcmp(what, "reopen-task-mem") == 0) {
        snprintf(p, sizeof(p), "/proc/%d/task/%d/mem", (int)pid, (int)pid);
        say(what, reopen(p, "", pid, 0));
    } else if (strcmp(what, "reopen-dir-mem") == 0) {
        snprintf(p, sizeof(p), "/proc/%d", (int)pid);
        int d = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        snprintf(p, sizeof(p), "/proc/self/fd/%d/mem", d);
        say(what, mem_result(open_rw(p), pid, 0));
        close(d);
    } else if (strcmp(what, "open-mem") == 0) {
        snprintf(p, sizeof(p), "/proc/%d/mem", (int)pid);
        say(what, mem_result(open_rw(p), pid, 0));
    } else if (strcmp(what, "reopen-environ") == 0) {
        snprintf(p, sizeof(p), "/proc/%d/environ", (int)pid);
        int o = open(p, O_PATH | O_CLOEXEC);
        snprintf(p, sizeof(p), "/proc/self/fd/%d", o);
        say(what, read_result(o < 0 ? -1 : open(p, O_RDONLY | O_CLOEXEC)));
        close(o);
    } else if (strncmp(what, "open-", 5) == 0 || strcmp(what, "fd-link") == 0 ||
               strcmp(what, "exe-link") == 0) {
        const char *entry = strcmp(what, "fd-link") == 0 ? "fd/0" :
                            strcmp(what, "exe-link") == 0 ? "exe" : what + 5;
        snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, entry);
        say(what, read_result(open(p, O_RDONLY | O_CLOEXEC)));
    } else if (strcmp(what, "cwd-link") == 0 || strcmp(what, "root-link") == 0) {
        snprintf(p, sizeof(p), "/proc/%d/%s/", (int)pid, what[0] == 'c' ? "cwd" : "root");
        long fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        say(what, fd < 0 ? errname(errno) : "ok");
        if (fd >= 0)
            close((int)fd);
    } else if (strcmp(what, "write-oom") == 0) {
        snprintf(p, sizeof(p), "/proc/%d/oom_score_adj", (int)pid);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            say(what, errname(errno));
        } else {
            say(what, write(fd, "1000", 4) == 4 ? "WROTE" : errname(errno));
            close(fd);
        }
    } else if (strncmp(what, "race-opath:", 11) == 0) {
        race(what, pid, atol(what + 11), 0);
    } else if (strncmp(what, "race-idmap:", 11) == 0) {
        race(what, pid, atol(what + 11), 1);
    } else {
        say(what, "UNKNOWN");
    }
}

/* ---- cases of their own ----------------------------------------------------------- */

static void setsid_tty(void)
{
    if (setsid() < 0 && errno != EPERM)
        say("setsid-tty", "NOSETSID");
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    say("setsid-tty", fd < 0 ? errname(errno) : "ok");
}

/* setsid, and a new pty made the controlling terminal: its master, or -1. */
static int pty_as_terminal(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || setsid() < 0)
        return -1;
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
        return -1;
    return master;
}

/* /dev/tty opened O_RDWR is the pty whose master is `master`: what is
 * written through it comes out of the master side. */
static void dev_tty_is(const char *name, int master)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        say(name, errname(errno));
        return;
    }
    char got[16] = "";
    struct pollfd p = { master, POLLIN, 0 };
    if (write(fd, "ping", 4) != 4 || poll(&p, 1, 2000) != 1 || read(master, got, 15) <= 0)
        say(name, "OTHER");
    else
        say(name, strstr(got, "ping") ? "same" : "OTHER");
}

static void own_tty(void)
{
    int master = pty_as_terminal();
    if (master < 0)
        say("own-tty", "SETUP");
    else
        dev_tty_is("own-tty", master);
}

/* The terminal is root's (grantpt gives it to its maker, 0620): once the
 * ids are dropped its node is no longer ours to open, /dev/tty still is. */
static void foreign_tty(uid_t uid)
{
    int master = pty_as_terminal();
    if (master < 0 || setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
        setresuid(uid, uid, uid) < 0) {
        say("foreign-tty", "SETUP");
        return;
    }
    dev_tty_is("foreign-tty", master);
}

static void tty_node_creat(const char *path, int with_pty)
{
    if (with_pty ? pty_as_terminal() < 0 : setsid() < 0 && errno != EPERM) {
        say("tty-node-creat", "SETUP");
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
    say("tty-node-creat", fd < 0 ? errname(errno) : "ok");
}

static void raw_nr(long nr, const char *abi)
{
    long ret;
    if (strcmp(abi, "i386") == 0) {
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(0L), "c"(0L), "d"(0L)
                         : "memory", "r8", "r9", "r10", "r11");
    } else {
        ret = syscall(nr, 0, 0, 0, 0, 0, 0);
        if (ret < 0)
            ret = -errno;
    }
    char name[64];
    snprintf(name, sizeof(name), "nr-%ld-%s", nr, abi);
    say(name, ret < 0 && ret > -4096 ? errname((int)-ret) : "ok");
}

struct swap {
    int target, reg, fifo;
    volatile int stop;
};

static void *swapper(void *arg)
{
    struct swap *w = arg;
    for (unsigned i = 0; !w->stop; i++)
        dup2((i & 1) ? w->fifo : w->reg, w->target);
    return NULL;
}

static void *fifo_opener(void *arg)
{
    struct swap *w = arg;
    char p[64];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", w->target);
    while (!w->stop) {
        int fd = open(p, O_RDONLY | O_CLOEXEC);   /* may stay blocked for good */
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static void fifo_race(const char *dir, double seconds)
{
    static struct swap w;
    char reg[256], fifo[256];
    snprintf(reg, sizeof(reg), "%s/reg-%d", dir, (int)getpid());
    snprintf(fifo, sizeof(fifo), "%s/fifo-%d", dir, (int)getpid());
    close(open(reg, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    if (mkfifo(fifo, 0600) < 0) {
        say("fifo-race", "SETUP");
        return;
    }
    w.reg = open(reg, O_PATH | O_CLOEXEC);
    w.fifo = open(fifo, O_PATH | O_CLOEXEC);
    w.target = dup(w.reg);
    pthread_t s, o[8];
    pthread_create(&s, NULL, swapper, &w);
    for (int i = 0; i < 8; i++)
        pthread_create(&o[i], NULL, fifo_opener, &w);
    usleep((useconds_t)(seconds * 1e6));
    unlink(reg);
    unlink(fifo);
    say("fifo-race", "done");
    _exit(0);                                    /* blocked openers end with us */
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bystander(double seconds, const char *file)
{
    double start = now_ms(), last = start, worst = 0;
    struct stat st;
    while (last - start < seconds * 1e3) {
        stat(file, &st);
        double t = now_ms();
        if (t - last > worst)
            worst = t - last;
        last = t;
        usleep(5000);
        last = now_ms();
    }
    char out[64];
    snprintf(out, sizeof(out), "stall_ms=%.0f", worst);
    say("bystander", out);
}

static void link_tmpfile(const char *dir, const char *name, int via_exec, char **argv)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | (via_exec ? 0 : O_CLOEXEC), 0600);
    if (fd < 0) {
        say("link-tmpfile", errname(errno));
        return;
    }
    if (via_exec) {                              /* the program it becomes names it */
        char num[16];
        snprintf(num, sizeof(num), "%d", fd);
        execl("/proc/self/exe", argv[0], "link-fd", num, name, (char *)NULL);
        say("link-tmpfile", "NOEXEC");
        return;
    }
    say("link-tmpfile", linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0 ? "ok"
                                                                          : errname(errno));
}

static void link_fd(int fd, const char *name)
{
    say("link-tmpfile", linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0 ? "ok"
                                                                          : errname(errno));
}

static int solo(int argc, char **argv)
{
    const char *c = argv[1];
    if (strcmp(c, "setsid-tty") == 0)
        setsid_tty();
    else if (strcmp(c, "own-tty") == 0)
        own_tty();
    else if (strcmp(c, "foreign-tty") == 0 && argc > 2)
        foreign_tty((uid_t)atoi(argv[2]));
    else if (strcmp(c, "tty-node-creat") == 0 && argc > 2)
        tty_node_creat(argv[2], argc > 3 && strcmp(argv[3], "pty") == 0);
    else if (strcmp(c, "open-all-ones") == 0) {
        long fd = syscall(SYS_open, "/", -1, 0);
        say(c, fd < 0 ? errname(errno) : "ok");
    } else if (strcmp(c, "open") == 0 && argc > 2) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        say(c, fd < 0 ? errname(errno) : "ok");
    } else if (strcmp(c, "nr") == 0 && argc > 3)
        raw_nr(strtol(argv[2], NULL, 0), argv[3]);
    else if (strcmp(c, "fifo-race") == 0 && argc > 3)
        fifo_race(argv[2], atof(argv[3]));
    else if (strcmp(c, "bystander") == 0 && argc > 3)
        bystander(atof(argv[2]), argv[3]);
    else if (strcmp(c, "link-tmpfile") == 0 && argc > 3)
        link_tmpfile(argv[2], argv[3], argc > 4 && strcmp(argv[4], "exec") == 0, argv);
    else if (strcmp(c, "link-fd") == 0 && argc > 3)
        link_fd(atoi(argv[2]), argv[3]);
    else
        return 2;
    return 0;
}

/* ---- the victim ------------------------------------------------------------------ */

static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
    (void)sig;
    report = 1;
}

static void victim_wait(void)
{
    marker = TAG | (uint64_t)getpid();
    while (!report)
        pause();
    say("victim", marker == (TAG | (uint64_t)getpid()) ? "intact" : "CHANGED");
    _exit(0);
}

static pid_t spawn_victim(void)
{
    signal(SIGUSR1, on_usr1);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        victim_wait();
    }
    return pid;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    marker = TAG | (uint64_t)getpid();
    if (argc >= 2 && strcmp(argv[1], "victim") == 0) {
        signal(SIGUSR1, on_usr1);
        char line[32];
        snprintf(line, sizeof(line), "%d", (int)getpid());
        say("pid", line);
        victim_wait();
    }
    if (argc >= 3 && strcmp(argv[1], "attack") == 0) {
        pid_t pid = (pid_t)atoi(argv[2]);
        for (int i = 3; i < argc; i++)
            attack(pid, argv[i]);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "attack-parent") == 0) {
        for (int i = 2; i < argc; i++)
            attack(getppid(), argv[i]);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "siblings") == 0) {
        pid_t a = spawn_victim();
        usleep(10000);                          /* the victim has set its marker */
        pid_t b = fork();
        if (b == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (int i = 2; i < argc; i++)
                attack(a, argv[i]);
            _exit(0);
        }
        int st;
        waitpid(b, &st, 0);
        kill(a, SIGUSR1);
        waitpid(a, NULL, 0);
        return 0;
    }
    if (argc >= 2 && solo(argc, argv) == 0)
        return 0;
    fprintf(stderr, "usage: escape_probe victim | attack PID ATTACK... | attack-parent ATTACK... "
                    "| siblings ATTACK... | CASE ARG...\n");
    return 2;
}
