"""Review of the exec interpreter walk (csrc/interp.c, walk.c exec_step):
headers the kernel accepts that the first version did not read, an exec the
kernel answers without opening any interpreter, and the ways a program made
the supervisor's read of the header fail while the kernel's read succeeds.
Each case is compared with the kernel's own answer (fs.protected_symlinks=1,
no yama-run) where the kernel can answer it."""
from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from as_user import as_user  # noqa: F401  (fixture)
from conftest import YAMA_RUN, tree_env, yama_run
from test_exec_interpreter import PROBE as EXEC_PROBE
from test_exec_interpreter import (DENIED, as_runner, elf_with_loader, home,  # noqa: F401
                                   native_errno, owner_of, planted, script)

AT_EMPTY_PATH = 0x1000
AT_EXECVE_CHECK = 0x10000
SYS_EXECVEAT = 322          # x86_64


def tiny_elf32(path: Path, interp: bytes) -> Path:
    """An i386 ELF of 49 bytes, shorter than an Elf32_Ehdr (52): the kernel
    reads its header from bprm->buf, zero-padded past the end of the file,
    and its one program header (at offset 8, overlapping the header's unused
    bytes) is a PT_INTERP naming `interp` (at most 2 bytes and a NUL, at
    offset 46: a name relative to the cwd)."""
    assert len(interp) <= 2
    data = bytearray(49)
    data[0:4] = b"\x7fELF"
    data[4:7] = bytes([1, 1, 1])
    struct.pack_into("<I", data, 8, 3)              # p_type = PT_INTERP (EI_ABIVERSION, pad)
    struct.pack_into("<I", data, 12, 46)            # p_offset (pad)
    struct.pack_into("<HH", data, 16, 2, 3)         # e_type ET_EXEC, e_machine EM_386
    struct.pack_into("<I", data, 24, len(interp) + 1)   # e_entry = p_filesz
    struct.pack_into("<I", data, 28, 8)             # e_phoff
    struct.pack_into("<HH", data, 42, 32, 1)        # e_phentsize, e_phnum
    data[46:46 + len(interp)] = interp
    path.write_bytes(bytes(data))
    path.chmod(0o755)
    return path


def test_an_elf_shorter_than_its_header_has_its_loader_walked(planted, home, sysctl):
    """The kernel takes an ELF's header from its 256-byte buffer, zero-padded:
    a 49-byte i386 ELF is loaded, its PT_INTERP opened (relative to the cwd,
    here the stranger's directory, whose `ld` links to the 64-bit loader:
    ELIBBAD once followed; EACCES when the kernel's rule refuses the link).
    interp.c wanted 52 bytes before it looked: the link was followed unseen."""
    elf = tiny_elf32(home / "tiny", b"ld")
    assert native_errno(elf, cwd=planted) == errno.ELIBBAD
    sysctl("fs.protected_symlinks", 1)
    assert native_errno(elf, cwd=planted) == errno.EACCES
    sysctl("fs.protected_symlinks", 0)
    r = yama_run("--", str(elf), cwd=str(planted))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert "symlinks: denied execve following 'ld'" in r.stderr, r.stderr


CHECK_PROBE = """
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
argv = (ctypes.c_char_p * 2)(b"tool", None)
envp = (ctypes.c_char_p * 1)(None)
rc = libc.syscall(%d, fd, b"", argv, envp, %d)
print("0" if rc == 0 else errno.errorcode[ctypes.get_errno()])
""" % (SYS_EXECVEAT, AT_EMPTY_PATH | AT_EXECVE_CHECK)


