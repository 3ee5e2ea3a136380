/* The registry of routed syscalls (syscalls.def), for C and for Python. */
#include <stddef.h>

#include "yama.h"

static const struct {
    const char *names;
    int server;
} registry[YR_SYS_COUNT] = {
    [YR_SYS_NONE] = { NULL, YR_SERVE_NONE },
#define YR_SYSCALL(id, server, names) [YR_SYS_##id] = { names, YR_SERVE_##server },
#include "syscalls.def"
#undef YR_SYSCALL
};

const char *yr_sys_names(int32_t sys)
{
    return sys > YR_SYS_NONE && sys < YR_SYS_COUNT ? registry[sys].names : NULL;
}

int yr_sys_server(int32_t sys)
{
    return sys > YR_SYS_NONE && sys < YR_SYS_COUNT ? registry[sys].server : YR_SERVE_NONE;
}
