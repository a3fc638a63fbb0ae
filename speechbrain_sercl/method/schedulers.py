"""Epoch-wise learning-rate schedules of the paper, in SpeechBrain's style.

The three schedules of the method are all "multiply by a factor after some
epochs": stage 1 halves the rate after epochs 25, 30, 35, 40 and 45; stage 2
multiplies it by 0.1 after epoch 5; the FT baseline by 0.2 after epochs 20
and 40. Epochs count from 1, as SpeechBrain's ``EpochCounter`` does, and a
milestone ``m`` means "from epoch ``m + 1`` on" (the semantics of
``torch.optim.lr_scheduler.MultiStepLR`` with 1-based epochs).

The schedule is a pure function of the epoch, so a resumed run gets the
right rate from the recovered epoch counter alone. Parameter groups keep
their own ratio to the base rate in ``group["lr_scale"]`` (the transformer
runs at 0.4x), which :func:`set_learning_rate` honours.

Authors
 * speechbrain-sercl developers
"""

__all__ = ["MultiStepScheduler", "set_learning_rate"]


class MultiStepScheduler:
    """Multiply a value by ``factor`` after each milestone epoch.

    ``value(epoch) = initial_value * factor ** #{m in milestones: m < epoch}``

    Arguments
    ---------
    initial_value : float
        The value for the first epoch.
    milestones : list of int
        Epochs after which the value is multiplied by ``factor``.
    factor : float
        The multiplier applied at each milestone.

    Example
    -------
    >>> stage1 = MultiStepScheduler(1e-4, milestones=[25, 30, 35], factor=0.5)
    >>> [stage1.value(epoch) for epoch in (1, 25, 26, 30, 31, 36)]
    [0.0001, 0.0001, 5e-05, 5e-05, 2.5e-05, 1.25e-05]
    >>> stage1(current_epoch=26)
    (0.0001, 5e-05)
    """

    def __init__(self, initial_value, milestones, factor):
        if initial_value <= 0:
            raise ValueError(f"initial_value must be > 0, got {initial_value}")
        if factor <= 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        milestones = [int(m) for m in milestones]
        if milestones != sorted(set(milestones)) or any(
            m < 1 for m in milestones
        ):
            raise ValueError(
                "milestones must be increasing positive epochs, "
                f"got {milestones}"
            )
        self.initial_value = initial_value
        self.milestones = milestones
        self.factor = factor

    def value(self, epoch):
        """Return the value in force during ``epoch`` (1-based).

        Arguments
        ---------
        epoch : int
            The epoch, counting from 1.

        Returns
        -------
        float
            The scheduled value.
        """
        passed = sum(1 for milestone in self.milestones if milestone < epoch)
        return self.initial_value * self.factor**passed

    def __call__(self, current_epoch):
        """Return the previous and the current value (SpeechBrain style).

        Arguments
        ---------
        current_epoch : int
            The epoch about to run.

        Returns
        -------
        tuple of float
            The value of the epoch before and of ``current_epoch``.
        """
        previous = self.value(max(current_epoch - 1, 1))
        return previous, self.value(current_epoch)


def set_learning_rate(optimizer, learning_rate):
    """Set every group's rate to ``learning_rate * group["lr_scale"]``.

    Arguments
    ---------
    optimizer : torch.optim.Optimizer
        The optimizer; groups without ``lr_scale`` use a scale of 1.
    learning_rate : float
        The base learning rate.

    Example
    -------
    >>> import torch
    >>> head, encoder = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> optimizer = torch.optim.Adam(
    ...     [
    ...         {"params": head.parameters()},
    ...         {"params": encoder.parameters(), "lr_scale": 0.4},
    ...     ],
    ...     lr=1.0,
    ... )
    >>> set_learning_rate(optimizer, 1e-3)
    >>> [round(group["lr"], 6) for group in optimizer.param_groups]
    [0.001, 0.0004]
    """
    for group in optimizer.param_groups:
        group["lr"] = learning_rate * group.get("lr_scale", 1.0)
