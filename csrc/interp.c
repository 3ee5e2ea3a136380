/* The interpreter the kernel opens to run an executable, read from the
 * held object as the kernel reads it: the name on a script's "#!" line
 * (fs/binfmt_script.c) or an ELF's PT_INTERP (fs/binfmt_elf.c and its
 * compat twin). The kernel opens that name itself (open_exec), after our
 * answer to the execve, with a walk that follows a trailing link and
 * crosses /proc magic links: walk.c walks and judges it first, as it does
 * the exec's own path, so a "#!" naming a planted link, or another
 * process's /proc/PID/root, is refused as the same exec by path would be.
 *
 * binfmt_misc interpreters are not read: they are the machine's
 * configuration, registered by root with a name fixed at registration. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define BINPRM_BUF_SIZE 256     /* what the kernel reads of the file first */
#define ELF_PHDRS_MAX 65536     /* load_elf_phdrs: at most 64 KiB and ELF_MIN_ALIGN */

static int spacetab(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* first..last inclusive, as the kernel's helpers of the same names. */
static const char *next_non_spacetab(const char *first, const char *last)
{
    for (; first <= last; first++)
        if (!spacetab(*first))
            return first;
    return NULL;
}

static const char *next_terminator(const char *first, const char *last)
{
    for (; first <= last; first++)
        if (spacetab(*first) || !*first)
            return first;
    return NULL;
}

/* The "#!" line's interpreter name, as load_script finds it: 1 with out
 * set, 0 when the kernel refuses the line (ENOEXEC: it then runs nothing). */
static int script_interpreter(const char buf[BINPRM_BUF_SIZE], char *out, size_t size)
{
    const char *buf_end = buf + BINPRM_BUF_SIZE - 1;
    const char *i_end = memchr(buf, '\n', strnlen(buf, BINPRM_BUF_SIZE));
    if (!i_end) {
        i_end = next_non_spacetab(buf + 2, buf_end);
        if (!i_end || !next_terminator(i_end, buf_end))
            return 0;                            /* all blanks, or a name cut short */
        i_end = buf_end;
    }
    while (spacetab(i_end[-1]))
        i_end--;
    const char *i_name = next_non_spacetab(buf + 2, i_end);
    if (!i_name || i_name == i_end)
        return 0;
    const char *i_sep = next_terminator(i_name, i_end);
    size_t len = (size_t)((i_sep && i_sep < i_end ? i_sep : i_end) - i_name);
    if (len >= size)
        return 0;
    memcpy(out, i_name, len);
    out[len] = '\0';
    return 1;
}

/* Which ELF loader of this kernel takes the file (by e_machine, as
 * elf_check_arch and compat_elf_check_arch tell): 64, 32, or 0 for none. */
static int elf_class(const unsigned char *buf)
{
    uint16_t machine;
    memcpy(&machine, buf + offsetof(Elf64_Ehdr, e_machine), sizeof(machine));
#if defined(__x86_64__)
    if (machine == EM_X86_64)
        return 64;
    if (machine == EM_386 || machine == 6 /* EM_486 */)
        return 32;
#elif defined(__aarch64__)
    if (machine == EM_AARCH64)
        return 64;
    if (machine == EM_ARM)
        return 32;
#endif
    return 0;
}

/* The first PT_INTERP of the program headers ph decides: at most PATH_MAX,
 * NUL-terminated. */
static int first_interp(int fd, int bits, const unsigned char *ph, unsigned phnum, char *out,
                        size_t size)
{
    for (unsigned i = 0; i < phnum; i++) {
        uint64_t filesz, offset;
        if (bits == 64) {
            Elf64_Phdr p;
            memcpy(&p, ph + i * sizeof(p), sizeof(p));
            if (p.p_type != PT_INTERP)
                continue;
            filesz = p.p_filesz, offset = p.p_offset;
        } else {
            Elf32_Phdr p;
            memcpy(&p, ph + i * sizeof(p), sizeof(p));
            if (p.p_type != PT_INTERP)
                continue;
            filesz = p.p_filesz, offset = p.p_offset;
        }
        if (filesz < 2 || filesz > PATH_MAX || filesz > size ||
            pread(fd, out, filesz, (off_t)offset) != (ssize_t)filesz || out[filesz - 1])
            return 0;
        return 1;
    }
    return 0;
}

/* PT_INTERP's name, read from fd as load_elf_binary reads it, the header
 * read as bits says: 1 with out set, 0 when the ELF has none or the
 * kernel refuses it (ENOEXEC, EIO). */
static int elf_view(int fd, const unsigned char *buf, int bits, char *out, size_t size)
{
    uint16_t type, phentsize, phnum;
    uint64_t phoff;
    if (bits == 64) {
        Elf64_Ehdr eh;
        memcpy(&eh, buf, sizeof(eh));
        type = eh.e_type, phentsize = eh.e_phentsize, phnum = eh.e_phnum, phoff = eh.e_phoff;
        if (phentsize != sizeof(Elf64_Phdr))
            return 0;
    } else if (bits == 32) {
        Elf32_Ehdr eh;
        memcpy(&eh, buf, sizeof(eh));
        type = eh.e_type, phentsize = eh.e_phentsize, phnum = eh.e_phnum, phoff = eh.e_phoff;
        if (phentsize != sizeof(Elf32_Phdr))
            return 0;
    } else {
        return 0;
    }
    size_t phsize = (size_t)phentsize * phnum;
    /* ELF_MIN_ALIGN is the page size on x86 and arm64 alike: a fixed 4096
     * refused, on a kernel of 16 or 64 KiB pages, headers its loader takes. */
    if ((type != ET_EXEC && type != ET_DYN) || phsize == 0 || phsize > ELF_PHDRS_MAX ||
        phsize > (size_t)sysconf(_SC_PAGESIZE))
        return 0;
    unsigned char *ph = malloc(phsize);         /* off the stack: a worker's is 64 KiB */
    int found = ph && pread(fd, ph, phsize, (off_t)phoff) == (ssize_t)phsize &&
                first_interp(fd, bits, ph, phnum, out, size);
    free(ph);
    return found;
}

static int elf_interpreter(int fd, const unsigned char *buf, char *out, size_t size)
{
    int bits = elf_class(buf);
    if (!bits)
        return 0;
    if (elf_view(fd, buf, bits, out, size))
        return 1;
#if defined(__x86_64__)
    /* x32: an EM_X86_64 file the 64-bit loader refuses (ENOEXEC: e_phentsize
     * not 56, no valid PT_INTERP...) goes on to the compat loader, which
     * reads it as Elf32 where the kernel has CONFIG_X86_X32_ABI
     * (compat_elf_check_arch; search_binary_handler tries the next format
     * on ENOEXEC). Without x32 the kernel says ENOEXEC: walking its
     * Elf32 PT_INTERP then costs at most that errno, as EACCES. */
    if (bits == 64)
        return elf_view(fd, buf, 32, out, size);
#endif
    return 0;
}

/* What runs the executable held as obj: YR_INTERP_SCRIPT or YR_INTERP_ELF
 * with the interpreter's name in out, YR_INTERP_NONE, or -errno when it
 * cannot be read. Read as the caller (whose file system identity this
 * thread holds), else as ourselves: the kernel reads the header whatever
 * the file's mode says, so a --x file of the caller's own (root without
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in effect) whose "#!" named
 * yama-run's /proc/PID/exe was run unseen. Only the header is read, and
 * only to judge the walk of a name the kernel would open anyway.
 * O_NONBLOCK: a lease on the file refuses the open instead of waiting
 * (-EWOULDBLOCK: the caller fails closed, walk.c). */
int yr_exec_interpreter(int obj, char *out, size_t size)
{
    int fd = yr_reopen(obj, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        yr_fs_pause();
        fd = yr_reopen(obj, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        int e = errno;
        yr_fs_resume();
        errno = e;
    }
    if (fd < 0)
        return -errno;
    unsigned char buf[BINPRM_BUF_SIZE] = { 0 };  /* the kernel's bprm->buf, zeroed past the end */
    int kind = YR_INTERP_NONE;
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
        if (script_interpreter((const char *)buf, out, size))
            kind = YR_INTERP_SCRIPT;
    } else if (n >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0) {
        /* Any length: the kernel reads the header from bprm->buf, zeroed past
         * the end of the file, so a 49-byte i386 ELF whose one program header
         * overlaps its own header's unused bytes has its PT_INTERP opened. */
        if (elf_interpreter(fd, buf, out, size))
            kind = YR_INTERP_ELF;
    }
    close(fd);
    return kind;
}
