"""The experiment layout names the final run's folders as a fold's."""

import pytest

from speechbrain_sercl import layout
from speechbrain_sercl.layout import FINAL_RUN


def test_the_final_run_has_a_fold_runs_sub_layout():
    for fold, name in ((3, "fold_3"), (FINAL_RUN, "final")):
        run = f"exp/paper/{name}"
        assert layout.run_folder("exp", "paper", fold) == run
        assert layout.step_folder("exp", "paper", fold, layout.STAGE1) == (
            f"{run}/contrastive"
        )
        assert layout.encoder_folder("exp", "paper", fold) == (
            f"{run}/contrastive/encoder"
        )
        step = layout.step_folder("exp", "paper", fold, "finetune", "casia")
        assert step == f"{run}/casia/finetune"


def test_a_final_step_ends_with_trained_json_a_fold_step_with_its_test():
    step = "exp/paper/fold_0/casia/classifier"
    assert layout.finished_file(step, 0).endswith("/test_metrics.json")
    final = "exp/paper/final/casia/classifier"
    assert layout.finished_file(final, FINAL_RUN).endswith("/trained.json")


@pytest.mark.parametrize("fold", [-1, "last", "0", "Final", None, True, 1.5])
def test_other_fold_values_are_refused(fold):
    with pytest.raises(ValueError, match="run index .* or 'final'"):
        layout.run_folder("exp", "paper", fold)


def test_only_fold_folders_are_folds():
    names = ["fold_0", "fold_12", "final", "fold_", "fold_1a", "fold_²"]
    assert [layout.run_of_folder(n) for n in names] == [
        0, 12, None, None, None, None,
    ]  # fmt: skip
