/* /proc/keys lists the keys its opener's credentials may view, and those its
 * opener's keyrings possess (file->f_cred): a file the supervisor opened for
 * a caller must not list what the supervisor possesses.
 *
 *   keys_probe hold CMD ARG...   a session keyring of its own holding a key
 *                                only its possessor may view ("yr-secret"),
 *                                then CMD runs (inheriting that session)
 *   keys_probe list              a session keyring of its own, then
 *                                "secret=listed" or "secret=hidden" */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_SETPERM 5
#define KEY_SPEC_SESSION_KEYRING -3

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && !strcmp(argv[1], "hold")) {
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "yr-holder") < 0)
            return 3;
        long key = syscall(SYS_add_key, "user", "yr-secret", "s", 1, KEY_SPEC_SESSION_KEYRING);
        if (key < 0 || syscall(SYS_keyctl, KEYCTL_SETPERM, key, 0x3f000000) < 0)
            return 3;
        execvp(argv[2], argv + 2);
        return 127;
    }
    if (argc > 1 && !strcmp(argv[1], "list")) {
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0)
            return 3;
        FILE *f = fopen("/proc/keys", "r");
        if (!f) {
            printf("open=%s\n", strerror(errno));
            return 1;
        }
        char line[512];
        int listed = 0;
        while (fgets(line, sizeof(line), f))
            listed |= strstr(line, "yr-secret") != NULL;
        printf("secret=%s\n", listed ? "listed" : "hidden");
        return 0;
    }
    return 2;
}
