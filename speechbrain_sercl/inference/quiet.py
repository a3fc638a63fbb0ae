"""The libraries' own warnings and logs, hidden while a command runs.

Loading and running a model through SpeechBrain and transformers prints
what concerns their authors, not the user: deprecation notices
(``gradient_checkpointing_disable``), ``torchvision is not available``,
a progress bar for loading weights from the disk. :func:`libraries_quiet`
hides, for the length of a ``with`` block, the Python warnings raised
from inside those libraries, their log records below ``ERROR`` and
transformers' progress bars. The package's own warnings, which name the
file they are about, still show; so do the libraries' errors.

Log records are filtered at the handlers (Python's last-resort handler,
the root logger's and the libraries' own), not by the loggers' levels:
SpeechBrain sets a level on each of its loggers (``get_logger``), which a
parent's level would not override.

Example
-------
>>> import logging, warnings
>>> seen = []
>>> class Keep(logging.Handler):
...     def emit(self, record):
...         seen.append(record.getMessage())
>>> keep = Keep()
>>> logging.getLogger().addHandler(keep)
>>> library = logging.getLogger("speechbrain.utils.train_logger")
>>> library.setLevel(logging.INFO)  # as SpeechBrain's get_logger does
>>> ours = logging.getLogger("speechbrain_sercl.inference.predict")
>>> with warnings.catch_warnings(record=True) as shown:
...     warnings.simplefilter("always")
...     with libraries_quiet():
...         library.warning("torchvision is not available")
...         ours.warning("Skipping a.wav: no samples")
...         warnings.warn_explicit("old", FutureWarning, "t.py", 1, "torch.nn")
...         warnings.warn_explicit("bad file", UserWarning, "p.py", 1, "mine")
...     library.warning("after the block")
>>> logging.getLogger().removeHandler(keep)
>>> seen
['Skipping a.wav: no samples', 'after the block']
>>> [str(warning.message) for warning in shown]
['bad file']

Authors
 * speechbrain-sercl developers
"""

import contextlib
import logging
import re
import warnings

__all__ = ["LIBRARIES", "libraries_quiet"]

LIBRARIES = (
    "huggingface_hub",
    "speechbrain",
    "torch",
    "torchaudio",
    "transformers",
)
_LIBRARY_MODULES = rf"({'|'.join(map(re.escape, LIBRARIES))})(\.|$)"


class _LibraryNotices(logging.Filter):
    """Drops the libraries' log records below ``ERROR``."""

    def filter(self, record):
        library = record.name.split(".")[0] in LIBRARIES
        return not library or record.levelno >= logging.ERROR


@contextlib.contextmanager
def libraries_quiet():
    """Hide the libraries' warnings, logs below ``ERROR`` and progress
    bars inside the block; restore them after it."""
    from transformers.utils import logging as transformers_logging

    handlers = {logging.lastResort, *logging.getLogger().handlers}
    for name in LIBRARIES:
        handlers.update(logging.getLogger(name).handlers)
    handlers.discard(None)
    notices = _LibraryNotices()
    bars = transformers_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)
        for handler in handlers:
            handler.addFilter(notices)
        transformers_logging.disable_progress_bar()
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(notices)
            if bars:
                transformers_logging.enable_progress_bar()
