/* Root inside a root-started yama-run: a stat whose path the supervisor is
 * held reading (the path is in a userfaultfd page nobody has filled yet) is
 * served only after its caller was killed and reaped and its number handed
 * to a process outside; the result must never be written into that process.
 *
 * usage: stalled_stat DIR
 *   child P: newfstatat(AT_FDCWD, <missing page>, (void *)0x10000000, 0)
 *   parent: once P has held the supervisor for 0.4 s, kills and reaps it,
 *   writes P's pid to DIR/pid, waits for DIR/victim (the outside process
 *   that took the number, started by the test), then fills the page with
 *   the path DIR/big and lets the supervisor go on. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#define REGION ((void *)0x20000000)

static void send_fd(int sock, int fd)
{
    char c = 0, cb[CMSG_SPACE(sizeof(int))];
    struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cb,
                        .msg_controllen = sizeof cb };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    sendmsg(sock, &m, 0);
}

static int recv_fd(int sock)
{
    char c, cb[CMSG_SPACE(sizeof(int))];
    struct iovec io = { &c, 1 };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cb,
                        .msg_controllen = sizeof cb };
    if (recvmsg(sock, &m, 0) <= 0)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
    return fd;
}

static void caller(int sock)
{
    char *r = mmap(REGION, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = { .api = UFFD_API };
    struct uffdio_register reg = { .range = { (unsigned long)r, 4096 },
                                   .mode = UFFDIO_REGISTER_MODE_MISSING };
    if (r == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) < 0 ||
        ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
        perror("userfaultfd");
        _exit(2);
    }
    send_fd(sock, uffd);
    struct stat st;
    for (int i = 0; i < 5; i++)
        stat("/tmp", &st);                    /* its identity and root kept */
    syscall(SYS_newfstatat, AT_FDCWD, r, (void *)0x10000000, 0);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: stalled_stat DIR\n");
        return 2;
    }
    char path[4096];
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv);
    pid_t p = fork();
    if (p == 0)
        caller(sv[1]);
    int uffd = recv_fd(sv[0]);
    if (uffd < 0)
        return 2;
    usleep(400000);                           /* the supervisor waits on the page */
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    snprintf(path, sizeof(path), "%s/pid", argv[1]);
    FILE *f = fopen(path, "w");
    fprintf(f, "%d\n", p);
    fclose(f);
    snprintf(path, sizeof(path), "%s/victim", argv[1]);
    for (int i = 0; i < 1000 && access(path, F_OK) != 0; i++)
        usleep(10000);
    char page[4096] = { 0 };
    snprintf(page, sizeof(page), "%s/big", argv[1]);
    struct uffdio_copy cp = { .dst = (unsigned long)REGION, .src = (unsigned long)page,
                              .len = 4096 };
    if (ioctl(uffd, UFFDIO_COPY, &cp) < 0)
        perror("UFFDIO_COPY");
    sleep(1);                                 /* the supervisor goes on */
    return 0;
}
