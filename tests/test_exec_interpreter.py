"""The interpreter the kernel opens for an exec after yama-run's answer: a
script's "#!" line, an ELF's PT_INTERP (csrc/interp.c). The kernel opens it
with a walk of its own that follows a trailing link and crosses /proc's magic
links, so yama-run walks and judges it first, as it judges the exec's own
path. Each attack test makes the exec and asserts that the interpreter never
ran; the controls show the kernel's own rule (fs.protected_symlinks=1) refusing
the same exec, and the route working without it."""
from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from as_user import as_user  # noqa: F401  (fixture)
from conftest import requires_tool, yama_run

DENIED = 126
LOADER = "/lib64/ld-linux-x86-64.so.2"
BACKENDS = ["notify", "ptrace"]


@pytest.fixture
def planted(sysctl):
    """A sticky world-writable directory in which a stranger (uid 1002)
    planted `interp` (a link to /bin/sh) and `ld` (a link to the loader); the
    kernel's own protection off."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the links are another uid's")
    sysctl("fs.protected_symlinks", 0)
    d = Path(tempfile.mkdtemp(prefix="yr-interp-", dir="/tmp"))
    d.chmod(0o1777)
    for name, target in (("interp", "/bin/sh"), ("ld", LOADER)):
        os.symlink(target, d / name)
        os.lchown(d / name, 1002, 1002)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def home():
    """The victim's own directory (uid 1001 may read it; its files are the
    runner's): the script and the program run from here."""
    d = Path(tempfile.mkdtemp(prefix="yr-interp-home-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def script(path: Path, line: str, body: str, owner: int = 0) -> Path:
    path.write_text(f"#!{line}\n{body}\n")
    path.chmod(0o755)
    os.chown(path, owner, owner)
    return path


def as_runner(who: str, as_user, *args, **kw):  # noqa: F811
    """yama-run started by root, or by uid 1001 (its program is uid 1001)."""
    if who == "root":
        return yama_run(*args, **kw)
    return as_user.run(*args, **kw)


def owner_of(who: str) -> int:
    return 0 if who == "root" else 1001


def elf_with_loader(path: Path, loader: str) -> Path:
    """tests/helpers/exec_interp_probe.c linked with loader as its PT_INTERP."""
    src = Path(__file__).parent / "helpers" / "exec_interp_probe.c"
    subprocess.run(["gcc", "-O1", f"-Wl,--dynamic-linker={loader}", "-o", str(path), str(src)],
                   check=True)
    return path


def native_errno(path: Path, cwd: Path | None = None) -> int:
    """The kernel's own answer to exec(path): 0 when it ran."""
    try:
        subprocess.run([str(path)], cwd=cwd, capture_output=True, timeout=30)
    except OSError as exc:
        return exc.errno
    return 0


# -- the kernel's own rule: the controls ------------------------------------------------------

@requires_tool("gcc")
def test_the_kernel_refuses_a_planted_interpreter_and_loader(planted, home, sysctl):
    """Natively, with fs.protected_symlinks=1, the kernel refuses (EACCES) an
    exec whose "#!" interpreter or PT_INTERP is a stranger's link in a sticky
    world-writable directory; at 0 both run: the route this file attacks."""
    marker = home / "ran"
    victim = script(home / "tool", f"{planted}/interp", f"touch {marker}")
    elf = elf_with_loader(home / "prog", f"{planted}/ld")
    sysctl("fs.protected_symlinks", 1)
    assert native_errno(victim) == errno.EACCES
    assert native_errno(Path(elf)) == errno.EACCES
    assert not marker.exists()
    sysctl("fs.protected_symlinks", 0)
    assert native_errno(victim) == 0 and marker.exists()
    assert subprocess.run([str(elf)], capture_output=True, text=True).stdout == "ELF-RAN\n"


# -- the attacks -------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "1001"])
@pytest.mark.parametrize("how", ["absolute", "relative", "nested"])
def test_a_scripts_interpreter_through_a_planted_link_is_refused(as_user, planted, home,  # noqa: F811
                                                                 who, how):
    """`yama-run -- ~/tool`, where tool's "#!" names a planted link: by its
    absolute name, relative to the cwd (the kernel opens it from there), or
    as the interpreter of the script tool names. Refused as the symlinks
    module refuses that link followed by path: 126, EACCES, and said."""
    owner = owner_of(who)
    marker = home / "ran"
    cwd = home
    if how == "absolute":
        victim = script(home / "tool", f"{planted}/interp", f"touch {marker}", owner)
    elif how == "relative":
        victim = script(home / "tool", "interp", f"touch {marker}", owner)
        cwd = planted
    else:
        inner = script(home / "inner", f"{planted}/interp", "", owner)
        victim = script(home / "tool", str(inner), f"touch {marker}", owner)
    r = as_runner(who, as_user, "--", str(victim), cwd=str(cwd))
    assert r.returncode == DENIED, (r.returncode, r.stdout, r.stderr)
    assert "symlinks: denied execve following 'interp'" in r.stderr, r.stderr
    assert not marker.exists()
    # The program's own exec of it: EACCES, as the kernel's rule says.
    r = as_runner(who, as_user, "--", "/usr/bin/python3", "-c",
                  "import errno, os, sys\n"
                  "try:\n"
                  f"    os.execv({str(victim)!r}, ['tool'])\n"
                  "except OSError as e:\n"
                  "    print(errno.errorcode[e.errno])\n", cwd=str(cwd))
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)
    assert not marker.exists()


@pytest.mark.parametrize("who", ["root", "1001"])
def test_an_exec_by_descriptor_walks_the_interpreter(as_user, planted, home, sysctl,  # noqa: F811
                                                     who):
    """fexecve: execveat(fd, "", AT_EMPTY_PATH) of a script held open (not
    close-on-exec: the kernel refuses a script whose name would vanish). The
    kernel opens its interpreter as for an exec by path: EACCES at 1."""
    marker = home / "ran"
    victim = script(home / "tool", f"{planted}/interp", f"touch {marker}", owner_of(who))
    probe = ("import errno, os\n"
             f"fd = os.open({str(victim)!r}, os.O_RDONLY)\n"
             "os.set_inheritable(fd, True)\n"
             "try:\n"
             "    os.execve(fd, ['tool'], {})\n"
             "except OSError as e:\n"
             "    print(errno.errorcode[e.errno])\n")
    sysctl("fs.protected_symlinks", 1)
    native = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True, text=True)
    assert native.stdout == "EACCES\n", native
    sysctl("fs.protected_symlinks", 0)
    r = as_runner(who, as_user, "--", "/usr/bin/python3", "-c", probe)
    assert r.stdout == "EACCES\n", (r.stdout, r.stderr)
    assert not marker.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_walk_the_interpreter(planted, home, backend):
    """The ptrace backend serves execve with the same walk."""
    marker = home / "ran"
    victim = script(home / "tool", f"{planted}/interp", f"touch {marker}")
    r = yama_run("--backend", backend, "--", str(victim))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert not marker.exists()


