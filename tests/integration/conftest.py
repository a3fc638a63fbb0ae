"""A finished tiny experiment, trained once per test session.

Fold 0 of the demo protocol with one epoch per step (stage 1, stage 2 and
FT on both synthetic corpora): the export and analysis tests read it.
"""

import pytest

from speechbrain_sercl.cli import main as sercl


@pytest.fixture(scope="session")
def experiment(tmp_path_factory):
    """Fold 0 of the demo protocol, trained tiny and fast."""
    output = tmp_path_factory.mktemp("demo")
    status = sercl(
        [
            "demo",
            "--output",
            str(output),
            "--runs",
            "0",
            "--methods",
            "classifier",
            "finetune",
            "--data_utterances_per_emotion=2",
            "--number_of_epochs=1",
            "--contrastive.batches_per_epoch=2",
            "--classifier.number_of_epochs=1",
            "--finetune.number_of_epochs=1",
            "--batch_size=8",
            "--crop_seconds=1.0",
            "--noprogressbar",
        ]
    )
    assert status == 0
    return output
