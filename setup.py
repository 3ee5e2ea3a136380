# Only here because cffi_modules has no pyproject.toml equivalent.
from setuptools import setup

setup(cffi_modules=["sandbox/_build.py:ffibuilder"])