@requires_tool("gcc")
@pytest.mark.parametrize("who", ["root", "1001"])
def test_an_elfs_planted_loader_is_refused(as_user, planted, home, who):  # noqa: F811
    """A program linked with `--dynamic-linker=/tmp/x/ld`, where `ld` is a
    stranger's link: the kernel would load the stranger's choice as the
    program's loader (it maps it and jumps to it)."""
    elf = elf_with_loader(home / "prog", f"{planted}/ld")
    os.chown(elf, owner_of(who), owner_of(who))
    r = as_runner(who, as_user, "--", str(elf))
    assert r.returncode == DENIED, (r.returncode, r.stdout, r.stderr)
    assert "ELF-RAN" not in r.stdout
    assert "symlinks: denied execve following 'ld'" in r.stderr, r.stderr


def elf32_with_interp(path: Path, interp: str) -> Path:
    """An i386 ELF (EM_386, run by the kernel's compat loader) whose
    PT_INTERP names interp; it never gets to run code of its own."""
    name = interp.encode() + b"\0"
    ehdr, phdr = 52, 32
    offset = ehdr + 2 * phdr
    total = offset + len(name)
    data = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    data += struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x08048000, ehdr, 0, 0, ehdr, phdr, 2,
                        40, 0, 0)
    data += struct.pack("<IIIIIIII", 3, offset, 0x08048000 + offset, 0, len(name), len(name),
                        4, 1)                                   # PT_INTERP
    data += struct.pack("<IIIIIIII", 1, 0, 0x08048000, 0, total, total, 5, 0x1000)  # PT_LOAD
    path.write_bytes(data + name)
    path.chmod(0o755)
    return path


def test_an_i386_elfs_planted_loader_is_refused(planted, home, sysctl):
    """The compat loader's PT_INTERP too. Natively at 0 the kernel follows the
    link and then refuses the 64-bit loader (ELIBBAD); at 1 it refuses the
    link (EACCES); under yama-run, EACCES."""
    elf = elf32_with_interp(home / "prog32", f"{planted}/ld")
    assert native_errno(elf) == errno.ELIBBAD
    sysctl("fs.protected_symlinks", 1)
    assert native_errno(elf) == errno.EACCES
    sysctl("fs.protected_symlinks", 0)
    r = yama_run("--", str(elf))
    assert r.returncode == DENIED, (r.returncode, r.stderr)
    assert "symlinks: denied execve following 'ld'" in r.stderr, r.stderr


