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
import shutil
import tempfile
from contextlib import contextmanager

__all__ = ["writing_atomically", "writing_folder_atomically"]


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


@contextmanager
def writing_folder_atomically(folder):
    """Give a temporary folder that replaces ``folder`` when the block
    succeeds.

    The temporary folder is next to ``folder`` (same file system) and
    readable by all (``0o755``); on success it replaces ``folder`` (an
    existing one is removed first, so there is a moment with neither), on
    an error it goes and ``folder`` stays as it was.

    Arguments
    ---------
    folder : str or os.PathLike
        The folder to (re)write.

    Yields
    ------
    str
        The temporary folder to write to.

    Example
    -------
    >>> folder = getfixture("tmp_path") / "model"
    >>> with writing_folder_atomically(folder) as tmp:
    ...     _ = open(os.path.join(tmp, "a.txt"), "w").write("a")
    >>> sorted(os.listdir(folder)), oct(os.stat(folder).st_mode & 0o777)
    (['a.txt'], '0o755')
    >>> with writing_folder_atomically(folder) as tmp:
    ...     raise RuntimeError("interrupted")
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> sorted(os.listdir(folder.parent))
    ['model']
    """
    folder = os.fspath(folder)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=parent)
    try:
        os.chmod(staging, 0o755)  # mkdtemp's 0o700 would keep it private
        yield staging
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
