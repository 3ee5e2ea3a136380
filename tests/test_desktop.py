"""The desktop: --install-desktop copies a program's menu entry to the user's
applications directory with every Exec run under yama-run (validated by
desktop-file-validate) and --remove-desktop removes it; and firejail's symlink
convention: a link named after a program that points at yama-run runs the
real program under its profile, every argument untouched, never itself."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_tool, yama_run

ROOT = Path(__file__).resolve().parent.parent
APP = """[Desktop Entry]
Type=Application
Name=Probe
Comment=prints where it runs
Exec={exe} --name %u
TryExec={exe}
DBusActivatable=true
Actions=again;

[Desktop Action again]
Name=Again
Exec={exe} --again
"""


def console_script(directory: Path) -> Path:
    """What `pip install` writes as bin/yama-run: this checkout's main()."""
    script = directory / "yama-run"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                      "from sandbox.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def probe(directory: Path, name: str) -> Path:
    """A program that says with which arguments and under which filter it runs."""
    exe = directory / name
    exe.write_text('#!/bin/sh\nfor a in "$0" "$@"; do echo "ARG $a"; done\n'
                   'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status\n')
    exe.chmod(0o755)
    return exe


@pytest.fixture
def desk(tmp_path):
    """A system applications directory holding probe.desktop, an empty user
    one, and a PATH whose yama-run is this checkout's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    yr = console_script(bindir)
    system = tmp_path / "share"
    (system / "applications").mkdir(parents=True)
    exe = probe(tmp_path, "yr-probe-app")
    (system / "applications" / "probe.desktop").write_text(APP.format(exe=exe))
    env = {**os.environ, "XDG_DATA_DIRS": str(system), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PATH": f"{bindir}:{os.environ['PATH']}"}
    return {"env": env, "yr": yr, "exe": exe, "user": tmp_path / "data" / "applications"}


def test_install_runs_every_exec_under_yama_run(desk):
    r = yama_run("--install-desktop", "probe", env=desk["env"])
    assert r.returncode == 0, r.stderr
    entry = desk["user"] / "probe.desktop"
    assert r.stdout.splitlines()[0] == f"yama-run: installed {entry}"
    text = entry.read_text()
    execs = [line for line in text.splitlines() if line.startswith("Exec=")]
    assert execs == [f"Exec={desk['yr']} -- {desk['exe']} --name %u",
                     f"Exec={desk['yr']} -- {desk['exe']} --again"]
    assert "DBusActivatable=false" in text and "DBusActivatable=true" not in text
    assert f"TryExec={desk['exe']}" in text
    assert f"X-Yama-Run-Source={Path(desk['env']['XDG_DATA_DIRS'])}/applications/probe.desktop" in text


def test_the_installed_entry_starts_the_program_under_yama_run(desk):
    """Run the Exec line as a launcher does (field codes dropped)."""
    assert yama_run("--install-desktop", "probe", env=desk["env"]).returncode == 0
    line = next(l for l in (desk["user"] / "probe.desktop").read_text().splitlines()
                if l.startswith("Exec="))
    argv = [w for w in shlex.split(line[len("Exec="):]) if not w.startswith("%")]
    natively = subprocess.run([str(desk["exe"]), "--name"], capture_output=True, text=True)
    assert "Seccomp:\t0" in natively.stdout
    launched = subprocess.run(argv, capture_output=True, text=True, env=desk["env"], timeout=60)
    assert launched.returncode == 0, launched.stderr
    assert "Seccomp:\t2" in launched.stdout and "NoNewPrivs:\t1" in launched.stdout
    assert f"ARG {desk['exe']}\nARG --name\n" in launched.stdout


@requires_tool("desktop-file-validate")
def test_the_entry_validates_and_is_removed_again(desk):
    assert yama_run("--install-desktop", "yr-probe-app", env=desk["env"]).returncode == 0
    entry = desk["user"] / "probe.desktop"          # found by the program its Exec runs
    check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert check.returncode == 0 and ": error: " not in check.stdout, check.stdout
    r = yama_run("--remove-desktop", "probe", env=desk["env"])
    assert r.returncode == 0 and r.stdout == f"yama-run: removed {entry}\n"
    assert not entry.exists() and list(desk["user"].iterdir()) == []


@requires_tool("desktop-file-validate")
@pytest.mark.skipif(not Path("/usr/share/applications/firefox-esr.desktop").exists(),
                    reason="needs firefox-esr's menu entry")
def test_firefox_esr_menu_entry(tmp_path, installed):
    """The entry runs the yama-run command found on PATH (here the one built
    from this checkout), started through `python3 -m sandbox.cli`."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_DATA_DIRS": "/usr/share",
           "PATH": f"{installed.parent}:{os.environ['PATH']}"}
    r = yama_run("--install-desktop", "firefox-esr", env=env)
    assert r.returncode == 0, r.stderr
    entry = tmp_path / "applications" / "firefox-esr.desktop"
    assert "-- /usr/lib/firefox-esr/firefox-esr %u" in r.stdout
    assert subprocess.run(["desktop-file-validate", str(entry)]).returncode == 0
    assert yama_run("--remove-desktop", "firefox-esr", env=env).returncode == 0
    assert not entry.exists()


