/* identity_probe: what a program gets from what the supervisor's acting
 * threads keep of the supervisor (tests/test_escape_identity.py).
 *
 *   identity_probe userns-open FILE   fork: a child makes one routed call,
 *                                     enters a user namespace of its own
 *                                     (the parent maps 0 to 0), lowers its
 *                                     capability masks back to those it had,
 *                                     opens FILE: "open=OK" or "open=ENAME"
 *   identity_probe setns-open FILE    opens /etc/hostname (the identity
 *                                     cached), enters by setns the user
 *                                     namespace a child made (0 mapped to 0:
 *                                     the same ids), lowers its capability
 *                                     masks back to those it had, opens FILE:
 *                                     "open=OK|ENAME"
 *   identity_probe userns-access FILE...  a user namespace of its own, no
 *                                     effective capability left:
 *                                     "access:FILE=OK|ENAME" (R_OK|W_OK)
 *   identity_probe dropped-group FILE GID  fork: a child of uid 1001 in
 *                                     groups 1001 and GID opens FILE (the
 *                                     identity cached), enters a user
 *                                     namespace of its own (the parent maps
 *                                     1001 and GID), drops GID there, gives
 *                                     its capabilities back, opens FILE:
 *                                     "open=OK" or "open=ENAME"
 *   identity_probe groups-chown FILE GID  root with CAP_DAC_OVERRIDE and
 *                                     CAP_SETGID only, in group GID, stats
 *                                     FILE, leaves GID, gives FILE to GID:
 *                                     "chown=OK|ENAME"
 *   identity_probe exec-groups FILE GID  root in group GID, no capability
 *                                     but CAP_SETGID (SECBIT_NOROOT: an exec
 *                                     grants none); a second thread leaves
 *                                     GID by a raw setgroups of its own,
 *                                     gives up CAP_SETGID, and execs
 *                                     "identity_probe open FILE" once the
 *                                     leader, likewise without capabilities,
 *                                     has made routed opens
 *   identity_probe setgroups-open FILE  opens FILE ("before=..."), leaves
 *                                     every supplementary group (setgroups,
 *                                     CAP_SETGID held), opens it again:
 *                                     "open=OK|ENAME"
 *   identity_probe dropcaps-kill PID  gives up every capability (ambient
 *                                     too), then kill(PID, 0) and
 *                                     pidfd_send_signal(PID, 0):
 *                                     "kill=OK|ENAME", "pidfd=OK|ENAME"
 *   identity_probe open FILE          "open=OK|ENAME"
 *   identity_probe umask-exec DIR N   N times: a child with umask 077 creates
 *                                     files (mode 0666) at the bottom of 60
 *                                     nested directories of DIR, in a loop,
 *                                     while a thread of its own (its own fs:
 *                                     umask 0) execs /bin/true, which takes
 *                                     the child's tid: "made=M loose=L" (L
 *                                     files whose mode is not 0600)
 *   identity_probe nofixup-access FILE  root with SECBIT_NO_SETUID_FIXUP and
 *                                     no effective capability: access(R_OK):
 *                                     "access=OK|ENAME"
 *   identity_probe tap NODE NAME      open NODE (a tun node), attach to the
 *                                     tap NAME, write one Ethernet frame:
 *                                     "attach=...", "write=..."
 *   identity_probe tun-create NODE NAME  open NODE, create the tun NAME,
 *                                     persistent: "create=..."
 *   identity_probe fscrypt-key CMD... a session keyring of its own holding a
 *                                     v1 fscrypt logon key, then exec CMD
 *   identity_probe fscrypt-policy DIR the v1 policy of that key on DIR
 *   identity_probe newsess CMD...     an empty session keyring, then exec CMD */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/capability.h>
#include <linux/fscrypt.h>
#include <linux/if_tun.h>
#include <linux/keyctl.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *err_name(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

static void caps_get(unsigned long long *eff, unsigned long long *prm)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    *eff = (unsigned long long)d[1].effective << 32 | d[0].effective;
    *prm = (unsigned long long)d[1].permitted << 32 | d[0].permitted;
}

static int caps_set(unsigned long long eff, unsigned long long prm)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = { { (unsigned)eff, (unsigned)prm, 0 },
                                           { (unsigned)(eff >> 32), (unsigned)(prm >> 32), 0 } };
    return (int)syscall(SYS_capset, &h, d);
}

