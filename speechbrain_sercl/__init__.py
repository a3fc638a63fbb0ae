"""Cross-corpus speech emotion recognition for SpeechBrain.

Two-stage fine-tuning of a self-supervised speech model (WavLM or HuBERT)
with supervised contrastive learning over several corpora at once.
"""

__version__ = "0.2.0"

from speechbrain_sercl import _moved

_moved.install()
