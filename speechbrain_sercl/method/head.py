"""The two-layer emotion classification head of stage 2.

``Linear(input_size, hidden_size) -> ReLU -> Linear(hidden_size,
n_classes) -> log_softmax``, applied to pooled utterance embeddings; the
log-probabilities feed SpeechBrain's ``nll_loss``.

Example
-------
>>> import torch
>>> head = EmotionClassifier(input_size=8, n_classes=4, hidden_size=5)
>>> head(torch.randn(3, 8)).shape
torch.Size([3, 4])
"""

import torch

__all__ = ["EmotionClassifier"]


class EmotionClassifier(torch.nn.Module):
    """Two-layer MLP returning log-probabilities over the emotions.

    Arguments
    ---------
    input_size : int
        Size of the pooled embedding (768 for WavLM/HuBERT Base).
    n_classes : int
        Number of emotions (>= 2).
    hidden_size : int
        Size of the hidden layer.

    Example
    -------
    >>> import torch
    >>> head = EmotionClassifier(input_size=8, n_classes=3, hidden_size=4)
    >>> log_probabilities = head(torch.randn(2, 1, 8))  # SpeechBrain shape
    >>> torch.allclose(log_probabilities.exp().sum(dim=1), torch.ones(2))
    True
    """

    def __init__(self, input_size=768, n_classes=4, hidden_size=256):
        super().__init__()
        _check_int_at_least(input_size, 1, "input_size")
        _check_int_at_least(n_classes, 2, "n_classes")
        _check_int_at_least(hidden_size, 1, "hidden_size")
        self.input_size = input_size
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(input_size, hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, n_classes),
            torch.nn.LogSoftmax(dim=-1),
        )

    def forward(self, embeddings):
        """Classify a batch of embeddings.

        Arguments
        ---------
        embeddings : torch.Tensor
            Shape ``[B, input_size]`` or ``[B, 1, input_size]``.

        Returns
        -------
        torch.Tensor
            Log-probabilities, shape ``[B, n_classes]``.
        """
        if embeddings.dim() == 3 and embeddings.shape[1] == 1:
            embeddings = embeddings.squeeze(1)
        if embeddings.dim() != 2 or embeddings.shape[1] != self.input_size:
            raise ValueError(
                "EmotionClassifier: embeddings must have shape "
                f"[B, {self.input_size}] or [B, 1, {self.input_size}], got "
                f"{tuple(embeddings.shape)}"
            )
        return self.layers(embeddings)


def _check_int_at_least(value, minimum, name):
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"EmotionClassifier: {name} must be an int >= {minimum}, "
            f"got {value!r}"
        )
