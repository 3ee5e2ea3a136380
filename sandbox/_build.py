"""cffi builder for the C fast path (out-of-line API mode).

The declarations come from csrc/yama.h itself, so C and Python cannot drift."""
import pathlib
import re

from cffi import FFI

# setuptools wants source paths relative to setup.py, which is where it runs.
ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = pathlib.Path("csrc")
SOURCES = ["syscalls.c", "spawn.c", "notify.c", "procinfo.c", "creds.c", "harden.c", "tracer.c",
           # the path engine (csrc/engine.h)
           "walk.c", "caller.c", "decode.c", "resolve.c", "gate.c", "kptrace.c", "open.c", "worker.c",
           "statcopy.c", "owner.c", "meta.c", "link.c", "helper.c", "sockaddr.c", "procstat.c",
           "tmpfiles.c", "pool.c", "interp.c", "named.c",
           "ptrace_fast.c",   # the ptrace module's rule, settled in C
           "front.c",         # the process the shell waits on (also in the launcher)
           "lifetime.c"]
REGISTRY_ENTRY = re.compile(r'YR_SYSCALL\(\s*(\w+)\s*,\s*(\w+)\s*,\s*"([^"]*)"\s*\)')


def registry(text: str) -> list[tuple[str, str, str]]:
    """syscalls.def's entries: (ID, SERVER, "names"), comments stripped."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return REGISTRY_ENTRY.findall(text)


def _cdef_from_header(text: str, registry_text: str) -> str:
    """yama.h minus what cdef cannot read: include guards and includes; the
    registry's X-macro expanded into the enum's members."""
    keep = []
    for line in text.splitlines():
        if re.match(r'\s*#\s*include\s+"syscalls.def"', line):
            keep += [f"    YR_SYS_{sys_id}," for sys_id, _, _ in registry(registry_text)]
            continue
        if re.match(r"\s*#\s*(if|ifndef|endif|include|undef)\b", line):
            continue
        if re.match(r"\s*#\s*define\s+YR_SYSCALL\b", line):
            continue
        if re.match(r"\s*#\s*define\s+YAMA_RUN_(\w+_)?H\b", line):   # include guards
            continue
        keep.append(line)
    # cffi has no pid_t of its own; "int..." lets the compiler give its size.
    return "typedef int... pid_t;\n" + "\n".join(keep)


HEADERS = ["yama.h", "procstat.h"]     # what Python sees of C
ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header("\n".join((ROOT / CSRC / h).read_text() for h in HEADERS),
                                  (ROOT / CSRC / "syscalls.def").read_text()))
ffibuilder.set_source(
    "sandbox._yama",
    "".join(f'#include "{h}"\n' for h in HEADERS),
    sources=[str(CSRC / name) for name in SOURCES],
    depends=[*(str(CSRC / h) for h in HEADERS), str(CSRC / "engine.h"), str(CSRC / "pidfd.h"),
             str(CSRC / "syscalls.def")],
    include_dirs=[str(CSRC)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
