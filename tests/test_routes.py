"""The route tables as plain data (sandbox/routes.py): the numbers they give
libseccomp are its own (the supervisor reads them without pyseccomp:
tests/test_launch.py)."""
from __future__ import annotations

import errno

import pyseccomp as sc

from sandbox import filter as seccomp_filter
from sandbox import routes


def test_the_actions_and_comparisons_are_libseccomps_numbers():
    assert routes.NOTIFY == sc.NOTIFY
    for err in (errno.EPERM, errno.EIO, errno.ENOSYS, errno.EBUSY, errno.EOPNOTSUPP):
        assert routes.ERRNO(err) == sc.ERRNO(err)
    assert routes.TRACE(0) == sc.TRACE(0) == routes.TRACED
    assert (routes.NE, routes.EQ, routes.MASKED_EQ) == (sc.NE, sc.EQ, sc.MASKED_EQ)


def test_every_comparison_becomes_the_same_libseccomp_argument():
    """What build() gives libseccomp for each routed comparison."""
    compared = {cmp for rules in routes.ROUTES.values() for _, args in rules for cmp in args}
    assert len(compared) > 20
    for cmp in compared:
        arg = seccomp_filter._arg(cmp)
        expected = sc.Arg(cmp.arg, cmp.op, cmp.a, cmp.b)
        assert vars(arg) == vars(expected)
        assert cmp.op in (routes.NE, routes.EQ, routes.MASKED_EQ)