def test_a_file_yama_run_did_not_make_is_left_alone(desk):
    desk["user"].mkdir(parents=True)
    mine = desk["user"] / "probe.desktop"
    mine.write_text("[Desktop Entry]\nType=Application\nName=Mine\nExec=true\n")
    for option in ("--install-desktop", "--remove-desktop"):
        r = yama_run(option, "probe", env=desk["env"])
        assert r.returncode == 125 and "not made by yama-run: left alone" in r.stderr
    assert mine.read_text().startswith("[Desktop Entry]\nType=Application\nName=Mine")


def test_an_unknown_program_has_no_menu_entry(desk):
    r = yama_run("--install-desktop", "no-such-program-xyz", env=desk["env"])
    assert r.returncode == 125 and "no menu entry for 'no-such-program-xyz'" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a home of uid 1001)")
def test_root_with_a_users_home_writes_nothing_there(desk, tmp_path):
    """Root's yama-run run with uid 1001's HOME (sudo -E, su -m): uid 1001
    had left a symlink to a root-only file under the name of the temporary
    entry (.yama-run-probe.desktop), and --install-desktop wrote the entry
    through it, truncating that file, then renamed the link into place. An
    applications directory of another uid is now left alone (exit 125), as
    --remove-desktop leaves it."""
    home = tmp_path / "home"
    apps = home / ".local" / "share" / "applications"
    apps.mkdir(parents=True)
    victim = tmp_path / "root-only"
    victim.write_text("root's own file\n")
    victim.chmod(0o600)
    (apps / ".yama-run-probe.desktop").symlink_to(victim)
    for path in (home, home / ".local", home / ".local" / "share", apps):
        os.chown(path, 1001, 1001)
    for link in apps.iterdir():
        os.lchown(link, 1001, 1001)
    env = {k: v for k, v in desk["env"].items() if k != "XDG_DATA_HOME"}
    for option in ("--install-desktop", "--remove-desktop"):
        r = yama_run(option, "probe", env={**env, "HOME": str(home)})
        assert victim.read_text() == "root's own file\n"
        assert r.returncode == 125 and r.stdout == "", r.stderr
        assert f"{apps} is not a directory of uid 0 (or root) that only it can write " \
            "(uid 1001, mode 755): left alone" in r.stderr, r.stderr
    assert [p.name for p in apps.iterdir()] == [".yama-run-probe.desktop"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a home of uid 1001)")
def test_root_with_a_users_home_makes_no_directory_there(desk, tmp_path):
    """With no ~/.local/share/applications in uid 1001's home, root's
    --install-desktop made root-owned directories in it."""
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 1001, 1001)
    env = {k: v for k, v in desk["env"].items() if k != "XDG_DATA_HOME"}
    r = yama_run("--install-desktop", "probe", env={**env, "HOME": str(home)})
    assert r.returncode == 125, r.stderr
    assert f"not made: {home} is a directory of uid 1001" in r.stderr, r.stderr
    assert list(home.iterdir()) == []


# -- the symlink convention (argv[0]) ----------------------------------------------

@pytest.fixture
def links(tmp_path):
    """bin/ holds yama-run and a link to it named after a program whose real
    one is in real/, later on PATH."""
    bindir, real = tmp_path / "bin", tmp_path / "real"
    bindir.mkdir()
    real.mkdir()
    yr = console_script(bindir)
    (bindir / "yr-probe-app").symlink_to(yr)
    exe = probe(real, "yr-probe-app")
    config = tmp_path / "config"
    env = {**os.environ, "PATH": f"{bindir}:{real}:{os.environ['PATH']}",
           "XDG_CONFIG_HOME": str(config)}
    return {"env": env, "exe": exe, "link": bindir / "yr-probe-app", "config": config}


def test_a_link_named_after_a_program_runs_it_with_its_arguments_untouched(links):
    args = ["--headless", "--profile", "x", "-v", "--", "--help", "a b"]
    r = subprocess.run(["yr-probe-app", *args], capture_output=True, text=True,
                       env=links["env"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:len(args) + 1] == [f"ARG {links['exe']}",
                                                     *(f"ARG {a}" for a in args)]
    assert "Seccomp:\t2" in r.stdout                # under yama-run: the default profile


def test_the_program_runs_under_the_profile_of_its_name(links):
    profiles = links["config"] / "yama-run" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "yr-probe-app.toml").write_text('chain = []\n')    # no filter at all
    r = subprocess.run(["yr-probe-app"], capture_output=True, text=True, env=links["env"],
                       timeout=60)
    assert r.returncode == 0 and "Seccomp:\t0" in r.stdout, r.stdout + r.stderr
    assert "NoNewPrivs:\t1" in r.stdout             # still started by yama-run


def test_a_link_with_no_real_program_behind_it_says_so_and_never_runs_itself(links):
    links["exe"].unlink()
    second = links["link"].parent.parent / "more"   # another link to yama-run, later on PATH
    second.mkdir()
    (second / "yr-probe-app").symlink_to(links["link"])
    env = {**links["env"], "PATH": f"{links['link'].parent}:{second}:/usr/bin:/bin"}
    r = subprocess.run(["yr-probe-app", "--x"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 127
    assert "yr-probe-app: no program of that name on PATH besides links to yama-run" in r.stderr