static void write_file(pid_t pid, const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            perror(path);
        close(fd);
    }
}

static int userns_open(const char *file)
{
    int up[2], down[2];
    if (pipe(up) < 0 || pipe(down) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        unsigned long long eff0, prm0, eff1, prm1;
        char b;
        caps_get(&eff0, &prm0);
        int fd = open("/etc/hostname", O_RDONLY);      /* routed: the identity is cached */
        if (fd >= 0)
            close(fd);
        if (unshare(CLONE_NEWUSER) < 0) {
            printf("unshare=%s\n", err_name(errno));
            _exit(0);
        }
        if (write(up[1], "x", 1) != 1 || read(down[0], &b, 1) != 1)
            _exit(1);
        caps_get(&eff1, &prm1);
        caps_set(eff1 & eff0, prm1 & prm0);              /* the masks it had */
        fd = open(file, O_RDONLY);
        printf("open=%s\n", fd >= 0 ? "OK" : err_name(errno));
        _exit(0);
    }
    char b;
    if (read(up[0], &b, 1) == 1) {
        write_file(child, "uid_map", "0 0 1");
        write_file(child, "setgroups", "deny");
        write_file(child, "gid_map", "0 0 1");
    }
    if (write(down[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    return 0;
}

static int open_result(const char *file)
{
    int fd = open(file, O_RDONLY);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static int setns_open(const char *file)
{
    int ready[2], done[2];
    char b, ns[64];
    if (pipe(ready) < 0 || pipe(done) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        if (unshare(CLONE_NEWUSER) < 0 || write(ready[1], "x", 1) != 1)
            _exit(1);
        read(done[0], &b, 1);
        _exit(0);
    }
    if (read(ready[0], &b, 1) != 1)
        return 1;
    write_file(child, "uid_map", "0 0 1");            /* the same ids there as here */
    write_file(child, "setgroups", "deny");
    write_file(child, "gid_map", "0 0 1");
    int e = open_result("/etc/hostname");            /* routed: the identity is cached */
    printf("before=%s\n", e ? err_name(e) : "OK");
    snprintf(ns, sizeof(ns), "/proc/%d/ns/user", (int)child);
    unsigned long long eff0, prm0, eff1, prm1;
    caps_get(&eff0, &prm0);
    int fd = open(ns, O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWUSER) < 0) {
        printf("setns=%s\n", err_name(errno));
    } else {
        caps_get(&eff1, &prm1);
        caps_set(eff1 & eff0, prm1 & prm0);          /* the masks it had */
        e = open_result(file);
        printf("open=%s\n", e ? err_name(e) : "OK");
    }
    if (write(done[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    return 0;
}

static int dropped_group(const char *file, gid_t gid)
{
    int up[2], down[2];
    if (pipe(up) < 0 || pipe(down) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        gid_t both[] = { 1001, gid }, one[] = { 1001 };
        char b;
        if (syscall(SYS_setgroups, 2, both) < 0 || syscall(SYS_setresgid, 1001, 1001, 1001) < 0 ||
            syscall(SYS_setresuid, 1001, 1001, 1001) < 0)
            _exit(1);
        printf("before=%s\n", open_result(file) ? err_name(errno) : "OK");  /* cached */
        if (unshare(CLONE_NEWUSER) < 0) {
            printf("unshare=%s\n", err_name(errno));
            _exit(0);
        }
        if (write(up[1], "x", 1) != 1 || read(down[0], &b, 1) != 1)
            _exit(1);
        if (syscall(SYS_setgroups, 1, one) < 0 || caps_set(0, 0) < 0)
            _exit(1);
        int e = open_result(file);
        printf("open=%s\n", e ? err_name(e) : "OK");
        _exit(0);
    }
    char b, map[64];
    if (read(up[0], &b, 1) == 1) {
        write_file(child, "uid_map", "1001 1001 1");
        snprintf(map, sizeof(map), "1001 1001 1\n%u %u 1\n", (unsigned)gid, (unsigned)gid);
        write_file(child, "gid_map", map);
    }
    if (write(down[1], "x", 1) != 1)
        return 1;
    waitpid(child, NULL, 0);
    return 0;
}

static int groups_chown(const char *file, gid_t gid)
{
    gid_t one[] = { gid };
    unsigned long long keep = 1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_SETGID;
    struct stat st;
    if (syscall(SYS_setgroups, 1, one) < 0 || caps_set(keep, keep) < 0)
        return 1;
    for (int i = 0; i < 3; i++)
        stat(file, &st);                                  /* routed: the identity cached */
    if (syscall(SYS_setgroups, 0, NULL) < 0)
        return 1;
    printf("chown=%s\n", chown(file, (uid_t)-1, gid) == 0 ? "OK" : err_name(errno));
    return 0;
}

static const char *exec_file;
static volatile int leader_ready;

static void *exec_without_group(void *arg)
{
    (void)arg;
    if (syscall(SYS_setgroups, 0, NULL) < 0 || caps_set(0, 0) < 0)
        _exit(1);                                 /* this thread's credentials only */
    while (!leader_ready)
        usleep(1000);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        _exit(1);
    self[n] = '\0';
    execl(self, self, "open", exec_file, (char *)NULL);
    _exit(1);
}

static int exec_groups(const char *file, gid_t gid)
{
    gid_t one[] = { gid };
    unsigned long long setgid = 1ULL << CAP_SETGID;
    if (syscall(SYS_setgroups, 1, one) < 0 ||
        syscall(SYS_prctl, PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0) < 0 ||
        caps_set(setgid, setgid) < 0)
        return 1;
    exec_file = file;
    pthread_t t;
    if (pthread_create(&t, NULL, exec_without_group, NULL) != 0)
        return 1;
    usleep(50000);                                /* its groups left */
    if (caps_set(0, 0) < 0)
        return 1;
    for (int i = 0; i < 3; i++)
        open_result("/etc/hostname");             /* routed: the leader's identity cached */
    leader_ready = 1;
    pause();                                      /* the exec ends this thread */
    return 1;
}

static char umask_stack[65536] __attribute__((aligned(16)));
static volatile int umask_go;

static int exec_with_umask_0(void *arg)
{
    (void)arg;
    syscall(SYS_umask, 0);
    while (!umask_go)
        ;
    for (volatile int i = rand() % 20000; i > 0; i--)
        ;
    char *argv[] = { "/bin/true", NULL };
    syscall(SYS_execve, "/bin/true", argv, NULL);
    syscall(SYS_exit, 1);
    return 0;
}

static int umask_exec(const char *dir, int tries)
{
    char deep[4096];
    int n = snprintf(deep, sizeof(deep), "%s", dir);
    for (int i = 0; i < 60; i++) {
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "/d");
        mkdir(deep, 0755);
    }
    for (int t = 0; t < tries; t++) {
        pid_t child = fork();
        if (child == 0) {
            srand((unsigned)getpid());
            umask(077);
            umask_go = 0;
            /* its own fs (no CLONE_FS): its umask is not the leader's */
            clone(exec_with_umask_0, umask_stack + sizeof(umask_stack),
                  CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, NULL);
            umask_go = 1;
            char name[4200];
            for (int i = 0;; i++) {
                snprintf(name, sizeof(name), "%s/f_%d_%d", deep, t, i);
                int fd = (int)syscall(SYS_openat, AT_FDCWD, name,
                                      O_CREAT | O_EXCL | O_WRONLY, 0666);
                if (fd >= 0)
                    syscall(SYS_close, fd);
            }
        }
        waitpid(child, NULL, 0);
    }
    int made = 0, loose = 0;
    for (int t = 0; t < tries; t++)
        for (int i = 0;; i++) {
            char name[4200];
            struct stat st;
            snprintf(name, sizeof(name), "%s/f_%d_%d", deep, t, i);
            if (stat(name, &st) < 0)
                break;
            made++;
            loose += (st.st_mode & 0777) != 0600;
        }
    printf("made=%d\nloose=%d\n", made, loose);
    return 0;
}

static int nofixup_access(const char *file)
{
    unsigned long long eff, prm;
    caps_get(&eff, &prm);
    if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) < 0 || caps_set(0, prm) < 0)
        return 1;
    printf("access=%s\n", access(file, R_OK) == 0 ? "OK" : err_name(errno));
    return 0;
}

static int userns_access(int n, char **files)
{
    if (unshare(CLONE_NEWUSER) < 0) {
        printf("unshare=%s\n", err_name(errno));
        return 0;
    }
    unsigned long long eff, prm;
    caps_get(&eff, &prm);
    caps_set(0, prm);
    for (int i = 0; i < n; i++)
        printf("access:%s=%s\n", files[i],
               access(files[i], R_OK | W_OK) == 0 ? "OK" : err_name(errno));
    return 0;
}

static int tun(const char *node, const char *name, int create)
{
    int fd = open(node, O_RDWR);
    if (fd < 0) {
        printf("open=%s\n", err_name(errno));
        return 0;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = (create ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    int rc = ioctl(fd, TUNSETIFF, &ifr);
    if (create) {
        if (rc == 0)
            rc = ioctl(fd, TUNSETPERSIST, 1);
        printf("create=%s\n", rc == 0 ? "OK" : err_name(errno));
        return 0;
    }
    printf("attach=%s\n", rc == 0 ? "OK" : err_name(errno));
    if (rc < 0)
        return 0;
    unsigned char frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5 };
    ssize_t n = write(fd, frame, sizeof(frame));
    printf("write=%s\n", n == (ssize_t)sizeof(frame) ? "OK" : err_name(errno));
    return 0;
}

static const unsigned char descriptor[FSCRYPT_KEY_DESCRIPTOR_SIZE] =
    { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && strcmp(argv[1], "userns-open") == 0)
        return userns_open(argv[2]);
    if (argc == 4 && strcmp(argv[1], "dropped-group") == 0)
        return dropped_group(argv[2], (gid_t)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "groups-chown") == 0)
        return groups_chown(argv[2], (gid_t)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "exec-groups") == 0)
        return exec_groups(argv[2], (gid_t)atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "dropcaps-kill") == 0) {
        pid_t victim = (pid_t)atoi(argv[2]);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 || caps_set(0, 0) < 0)
            return 1;
        int r = kill(victim, 0);
        printf("kill=%s\n", r == 0 ? "OK" : err_name(errno));
        int pidfd = (int)syscall(SYS_pidfd_open, victim, 0);
        r = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0);
        printf("pidfd=%s\n", r == 0 ? "OK" : err_name(errno));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "setgroups-open") == 0) {
        int e = open_result(argv[2]);
        printf("before=%s\n", e ? err_name(e) : "OK");
        if (syscall(SYS_setgroups, 0, NULL) < 0)
            return 1;
        e = open_result(argv[2]);
        printf("open=%s\n", e ? err_name(e) : "OK");
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "umask-exec") == 0)
        return umask_exec(argv[2], atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "open") == 0) {
        int e = open_result(argv[2]);
        printf("open=%s\n", e ? err_name(e) : "OK");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "nofixup-access") == 0)
        return nofixup_access(argv[2]);
    if (argc == 3 && strcmp(argv[1], "setns-open") == 0)
        return setns_open(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "userns-access") == 0)
        return userns_access(argc - 2, argv + 2);
    if (argc == 4 && (strcmp(argv[1], "tap") == 0 || strcmp(argv[1], "tun-create") == 0))
        return tun(argv[2], argv[3], argv[1][1] == 'u');
    if (argc >= 3 && strcmp(argv[1], "fscrypt-key") == 0) {
        struct fscrypt_key key = { .mode = 0, .size = FSCRYPT_MAX_KEY_SIZE };
        for (int i = 0; i < FSCRYPT_MAX_KEY_SIZE; i++)
            key.raw[i] = (unsigned char)(i * 7 + 3);
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "yr-fscrypt-test") < 0 ||
            syscall(SYS_add_key, "logon", "fscrypt:0011223344556677", &key, sizeof(key),
                    KEY_SPEC_SESSION_KEYRING) < 0) {
            perror("fscrypt key");
            return 1;
        }
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        return 1;
    }
    if (argc >= 3 && strcmp(argv[1], "newsess") == 0) {
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) {
            perror("session keyring");
            return 1;
        }
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        return 1;
    }
    if (argc == 3 && strcmp(argv[1], "fscrypt-policy") == 0) {
        struct fscrypt_policy_v1 p = { .version = FSCRYPT_POLICY_V1,
            .contents_encryption_mode = FSCRYPT_MODE_AES_256_XTS,
            .filenames_encryption_mode = FSCRYPT_MODE_AES_256_CTS,
            .flags = FSCRYPT_POLICY_FLAGS_PAD_32 };
        memcpy(p.master_key_descriptor, descriptor, sizeof(descriptor));
        int fd = open(argv[2], O_RDONLY | O_DIRECTORY);
        if (fd < 0 || ioctl(fd, FS_IOC_SET_ENCRYPTION_POLICY, &p) < 0) {
            perror("fscrypt policy");
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top\n");
    return 2;
}
