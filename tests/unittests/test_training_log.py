"""train_log.txt lines, as SpeechBrain's FileTrainLogger writes them, back
into numbers."""

import pytest

from speechbrain_sercl.reporting.training_log import (
    epoch_curves,
    last_test_values,
    read_train_log,
)

STAGE1 = (
    "epoch: 1, lr: 5.00e-03 - train loss: 2.74, train contrastive: 2.26, "
    "train margin: 4.74e-01, train positive_similarity: 9.07e-01, "
    "train negative_similarity: 8.13e-01\n"
    "epoch: 2, lr: 2.50e-03 - train loss: 1.50, train contrastive: 1.22, "
    "train margin: 2.78e-01, train positive_similarity: 8.74e-01, "
    "train negative_similarity: 4.66e-01\n"
)
STAGE2 = (
    "epoch: 1, lr: 5.00e-04 - train loss: 1.79 - valid loss: 1.60, "
    "valid UA: 4.00e-01\n"
    "\n"
    "epoch: 2, lr: 5.00e-04 - train loss: 1.20 - valid loss: 1.10, "
    "valid UA: 6.50e-01\n"
    "Epoch loaded: 2 - test loss: 1.62, test UA: 7.50e-01, test WA: 0.8\n"
)


def test_stage1_curves(tmp_path):
    path = tmp_path / "train_log.txt"
    path.write_text(STAGE1)
    curves = epoch_curves(read_train_log(path))
    assert curves["train loss"] == ([1, 2], [2.74, 1.50])
    assert curves["train margin"] == ([1, 2], [0.474, 0.278])
    assert curves["train negative_similarity"] == ([1, 2], [0.813, 0.466])
    assert sorted(curves) == [
        "train contrastive",
        "train loss",
        "train margin",
        "train negative_similarity",
        "train positive_similarity",
    ]
    assert read_train_log(path)[1].header == {"epoch": 2.0, "lr": 0.0025}
    assert last_test_values(read_train_log(path)) == (None, {})


def test_stage2_curves_and_test_line(tmp_path):
    path = tmp_path / "train_log.txt"
    path.write_text(STAGE2)
    lines = read_train_log(path)
    assert len(lines) == 3
    curves = epoch_curves(lines)
    assert curves["valid UA"] == ([1, 2], [0.4, 0.65])
    assert curves["train loss"] == ([1, 2], [1.79, 1.20])
    assert "test UA" not in curves
    assert last_test_values(lines) == (
        2,
        {"test loss": 1.62, "test UA": 0.75, "test WA": 0.8},
    )


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "train_log.txt"
    path.write_text(STAGE1 + "epoch: 3 - train loss 1.0\n")
    with pytest.raises(ValueError, match=r"train_log.txt, line 3: 'train loss"):
        read_train_log(path)
