/* O_ASYNC on the terminal: the kernel makes the terminal's foreground
 * process group the owner (tty_fasync), F_SETSIG picks the signal, and a
 * write wake-up sends it, with no input needed: output stopped (TCOOFF), a
 * non-blocking write that cannot complete, output started again (TCOON).
 *
 *   async_probe fcntl|ioctl SIGNUM > RESULTS
 *
 * The terminal is descriptor 0. The probe catches SIGNUM itself; it prints
 * "async: ok" or "async: ERRNO", then "caught: 1" when the signal reached
 * it, and exits 0. Whoever else is
 * in the foreground group gets SIGNUM too (SIGUSR1 ends a process that does
 * not catch it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
    (void)sig;
    caught = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int sig = atoi(argv[2]);
    signal(sig, on_signal);
    signal(SIGHUP, SIG_IGN);        /* the terminal's session leader may be ended */
    int fd = 0;
    int rc = fcntl(fd, F_SETSIG, sig);
    if (rc == 0 && strcmp(argv[1], "ioctl") == 0) {
        int on = 1;
        rc = ioctl(fd, FIOASYNC, &on);
    } else if (rc == 0) {
        rc = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK | O_ASYNC);
    }
    printf("async: %s\n", rc == 0 ? "ok" : strerrorname_np(errno));
    fflush(stdout);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    tcflow(fd, TCOOFF);
    static char buf[65536];
    memset(buf, '.', sizeof(buf));
    if (write(fd, buf, sizeof(buf)) < 0 && errno != EAGAIN)
        perror("write");
    tcflow(fd, TCOON);
    for (int i = 0; i < 50 && !caught; i++)
        usleep(10000);
    tcflush(fd, TCOFLUSH);
    printf("caught: %d\n", (int)caught);
    return 0;
}
