"""The paper's learning-rate schedules, epoch by epoch, through the YAMLs.

Each recipe YAML is loaded as users run it (only the speech model swapped
for a tiny one), its Brain builds its optimizer, and the rate of every
parameter group is read at the start of every epoch and compared with the
schedule written out from the paper's text.
"""

import pytest
import speechbrain as sb
from brain_fixtures import load_brain

from speechbrain_sercl.method.brains import (
    ClassifierBrain,
    ContrastiveBrain,
    FineTuneBrain,
)
from speechbrain_sercl.method.schedulers import MultiStepScheduler


def paper_stage1(epoch):
    """Adam 1e-4, 50 epochs, halved every 5 epochs from epoch 25."""
    halvings = [0] * 25 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 5 + [5] * 5
    return 1e-4 * 0.5 ** halvings[epoch - 1]


def paper_stage2(epoch):
    """Adam 5e-4, 10 epochs, x0.1 after 5."""
    return 5e-4 if epoch <= 5 else 5e-5


def paper_finetune(epoch):
    """Adam 1e-3, 50 epochs, x0.2 every 20 epochs."""
    return 1e-3 * 0.2 ** ((epoch - 1) // 20)


def rates_by_group(brain, epoch):
    brain.on_stage_start(sb.Stage.TRAIN, epoch)
    return {
        group["name"]: group["lr"] for group in brain.optimizer.param_groups
    }


STAGE1 = ["hparams/wavlm.yaml", "hparams/hubert.yaml"]
STAGE1_DATA = {"data_folder_iemocap": "unused", "data_folder_casia": "unused"}


@pytest.mark.parametrize("yaml_path", STAGE1)
def test_stage1_rates_follow_paper_with_transformer_at_04(yaml_path, tmp_path):
    brain, hparams = load_brain(
        yaml_path, ContrastiveBrain, tmp_path, STAGE1_DATA
    )
    assert hparams["number_of_epochs"] == 50
    for epoch in range(1, 51):
        rates = rates_by_group(brain, epoch)
        assert set(rates) == {"ssl", "pooling"}
        assert rates["pooling"] == pytest.approx(paper_stage1(epoch))
        assert rates["ssl"] == pytest.approx(0.4 * paper_stage1(epoch))


DOWNSTREAM_DATA = {"corpus": "iemocap", "data_folder": "unused"}


@pytest.mark.parametrize("corpus", ["iemocap", "casia"])
@pytest.mark.parametrize("stage", ["classifier", "finetune"])
def test_downstream_rates_follow_paper(stage, corpus, tmp_path):
    brain_class = ClassifierBrain if stage == "classifier" else FineTuneBrain
    brain, hparams = load_brain(
        f"hparams/{stage}.yaml",
        brain_class,
        tmp_path,
        {**DOWNSTREAM_DATA, "corpus": corpus},
    )
    assert hparams["n_classes"] == (4 if corpus == "iemocap" else 6)
    assert hparams["batch_size"] == 32
    if stage == "classifier":
        assert hparams["number_of_epochs"] == 10
        for epoch in range(1, 11):
            rates = rates_by_group(brain, epoch)
            # The speech model is frozen: it has no group at all.
            assert set(rates) == {"pooling", "classifier"}
            assert rates["pooling"] == pytest.approx(paper_stage2(epoch))
            assert rates["classifier"] == pytest.approx(paper_stage2(epoch))
    else:
        assert hparams["number_of_epochs"] == 50
        for epoch in range(1, 51):
            rates = rates_by_group(brain, epoch)
            assert set(rates) == {"ssl", "pooling", "classifier"}
            assert rates["classifier"] == pytest.approx(paper_finetune(epoch))
            assert rates["ssl"] == pytest.approx(0.4 * paper_finetune(epoch))


def test_brain_enforces_its_freeze_policy(tmp_path):
    """A stage-2 YAML that forgot to freeze still gets a frozen model."""
    brain, _ = load_brain(
        "hparams/finetune.yaml",
        ClassifierBrain,
        tmp_path,
        DOWNSTREAM_DATA,
    )
    assert brain.modules.ssl.stage == "classifier"
    assert not any(p.requires_grad for p in brain.modules.ssl.parameters())


def test_scheduler_rejects_bad_milestones():
    with pytest.raises(ValueError, match="milestones"):
        MultiStepScheduler(1e-3, milestones=[5, 3], factor=0.5)
    with pytest.raises(ValueError, match="factor"):
        MultiStepScheduler(1e-3, milestones=[5], factor=0)
