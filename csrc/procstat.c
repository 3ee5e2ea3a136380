/* /proc's small text files, and the fields of a /proc/.../stat line: one
 * parser for every reader of one (the state of a task, its group, session
 * and terminal, its parent, its start time, its mm's layout). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

ssize_t yr_read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    int err = errno;
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    errno = err;
    return n;
}

int yr_stat_fields(const char *line, const int *want, int n, long long *out)
{
    /* Field 2, the name, is "(comm)", and comm may hold anything, ")" and
     * spaces too: the fields are counted from its last ")", whatever it holds. */
    const char *p = strrchr(line, ')');
    if (!p)
        return -1;
    p++;
    int field = 2, k = 0;
    while (k < n) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return -1;
        field++;
        if (field == want[k]) {
            if (field == 3) {
                out[k++] = (unsigned char)*p;
            } else {
                char *end;
                errno = 0;
                out[k++] = strtoll(p, &end, 10);
                if (end == p || errno)
                    return -1;
            }
        }
        p += strcspn(p, " \n");
    }
    return 0;
}

char yr_stat_state(const char *path)
{
    static const int state_field[] = { 3 };
    char buf[512];
    long long state;
    if (yr_read_text(path, buf, sizeof(buf)) <= 0 ||
        yr_stat_fields(buf, state_field, 1, &state) < 0)
        return 0;
    return (char)state;
}
