"""The one atomic writer every file of the package goes through: a reader sees the old file or the new one."""

from __future__ import annotations

import os
import stat

import pytest

from weightdecay._io import atomic_write, atomic_writer


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "report.html"
    atomic_write(target, "old page")
    with pytest.raises(RuntimeError, match="drawing failed"):
        with atomic_writer(target) as fh:
            fh.write(b"half of a new pa")
            raise RuntimeError("drawing failed")
    assert target.read_text() == "old page" and os.listdir(tmp_path) == ["report.html"]


def test_the_file_gets_ordinary_permissions_not_a_temporary_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "sub" / "a.json", b"{}")
    finally:
        os.umask(old)
    assert path == tmp_path / "sub" / "a.json" and path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
