"""Here for what pyproject.toml cannot say: cffi_modules, and the command.

The command is two files in bin/: the launcher compiled from
csrc/launcher.c and csrc/front.c as `yama-run`, and the Python part it
runs, `yama-run.py` (docs/startup.md). Both are scripts to setuptools, so pip installs them into
the venv's bin/ (in a wheel, an editable install, or `--user`), lists them
in RECORD and removes them on uninstall."""
import os

from setuptools import setup
from setuptools.command.install_scripts import install_scripts
# setuptools' own distutils, once setuptools is imported
from distutils.ccompiler import new_compiler
from distutils.command.build_scripts import build_scripts
from distutils.sysconfig import customize_compiler

LAUNCHER = ["csrc/launcher.c", "csrc/front.c", "csrc/procstat.c"]   # the extension's too
COMMAND = "yama-run"
PYTHON_PART = "yama-run.py"


class build_command(build_scripts):
    """The scripts (bin/yama-run.py), then the launcher beside them, built
    with the C compiler that builds the extension."""

    def run(self):
        super().run()
        compiler = new_compiler(force=self.force)
        customize_compiler(compiler)
        build_temp = self.get_finalized_command("build").build_temp
        objects = compiler.compile(LAUNCHER, output_dir=build_temp, include_dirs=["csrc"],
                                   extra_postargs=["-O2", "-Wall", "-Wextra", "-std=gnu11"])
        compiler.link_executable(objects, COMMAND, output_dir=self.build_dir)


class install_command(install_scripts):
    """The Python part is read by the launcher, never run itself: not executable
    (install_scripts makes every script so)."""

    def run(self):
        super().run()
        for path in self.get_outputs():
            if os.path.basename(path) == PYTHON_PART:
                os.chmod(path, 0o644)


setup(cffi_modules=["sandbox/_build.py:ffibuilder"],
      cmdclass={"build_scripts": build_command, "install_scripts": install_command})
