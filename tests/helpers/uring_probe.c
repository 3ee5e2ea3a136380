/* uring_probe: open and statx PATH through io_uring (IORING_OP_OPENAT,
 * IORING_OP_STATX), which seccomp never sees, and print what a user sees:
 *     SETUP 0 | SETUP <errno>         io_uring_setup
 *     OPENAT 0 | OPENAT <errno>       the completion's result
 *     STATX 0 | STATX <errno>
 *
 *   uring_probe PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return e == 0 ? "0" : n ? n : "E?";
}

struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int setup(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    r->fd = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (r->fd < 0) return errno;
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_len > sq_len) sq_len = cq_len;           /* IORING_FEAT_SINGLE_MMAP */
    char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                    IORING_OFF_SQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || r->sqes == MAP_FAILED) return errno;
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(sq + p.cq_off.head);
    r->cq_tail = (unsigned *)(sq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(sq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);
    return 0;
}

/* Submit one prepared sqe and wait for its completion; -> the result. */
static int run(struct ring *r, const struct io_uring_sqe *in)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    r->sqes[idx] = *in;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
        return -errno;
    unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) return -EAGAIN;
    int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);
    struct ring r;
    int e = setup(&r);
    printf("SETUP %s\n", errname(e));
    if (e) return 0;
    struct io_uring_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opcode = IORING_OP_OPENAT;
    sqe.fd = AT_FDCWD;
    sqe.addr = (uint64_t)(uintptr_t)argv[1];
    sqe.open_flags = O_RDONLY | O_CLOEXEC;
    int res = run(&r, &sqe);
    printf("OPENAT %s\n", errname(res < 0 ? -res : 0));
    if (res >= 0) close(res);
    struct statx stx;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opcode = IORING_OP_STATX;
    sqe.fd = AT_FDCWD;
    sqe.addr = (uint64_t)(uintptr_t)argv[1];
    sqe.len = STATX_BASIC_STATS;
    sqe.off = (uint64_t)(uintptr_t)&stx;
    res = run(&r, &sqe);
    printf("STATX %s\n", errname(res < 0 ? -res : 0));
    return 0;
}
