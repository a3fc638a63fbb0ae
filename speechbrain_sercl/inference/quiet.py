"""The libraries' own warnings and logs, hidden while a command runs.

Loading and running a model through SpeechBrain and transformers prints
what concerns their authors, not the user: deprecation notices
(``gradient_checkpointing_disable``), ``torchvision is not available``,
a progress bar for loading weights from the disk. :func:`libraries_quiet`
hides, for the length of a ``with`` block, the Python warnings raised
from inside those libraries, their log records below ``ERROR`` and
transformers' progress bars. The package's own warnings, which name the
file they are about, still show; so do the libraries' errors.

Example
-------
>>> import logging, warnings
>>> library = logging.getLogger("speechbrain.utils.train_logger")
>>> with warnings.catch_warnings(record=True) as shown:
...     warnings.simplefilter("always")
...     with libraries_quiet():
...         warnings.warn_explicit("old", FutureWarning, "t.py", 1, "torch.nn")
...         print(library.isEnabledFor(logging.WARNING))
...     warnings.warn_explicit("bad file", UserWarning, "p.py", 1, "mine")
False
>>> [str(warning.message) for warning in shown]
['bad file']
>>> library.isEnabledFor(logging.WARNING)
True

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


@contextlib.contextmanager
def libraries_quiet():
    """Hide the libraries' warnings, logs below ``ERROR`` and progress
    bars inside the block; restore them after it."""
    from transformers.utils import logging as transformers_logging

    loggers = [logging.getLogger(name) for name in LIBRARIES]
    levels = [logger.level for logger in loggers]
    bars = transformers_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        transformers_logging.disable_progress_bar()
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            if bars:
                transformers_logging.enable_progress_bar()
