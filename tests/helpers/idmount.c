/* idmount SRC DST "map": an idmapped bind mount of SRC at DST, as root (as
 * systemd-nspawn --bind=...:idmap or a container manager makes one); the map
 * is written as both uid_map and gid_map of a user namespace made for it.
 * From review 11-E (tests/test_unmapped_owners.py). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/mount.h>
static void wr(const char *p, const char *s) { int fd = open(p, O_WRONLY); if (fd < 0 || write(fd, s, strlen(s)) < 0) { perror(p); exit(1); } close(fd); }
int main(int argc, char **argv) {
  int pp[2]; pipe(pp);
  pid_t c = fork();
  if (!c) { unshare(CLONE_NEWUSER); write(pp[1], "x", 1); pause(); _exit(0); }
  char b; read(pp[0], &b, 1);
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/uid_map", c); wr(p, argv[3]);
  snprintf(p, sizeof p, "/proc/%d/gid_map", c); wr(p, argv[3]);
  snprintf(p, sizeof p, "/proc/%d/ns/user", c); int ns = open(p, O_RDONLY);
  int t = syscall(SYS_open_tree, AT_FDCWD, argv[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (t < 0) { perror("open_tree"); return 1; }
  struct mount_attr a = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = ns };
  if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof a) < 0) { perror("mount_setattr"); return 1; }
  if (syscall(SYS_move_mount, t, "", AT_FDCWD, argv[2], MOVE_MOUNT_F_EMPTY_PATH) < 0) { perror("move_mount"); return 1; }
  kill(c, SIGKILL); waitpid(c, 0, 0);
  return 0;
}