def test_execve_check_opens_no_interpreter(planted, home, sysctl):
    """execveat(fd, "", AT_EMPTY_PATH | AT_EXECVE_CHECK) (6.14) checks the
    file only, "ignoring the file format and then the related interpreter
    dependencies" (Documentation/userspace-api/check_exec.rst): natively 0
    even where the "#!" interpreter is a link the kernel's rule refuses.
    yama-run walked the interpreter anyway and answered EACCES."""
    victim = script(home / "tool", f"{planted}/interp", "echo ran")
    sysctl("fs.protected_symlinks", 1)
    native = subprocess.run(["/usr/bin/python3", "-c", CHECK_PROBE, str(victim)],
                            capture_output=True, text=True)
    if native.stdout.strip() == "EINVAL":
        pytest.skip("the kernel has no AT_EXECVE_CHECK")
    assert native.stdout == "0\n", native
    sysctl("fs.protected_symlinks", 0)
    r = yama_run("--", "/usr/bin/python3", "-c", CHECK_PROBE, str(victim))
    assert r.stdout == "0\n", (r.stdout, r.stderr)
    # the exec itself still walks it
    r = yama_run("--", str(victim))
    assert r.returncode == DENIED, (r.returncode, r.stderr)


LEASE_PROBE = r"""
import errno, fcntl, os, signal, sys, time
F_SETLEASE = 1024
sup = os.getppid()
with open("f", "w") as out:
    out.write(f"#!/proc/{sup}/exe -cprint('RAN')\n")
os.chmod("f", 0o755)
signal.signal(signal.SIGIO, lambda *a: None)      # the lease break's signal
fd = os.open("f", os.O_RDONLY)
fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
pid = os.fork()
if pid == 0:
    try:
        os.execv("./f", ["f"])
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
    os._exit(1)
time.sleep(1)                                       # the supervisor's read has failed by now
fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)          # the kernel's open goes on
os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_lease_hides_no_interpreter(home, backend):
    """Root inside takes a write lease on its script (its own file), whose
    "#!" names yama-run's supervisor's /proc/PID/exe, and execs it: the
    supervisor's O_NONBLOCK open of the header fails (EWOULDBLOCK), the
    kernel's own open waits for the lease, which is then dropped, and read
    the line unseen: yama-run's interpreter ran. Refused now (EACCES)."""
    r = yama_run("--backend", backend, "--", "/usr/bin/python3", "-c", LEASE_PROBE,
                 cwd=str(home), timeout=60)
    assert "RAN" not in r.stdout, (r.stdout, r.stderr)
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)


NODAC_PROBE = r"""
import ctypes, errno, os
sup = os.getppid()
with open("f", "w") as out:
    out.write(f"#!/proc/{sup}/exe -cprint('RAN')\n")
os.chmod("f", 0o111)                                # --x: root reads it with DAC caps only
libc = ctypes.CDLL(None, use_errno=True)
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
assert libc.capget(hdr, data) == 0
data[0] &= ~((1 << 1) | (1 << 2))                   # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
assert libc.capset(hdr, data) == 0, ctypes.get_errno()
try:
    os.open("f", os.O_RDONLY)
    print("readable")
except OSError:
    pass
try:
    os.execv("./f", ["f"])
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
"""


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_an_unreadable_script_hides_no_interpreter(home, backend):
    """Root inside drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its
    effective set (keeping CAP_SYS_PTRACE) and execs its own --x script whose
    "#!" names the supervisor's /proc/PID/exe: the supervisor's read as the
    caller failed (EACCES), the header was taken for one the caller's own
    choice (nothing walked), and the kernel, which reads it whatever the
    mode, ran yama-run's interpreter. The supervisor reads it as itself now."""
    r = yama_run("--backend", backend, "--", "/usr/bin/python3", "-c", NODAC_PROBE,
                 cwd=str(home), timeout=60)
    assert "RAN" not in r.stdout, (r.stdout, r.stderr)
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)


EXECVEAT_PROBE = """
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
dirfd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
os.set_inheritable(dirfd, True)                     # a script's name must outlive the exec
argv = (ctypes.c_char_p * 2)(b"tool", None)
envp = (ctypes.c_char_p * 1)(None)
libc.syscall(%d, dirfd, b"tool", argv, envp, 0)
print(errno.errorcode[ctypes.get_errno()])
""" % SYS_EXECVEAT