def test_the_supervisors_exe_as_an_interpreter_is_refused(home):
    """Root inside names yama-run's supervisor's /proc/PID/exe as a script's
    interpreter: the gate refuses every /proc entry of yama-run's processes,
    whatever the call, and the interpreter's walk is judged by it. Before,
    the kernel followed it and ran yama-run's own interpreter on the script."""
    r = yama_run("--", "/bin/sh", "-c",
                 'printf "#!/proc/$PPID/exe\\nprint(\\"RAN\\")\\n" > f; chmod +x f; ./f; '
                 'echo "rc=$?"', cwd=str(home))
    assert "RAN" not in r.stdout, r.stdout
    assert r.stdout.strip().endswith("rc=126"), (r.stdout, r.stderr)


# -- what is no planted link runs, and errors are the kernel's ----------------------------------

def cases(home: Path) -> dict[str, Path]:
    """Scripts whose exec the kernel answers in each of its ways."""
    (home / "data").write_text("a file without x bits\n")
    (home / "data").chmod(0o644)
    out = {
        "plain": script(home / "plain", "/bin/sh", "echo ran"),
        "blanks-and-an-argument": script(home / "arg", " \t/bin/sh -e ", "echo ran"),
        "env": script(home / "env", "/usr/bin/env sh", "echo ran"),
        "no-name": script(home / "noname", "", "echo ran"),
        "only-blanks": script(home / "blanks", "   ", "echo ran"),
        "crlf": script(home / "crlf", "/bin/sh\r", "echo ran"),
        "missing": script(home / "missing", "/nonexistent/sh", "echo ran"),
        "a-directory": script(home / "dir", "/tmp", "echo ran"),
        "not-executable": script(home / "noexec", str(home / "data"), "echo ran"),
        "itself": script(home / "itself", str(home / "itself"), "echo ran"),
    }
    long = home / "long"                     # no newline in the first 256 bytes, name cut
    long.write_text("#!/" + "a" * 300)
    long.chmod(0o755)
    out["cut-short"] = long
    # A chain of scripts: five levels run, six are ELOOP (exec_binprm's depth).
    for depth in (5, 6):
        prev = script(home / f"chain{depth}-{depth - 1}", "/bin/sh", "echo ran")
        for i in range(depth - 2, -1, -1):
            prev = script(home / f"chain{depth}-{i}", str(prev), "")
        out[f"chain-of-{depth}"] = prev
    return out


PROBE = """
import errno, subprocess, sys
for name, path in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        r = subprocess.run([path], capture_output=True, text=True, timeout=30)
        print(name, "ran" if r.stdout.strip() == "ran" else f"exit {r.returncode}")
    except OSError as e:
        print(name, errno.errorcode[e.errno])
"""


def test_exec_answers_are_the_kernels(home):
    """Every "#!" case answered as natively: what runs runs (blanks and an
    argument, env), and each refusal is the kernel's own errno (ENOEXEC for
    no name or a name cut short, ENOENT for CR or a missing one, EACCES for a
    directory or a file without x, ELOOP past five levels)."""
    args = [x for name, path in cases(home).items() for x in (name, str(path))]
    native = subprocess.run(["/usr/bin/python3", "-c", PROBE, *args], capture_output=True,
                            text=True, timeout=120)
    expected = {"plain": "ran", "blanks-and-an-argument": "ran", "env": "ran",
                "no-name": "ENOEXEC", "only-blanks": "ENOEXEC", "crlf": "ENOENT",
                "missing": "ENOENT", "a-directory": "EACCES", "not-executable": "EACCES",
                "itself": "ELOOP", "cut-short": "ENOEXEC", "chain-of-5": "ran",
                "chain-of-6": "ELOOP"}
    assert dict(line.split(" ", 1) for line in native.stdout.splitlines()) == expected, \
        native.stdout + native.stderr
    r = yama_run("--", "/usr/bin/python3", "-c", PROBE, *args, timeout=120)
    assert r.stdout == native.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("owner", ["the-directory-owner", "the-follower"])
def test_an_interpreter_link_the_rule_allows_runs(as_user, planted, home, owner):  # noqa: F811
    """The rule's exemptions hold for an interpreter too: a link owned by the
    directory's owner (root), or by the one who follows it (uid 1001)."""
    uid = 0 if owner == "the-directory-owner" else 1001
    os.symlink("/bin/sh", planted / "mine")
    os.lchown(planted / "mine", uid, uid)
    victim = script(home / "tool", f"{planted}/mine", "echo ran", 1001)
    r = as_user.run("--", str(victim))
    assert (r.returncode, r.stdout) == (0, "ran\n"), r.stderr
