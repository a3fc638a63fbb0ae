"""Atomic files: the mode a shared folder needs, nothing left behind."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_an_atomic_file_gets_the_mode_of_the_umask(tmp_path, umask, mode):
    path = tmp_path / "shared.json"
    code = (
        "import os, sys; os.umask(int(sys.argv[2], 8));"
        "from speechbrain_sercl.atomic import writing_atomically\n"
        "with writing_atomically(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'w').write('{}')"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path), oct(umask)], check=True
    )
    assert path.stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]
