"""Loading weights never runs code hidden in a checkpoint."""

import collections

import pytest
import torch

from speechbrain_sercl.checkpoints import CheckpointError
from speechbrain_sercl.transfer import (
    load_tensors,
    strict_parameter_transfer,
)


class Payload:
    """Stands for any object whose unpickling could run code."""


def test_a_checkpoint_holding_more_than_tensors_is_refused(tmp_path):
    layer = torch.nn.Linear(2, 2)
    path = tmp_path / "pooling.ckpt"
    state = collections.OrderedDict(layer.state_dict())
    state["extra"] = Payload()
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        strict_parameter_transfer(layer, path)
    assert str(error.value) == (
        f"{path}: refused: it names test_transfer.Payload (a checkpoint "
        "holds tensors only; unpickling anything else could run code)"
    )


def test_a_checkpoint_holding_plain_values_is_refused(tmp_path):
    path = tmp_path / "pooling.ckpt"
    torch.save({"weight": torch.ones(2), "step": 3}, path)
    with pytest.raises(CheckpointError, match="step holds int, not a tensor"):
        load_tensors(path)
    torch.save([torch.ones(2)], path)
    with pytest.raises(CheckpointError, match="it holds list, not a mapping"):
        load_tensors(path)


def test_a_plain_state_dict_loads_bit_for_bit(tmp_path):
    source, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    torch.save(source.state_dict(), tmp_path / "layer.ckpt")
    strict_parameter_transfer(target, tmp_path / "layer.ckpt")
    assert torch.equal(source.weight, target.weight)
    assert torch.equal(source.bias, target.bias)