@pytest.mark.parametrize("who", ["root", "1001"])
def test_execveat_interpreter_from_the_cwd_not_the_dirfd(as_user, planted, home,  # noqa: F811
                                                         sysctl, who):
    """execveat(dirfd, "tool"), where tool's "#!interp" is relative: the
    kernel opens it from the caller's cwd (open_exec: AT_FDCWD), never from
    dirfd. From the stranger's directory as cwd, its `interp` is refused;
    with tool in the stranger's directory (dirfd) and the cwd the victim's
    own (an `interp` of its own there), it runs."""
    owner = owner_of(who)
    script(home / "tool", "interp", "echo ran", owner)
    script(planted / "tool", "interp", "echo ran", owner)
    os.symlink("/bin/sh", home / "interp")
    sysctl("fs.protected_symlinks", 1)
    native = subprocess.run(["/usr/bin/python3", "-c", EXECVEAT_PROBE, str(home)],
                            capture_output=True, text=True, cwd=str(planted))
    assert native.stdout == "EACCES\n", native
    native = subprocess.run(["/usr/bin/python3", "-c", EXECVEAT_PROBE, str(planted)],
                            capture_output=True, text=True, cwd=str(home))
    assert native.stdout == "ran\n", native
    sysctl("fs.protected_symlinks", 0)
    r = as_runner(who, as_user, "--", "/usr/bin/python3", "-c", EXECVEAT_PROBE, str(home),
                  cwd=str(planted))
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)
    r = as_runner(who, as_user, "--", "/usr/bin/python3", "-c", EXECVEAT_PROBE, str(planted),
                  cwd=str(home))
    assert r.stdout == "ran\n", (r.stdout, r.stderr)


@pytest.mark.parametrize("who", ["root", "1001"])
def test_yama_runs_first_exec_of_a_relative_script(as_user, planted, who):  # noqa: F811
    """`yama-run -- ./tool` from the stranger's directory, tool's "#!interp"
    relative: the first exec (made by yama-run's spawn) has its interpreter
    walked from that cwd too. 126, and said."""
    marker = planted / "ran"
    script(planted / "tool", "interp", f"touch {marker}", owner_of(who))
    r = as_runner(who, as_user, "--", "./tool", cwd=str(planted))
    assert r.returncode == DENIED, (r.returncode, r.stdout, r.stderr)
    assert "symlinks: denied execve following 'interp'" in r.stderr, r.stderr
    assert not marker.exists()


def odd_headers(home: Path) -> dict[str, Path]:
    """Headers with NULs and blanks where the kernel's parser is exact."""
    out = {}

    def raw(name: str, data: bytes) -> None:
        (home / name).write_bytes(data)
        (home / name).chmod(0o755)
        out[name] = home / name

    raw("nul-first", b"#!\0/bin/sh\necho ran\n")                 # i_name "": ENOENT
    raw("nul-after-name", b"#!/bin/sh\0junk\necho ran\n")      # the name up to the NUL
    raw("tab-and-nul", b"#!\t/bin/sh\t\0x\necho ran\n")
    raw("no-newline-256", b"#!/bin/sh " + b"x" * 300)          # cut argument: runs
    raw("name-to-255", b"#!" + b"/" * 253 + b"sh")             # cut name: ENOEXEC
    raw("nul-before-newline", b"#!/bin/sh" + b"\0" * 300 + b"\necho ran\n")
    out["tiny-elf-short-interp"] = tiny_elf32(home / "tiny", b"")   # p_filesz 1: ENOEXEC
    return out


def test_odd_headers_are_answered_as_the_kernel(home):
    """NULs in the "#!" line, a line without a newline, a name running to the
    buffer's end, an ELF shorter than its header: each answered as natively."""
    args = [x for name, path in odd_headers(home).items() for x in (name, str(path))]
    native = subprocess.run(["/usr/bin/python3", "-c", EXEC_PROBE, *args], capture_output=True,
                            text=True, timeout=120)
    r = yama_run("--", "/usr/bin/python3", "-c", EXEC_PROBE, *args, timeout=120)
    assert r.stdout == native.stdout, (r.stdout, native.stdout, r.stderr)


