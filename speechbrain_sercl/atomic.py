"""Files that a kill leaves either old or new, never half written.

Training is resumable after a kill at any point, and the fold runner takes
a step's output file as proof that the step finished: every file that
marks progress (encoders, test reports, manifests, label encoders) is
written to a temporary file in the same folder and then moved into place
in one step.

Authors
 * speechbrain-sercl developers
"""

import os
import tempfile
from contextlib import contextmanager

__all__ = ["writing_atomically"]


@contextmanager
def writing_atomically(path):
    """Give a temporary path that replaces ``path`` when the block succeeds.

    Readers, and a run resumed after a kill, see the old file or the new
    one, never half of one; on an error the old file stays and the
    temporary one goes.

    Arguments
    ---------
    path : str or os.PathLike
        The file to (re)write.

    Yields
    ------
    str
        The temporary path to write to, in the same folder.

    Example
    -------
    >>> path = getfixture("tmp_path") / "weights.txt"
    >>> with writing_atomically(path) as tmp:
    ...     _ = open(tmp, "w").write("new")
    >>> path.read_text()
    'new'
    >>> with writing_atomically(path) as tmp:
    ...     _ = open(tmp, "w").write("half")
    ...     raise RuntimeError("interrupted")
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('new', ['weights.txt'])
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp_path = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(handle)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise
