"""Interleaved timing: variants measured in turns, so that a change in the
machine's load falls on all of them alike."""

import statistics
import time

import torch


def interleaved_medians(calls, warmup, repeats, cuda=False):
    """Median seconds of each call, the calls run in turns.

    Arguments
    ---------
    calls : list of callable
        One per variant, taking no argument.
    warmup : int
        Rounds run first and not timed.
    repeats : int
        Rounds timed.
    cuda : bool
        Synchronise CUDA around each timed call.

    Returns
    -------
    list of float
        The median seconds of each call, in the order of ``calls``.
    """
    times = [[] for _ in calls]
    for round_index in range(warmup + repeats):
        for index, call in enumerate(calls):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            call()
            if cuda:
                torch.cuda.synchronize()
            if round_index >= warmup:
                times[index].append(time.perf_counter() - start)
    return [statistics.median(seconds) for seconds in times]
