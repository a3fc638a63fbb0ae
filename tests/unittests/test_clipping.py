"""Gradient clipping covers every trainable parameter of every Brain.

Each recipe YAML is loaded as users run it (the speech model swapped for a
tiny one) and its Brain builds its optimizer (one parameter group per
module). Every trainable parameter gets a known gradient by hand, the Brain
takes one optimizer step, and the gradients the optimizer sees (recorded by
a step pre-hook) are compared with a float64 reference computed here from
the unclipped gradients: ``g * min(1, max_norm / total_norm)``, with the
total norm over all parameters together.
"""

import math

import pytest
import torch
from brain_fixtures import load_brain

from speechbrain_sercl.method.brains import (
    ClassifierBrain,
    ContrastiveBrain,
    FineTuneBrain,
)

STAGE1_DATA = {"data_folder_iemocap": "unused", "data_folder_casia": "unused"}
DOWNSTREAM_DATA = {"corpus": "casia", "data_folder": "unused"}
YAMLS = {
    "wavlm": (ContrastiveBrain, STAGE1_DATA),
    "hubert": (ContrastiveBrain, STAGE1_DATA),
    "demo": (ContrastiveBrain, {}),
    "classifier": (ClassifierBrain, DOWNSTREAM_DATA),
    "finetune": (FineTuneBrain, DOWNSTREAM_DATA),
}
# The trainable modules, each in its own parameter group.
GROUPS = {
    ContrastiveBrain: {"ssl", "pooling"},
    ClassifierBrain: {"pooling", "classifier"},
    FineTuneBrain: {"ssl", "pooling", "classifier"},
}


def load_yaml_brain(name, tmp_path):
    brain_class, data = YAMLS[name]
    brain, _ = load_brain(f"hparams/{name}.yaml", brain_class, tmp_path, data)
    return brain


def trainable(brain):
    return [
        param
        for group in brain.optimizer.param_groups
        for param in group["params"]
    ]


def set_gradients(params, scale, seed=0):
    """Give every parameter a random gradient; return float64 copies."""
    generator = torch.Generator().manual_seed(seed)
    for param in params:
        noise = torch.randn(param.shape, generator=generator)
        param.grad = (scale * noise).to(param.dtype)
    return [param.grad.double().clone() for param in params]


def step_and_record(brain):
    """One ``optimizers_step``; the gradients its optimizer stepped with.

    Returns None for each parameter without a gradient, and an empty list
    when the optimizer did not step.
    """
    params = trainable(brain)
    seen = []

    def record(optimizer, args, kwargs):
        seen.extend(
            None if p.grad is None else p.grad.double().clone() for p in params
        )

    handle = brain.optimizer.register_step_pre_hook(record)
    try:
        brain.optimizers_step()
    finally:
        handle.remove()
    return seen


def global_norm(gradients):
    """The L2 norm of all the gradients together, in float64."""
    return math.sqrt(sum(float((g**2).sum()) for g in gradients))


def clipped_reference(gradients, max_norm):
    """``g * min(1, max_norm / total_norm)`` in float64, over all of g."""
    total = global_norm(gradients)
    factor = min(1.0, max_norm / total)
    return [g * factor for g in gradients], total


@pytest.mark.parametrize("name", sorted(YAMLS))
@pytest.mark.parametrize("scale", [10.0, 1e-3])
def test_clipping_scales_every_group_by_one_factor(name, scale, tmp_path):
    brain = load_yaml_brain(name, tmp_path)
    assert brain.hparams.max_grad_norm == brain.max_grad_norm == 5.0
    groups = {group["name"] for group in brain.optimizer.param_groups}
    assert groups == GROUPS[type(brain)]
    params = trainable(brain)
    gradients = set_gradients(params, scale)
    expected, total = clipped_reference(gradients, brain.max_grad_norm)
    assert (total > 5.0) == (scale > 1.0)  # clipped, and not clipped

    seen = step_and_record(brain)

    assert global_norm(seen) <= brain.max_grad_norm * (1 + 1e-6)
    for got, want in zip(seen, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    # SpeechBrain's bookkeeping after the step.
    assert all(param.grad is None for param in params)
    assert brain.optimizer_step == 1


@pytest.mark.parametrize("max_norm", [-1.0, 0.0])
def test_a_non_positive_max_grad_norm_disables_clipping(max_norm, tmp_path):
    """torch would flip the gradients' sign (negative) or zero them (0)."""
    brain = load_yaml_brain("finetune", tmp_path)
    brain.max_grad_norm = max_norm
    gradients = set_gradients(trainable(brain), scale=10.0)

    seen = step_and_record(brain)

    for got, want in zip(seen, gradients, strict=True):
        assert torch.equal(got, want)


def test_fp16_gradients_are_unscaled_before_clipping(tmp_path):
    brain = load_yaml_brain("finetune", tmp_path)
    brain.scaler = torch.GradScaler("cpu", init_scale=1024.0)
    brain.scaler.scale(torch.ones(()))  # the scale exists after a backward
    params = trainable(brain)
    gradients = set_gradients(params, scale=10.0)
    for param in params:
        param.grad *= 1024.0
    expected, _ = clipped_reference(gradients, brain.max_grad_norm)

    seen = step_and_record(brain)

    for got, want in zip(seen, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


def test_a_non_finite_gradient_is_dropped_before_the_norm(tmp_path):
    """With ``skip_nonfinite_grads`` the other gradients are clipped by
    their own norm, not zeroed by an infinite one."""
    brain = load_yaml_brain("finetune", tmp_path)
    brain.skip_nonfinite_grads = True
    params = trainable(brain)
    gradients = set_gradients(params, scale=10.0)
    params[0].grad[0] = math.inf
    expected, _ = clipped_reference(gradients[1:], brain.max_grad_norm)

    seen = step_and_record(brain)

    assert seen[0] is None
    for got, want in zip(seen[1:], expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


def test_frozen_optimizers_neither_step_nor_lose_gradients(tmp_path):
    brain = load_yaml_brain("finetune", tmp_path)
    brain.freeze_optimizers = lambda optimizers: {}
    params = trainable(brain)
    gradients = set_gradients(params, scale=10.0)
    before = [param.detach().clone() for param in params]

    assert step_and_record(brain) == []

    for param, grad, value in zip(params, gradients, before, strict=True):
        assert torch.equal(param.grad.double(), grad)
        assert torch.equal(param.detach(), value)
