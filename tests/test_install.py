"""README's two commands: the install (a venv with Debian's python3, as root into
/usr/local and as an ordinary user into ~/.local, ending with the first run),
and the test command, which .ci/run runs exactly. The install runs in a copy
of the checkout with a scratch HOME; root's /usr/local is a tmpfs in a mount
namespace of its own, so the machine is left as it was. The system packages
are present here: the apt-get step is checked for their names, not run."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import requires_root, requires_tool

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = "/usr/bin/python3"
PACKAGES = ("gcc", "libc6-dev", "python3-dev", "python3-venv", "libseccomp2", "man-db")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"     # Debian's python3 first, as on a fresh machine


def readme_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def install_command() -> str:
    return readme_blocks()[0]


def readme_test_command() -> str:
    return readme_blocks()[1].strip()


def test_readme_starts_with_the_install_then_the_test_command():
    text = (ROOT / "README.md").read_text()
    first = text.index("```sh")
    assert text.index(install_command()) == first + len("```sh\n")
    assert "pytest" in readme_test_command() and "pip install" in install_command()


def test_the_install_command_names_every_system_package_and_docs_repeat_it():
    command = install_command()
    for package in PACKAGES:
        assert re.search(rf"\b{re.escape(package)}\b", command), package
    assert command in (ROOT / "docs" / "install.md").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().rstrip().splitlines()
    assert ci[-1] == readme_test_command()
    installed = " ".join(ci)
    for package in (*PACKAGES, "gdb", "strace", "desktop-file-utils"):
        assert re.search(rf"\b{re.escape(package)}\b", installed), package


def without_apt(command: str) -> str:
    """The install command minus its apt-get step (the packages are here)."""
    out, n = re.subn(r"\$S apt-get update && \$S apt-get install -y [^&]*&&\n", "", command)
    assert n == 1, command
    return out


def source_copy(into: Path) -> Path:
    src = into / "yama-run"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", ".pytest_cache"))
    return src


def scratch() -> Path:
    """A directory every uid can reach (pytest's own are 0700 root)."""
    where = Path(tempfile.mkdtemp(prefix="yama-run-install-"))
    where.chmod(0o755)
    return where


def check_first_run_and_man(result: subprocess.CompletedProcess, man_page: str):
    assert "ptrace: denied PTRACE_SEIZE" in result.stderr, result.stdout + result.stderr
    assert "ptrace_scope 3: attaching is disabled" in result.stderr
    # man finds the page through PATH (PREFIX/bin -> PREFIX/share/man): the link
    # the install made there, to the venv's copy
    found = re.search(r"^MAN (/\S+)$", result.stdout, re.M)
    link = re.search(r"^LINK (\S+) (\S+)$", result.stdout, re.M)
    assert found and link, result.stdout + result.stderr
    assert link.group(1) == man_page and link.group(2) == found.group(1)
    assert found.group(1).endswith("/lib/yama-run/share/man/man1/yama-run.1")
    assert "yama-run - run a program with Yama" in result.stdout        # the page renders


needs_install_tools = [
    requires_root, requires_tool("unshare"), requires_tool("setpriv"), requires_tool("man"),
    requires_tool("strace"),
    pytest.mark.skipif(subprocess.run([DEBIAN_PYTHON, "-c", "import ensurepip, venv"],
                                      capture_output=True).returncode != 0,
                       reason="needs Debian's python3 with python3-venv"),
]

# After the install: where `man` finds the page through PATH, and the page itself.
AFTER = ('; echo "MAN $(readlink -f "$(PATH=$P/bin:$PATH man -w yama-run)")"; '
         'echo "LINK $P/share/man/man1/yama-run.1 $(readlink -f $P/share/man/man1/yama-run.1)"; '
         'PATH=$P/bin:$PATH MANPAGER=cat MANWIDTH=200 man yama-run | head -5')


def run_install(shell: list[str], src: Path, home: Path, timeout=600):
    script = f"cd {src} && " + without_apt(install_command()).strip() + AFTER
    env = {"HOME": str(home), "PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
    return subprocess.run([*shell, "sh", "-c", script], capture_output=True, text=True,
                          env=env, timeout=timeout)


def check_command_installed_then_uninstalled(shell: list[str], venv: Path, home: Path):
    """The command is the launcher compiled at install (csrc/launcher.c) and
    the Python part it runs, which is read, never run itself; pip lists
    both in RECORD, so `pip uninstall` removes both (docs/startup.md). The
    Python part is compiled at every run, sandbox/entry.py, which does the
    rest, once: pip compiled it at install (RECORD lists its bytecode), and
    the bytecode is valid for the source (its mtime and size)."""
    launcher, part = venv / "bin" / "yama-run", venv / "bin" / "yama-run.py"
    assert launcher.read_bytes()[:4] == b"\x7fELF"
    assert launcher.stat().st_mode & 0o111 == 0o111
    assert part.stat().st_mode & 0o111 == 0
    record = next(venv.glob("lib/python3*/site-packages/yama_run-*.dist-info/RECORD"))
    listed = {line.split(",")[0] for line in record.read_text().splitlines()}
    assert {"../../../bin/yama-run", "../../../bin/yama-run.py"} <= listed
    (cached,) = [name for name in listed if name.startswith("sandbox/__pycache__/entry.")]
    entry = record.parent.parent / "sandbox" / "entry.py"
    header = (record.parent.parent / cached).read_bytes()[4:16]     # flags, mtime, size
    assert header == bytes(4) + (int(entry.stat().st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + \
        entry.stat().st_size.to_bytes(4, "little")
    env = {"HOME": str(home), "PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
    done = subprocess.run([*shell, str(venv / "bin" / "pip"), "uninstall", "-y", "yama-run"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (venv / "bin").rglob("yama-run*")) == []


def _marks(test):
    for mark in reversed(needs_install_tools):
        test = mark(test)
    return test


@_marks
def test_install_as_root_into_usr_local():
    """Inside a mount namespace whose /usr/local is an empty tmpfs."""
    where = scratch()
    try:
        src = source_copy(where)
        home = where / "root-home"
        home.mkdir()
        shell = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount -t tmpfs tmpfs /usr/local && exec "$@"', "-"]
        result = run_install(shell, src, home)
        check_first_run_and_man(result, "/usr/local/share/man/man1/yama-run.1")
    finally:
        shutil.rmtree(where, ignore_errors=True)


@_marks
def test_install_as_an_ordinary_user_into_their_home():
    where = scratch()
    try:
        home = where / "home"
        home.mkdir()
        src = source_copy(home)
        subprocess.run(["chown", "-R", "1001:1001", str(home)], check=True)
        shell = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]
        result = run_install(shell, src, home)
        check_first_run_and_man(result, f"{home}/.local/share/man/man1/yama-run.1")
        assert (home / ".local" / "bin" / "yama-run").is_symlink()
        assert not (src / ".venv").exists()
        check_command_installed_then_uninstalled(shell, home / ".local" / "lib" / "yama-run",
                                                 home)
    finally:
        shutil.rmtree(where, ignore_errors=True)


@requires_tool("cc")
@needs_install_tools[-1]
def test_an_editable_install_runs_a_program():
    """`pip install -e`: the package is not in site-packages, only found
    through the finder yama-run's __editable__ .pth installs, which the
    Python part runs when the package is not there (docs/startup.md)."""
    where = scratch()
    try:
        src = source_copy(where)
        venv = where / "venv"
        env = {"HOME": str(where), "PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
        subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(src)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        (packages,) = venv.glob("lib/python3*/site-packages")
        assert not (packages / "sandbox").exists()
        (pth,) = packages.glob("__editable__.yama_run-*.pth")
        assert pth.read_text().startswith("import "), pth.read_text()
        r = subprocess.run([str(venv / "bin" / "yama-run"), "-v", "--", "sh", "-c", "exit 7"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 7, r.stderr
        assert f"yama-run: profile default ({src}/profiles/default.toml" in r.stderr, r.stderr
    finally:
        shutil.rmtree(where, ignore_errors=True)