@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_a_setuid_programs_loader_is_walked_after_the_notice(as_user, planted, home,  # noqa: F811
                                                             backend):
    """A setuid program linked with a planted loader, run by uid 1001 under
    yama-run started by root: the notice of a privileged program is a hook
    point (Python says it, then act() again), after which the loader is
    walked and refused, on both backends."""
    elf = elf_with_loader(home / "suid", f"{planted}/ld")
    elf.chmod(0o4755)
    probe = ("import errno, os\n"
             "try:\n"
             f"    os.execv({str(elf)!r}, ['suid'])\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    r = yama_run("--backend", backend, "-v", "--", "setpriv", "--reuid=1001", "--regid=1001",
                 "--clear-groups", "/usr/bin/python3", "-c", probe)
    assert "ELF-RAN" not in r.stdout
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)
    assert "symlinks: denied execve following 'ld'" in r.stderr, r.stderr
    assert "runs without its privilege" in r.stderr, r.stderr


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")
def test_relative_execs_leak_no_descriptor(home):
    """execve("./tool") of a script whose interpreter is named without a link
    on the way (held whole): the exec's path was held from a copy of the cwd
    (the call's spare start), then the interpreter's run took the spare's
    place without closing it: one descriptor lost in the supervisor per
    relative exec. With the common limit of 1024 descriptors, the sandbox's
    every open failed (EMFILE) after some 750 such execs."""
    script(home / "tool", os.path.realpath("/bin/sh"), ":")
    r = subprocess.run(
        ["prlimit", "--nofile=1024:1024", *YAMA_RUN, "--", "/bin/sh", "-c",
         'i=0; f=0; while [ $i -lt 1200 ]; do ./tool || f=$((f+1)); i=$((i+1)); done; '
         'echo "failed=$f"; cat ./tool > /dev/null && echo cat-ok'],
        cwd=str(home), capture_output=True, text=True, env=tree_env(), timeout=300)
    assert r.stdout == "failed=0\ncat-ok\n", (r.stdout, r.stderr[-2000:])


def test_an_x32_elfs_loader_is_walked(planted, home, sysctl):
    """An x32 ELF (Elf32 layout, e_machine EM_X86_64): the 64-bit loader
    refuses it (e_phentsize 32, ENOEXEC) and the compat loader takes it
    where the kernel has CONFIG_X86_X32_ABI (compat_elf_check_arch), opening
    its PT_INTERP. interp.c read it only as a 64-bit ELF: nothing walked.
    Walked now on every x86_64 kernel; without x32 (ENOEXEC natively) the
    answer is EACCES, the cost of not knowing the kernel's configuration."""
    from test_exec_interpreter import elf32_with_interp
    elf = elf32_with_interp(home / "x32", f"{planted}/ld")
    data = bytearray(elf.read_bytes())
    struct.pack_into("<H", data, 18, 62)                    # e_machine = EM_X86_64
    elf.write_bytes(bytes(data))
    sysctl("fs.protected_symlinks", 1)
    native = native_errno(elf)
    assert native in (errno.EACCES, errno.ENOEXEC), native     # EACCES: x32 loads it
    sysctl("fs.protected_symlinks", 0)
    r = yama_run("--", str(elf))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert "symlinks: denied execve following 'ld'" in r.stderr, r.stderr


@pytest.mark.parametrize("levels, native", [(6, errno.EACCES), (7, errno.ELOOP)])
def test_the_sixth_interpreter_is_walked_the_seventh_never_opened(planted, home, sysctl,
                                                                  levels, native):
    """A chain of scripts whose last "#!" names the stranger's link: the
    kernel opens six interpreters (exec_binprm, depth 0 to 5), the sixth
    whatever it is, then says ELOOP. The link as the sixth: opened (EACCES at
    1); as the seventh: never opened (ELOOP). The same under yama-run at 0."""
    prev = script(home / f"s{levels - 1}", f"{planted}/interp", "echo ran")
    for i in range(levels - 2, -1, -1):
        prev = script(home / f"s{i}", str(prev), "")
    sysctl("fs.protected_symlinks", 1)
    assert native_errno(prev) == native
    sysctl("fs.protected_symlinks", 0)
    probe = ("import errno, os\n"
             "try:\n"
             f"    os.execv({str(prev)!r}, ['s'])\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    r = yama_run("--", "/usr/bin/python3", "-c", probe)
    assert r.stdout == errno.errorcode[native] + "\n", (r.stdout, r.stderr)
