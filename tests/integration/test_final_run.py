"""The final run trains on all the data and exports a model to publish.

``sercl demo --final`` (tiny sizes) trains stage 1 on every utterance of
both synthetic corpora and stage 2 on every utterance of each; the
utterances each step used (its ``fold_split.json``) are compared with the
ids of the prepared manifests, read here on their own. Its stage-2 model is
exported and loaded with ``EncoderClassifier.from_hparams``. Its model card
says what it was trained on, then, once the protocol's run 0 has written
``results.json`` next to it, quotes those cross-validated results.
"""

import json
import shutil

import pytest
import torch

from speechbrain_sercl.cli import main as sercl

pytestmark = pytest.mark.slow

CORPORA = ("iemocap", "casia")
TINY = [
    "--methods",
    "classifier",
    "--data_utterances_per_emotion=2",
    "--number_of_epochs=1",
    "--contrastive.batches_per_epoch=2",
    "--classifier.number_of_epochs=1",
    "--batch_size=8",
    "--crop_seconds=1.0",
    "--noprogressbar",
]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """The demo's final run, trained tiny and fast."""
    output = tmp_path_factory.mktemp("demo")
    assert sercl(["demo", "--output", str(output), "--final", *TINY]) == 0
    return output


def manifest_ids(experiment, corpus):
    """The ids of a prepared manifest, as the reader wrote them."""
    (path,) = experiment.glob(f"prepared/{corpus}-*/manifest.json")
    return sorted(json.loads(path.read_text()))


def read_card(folder):
    """The model card with its line breaks made spaces."""
    return " ".join((folder / "README.md").read_text().split())


def used_split(step):
    return json.loads((step / "fold_split.json").read_text())


def test_every_step_trained_on_every_utterance(experiment):
    final = experiment / "paper" / "final"
    everything = {
        corpus: manifest_ids(experiment, corpus) for corpus in CORPORA
    }
    assert all(len(ids) > 40 for ids in everything.values())
    stage1 = used_split(final / "contrastive")
    assert stage1 == {c: {"train": everything[c], "test": []} for c in CORPORA}
    for corpus in CORPORA:
        step = final / corpus / "classifier"
        assert used_split(step) == {
            corpus: {"train": everything[corpus], "test": []}
        }
        trained = json.loads((step / "trained.json").read_text())
        assert trained["train_utterances"] == len(everything[corpus])
        assert trained["test_utterances"] == 0 and trained["epochs"] == 1
        # Nothing was tested, so nothing claims to be a test result.
        assert not (step / "test_metrics.json").exists()
        assert not (step / "predictions.csv").exists()
        # Stage 2 started from the final run's stage 1.
        copied = torch.load(step / "save/stage1/ssl.ckpt", weights_only=True)
        stage1_ssl = torch.load(
            final / "contrastive/encoder/ssl.ckpt", weights_only=True
        )
        assert all(torch.equal(copied[k], stage1_ssl[k]) for k in stage1_ssl)
    assert not list((experiment / "paper").glob("fold_*"))
    assert not (experiment / "paper" / "results.json").exists()


def test_the_exported_final_model_classifies_and_says_what_it_is(
    experiment, tmp_path
):
    from speechbrain.inference.classifiers import EncoderClassifier

    step = experiment / "paper" / "final" / "iemocap" / "classifier"
    folder = tmp_path / "model"
    assert sercl(["export", str(step), str(folder)]) == 0
    classifier = EncoderClassifier.from_hparams(source=str(folder))
    (manifest,) = experiment.glob("prepared/iemocap-*/manifest.json")
    wav = next(iter(json.loads(manifest.read_text()).values()))["wav"]
    log_probabilities, _, _, labels = classifier.classify_file(wav)
    assert labels[0] in ("neutral", "happy", "sad", "angry")
    assert log_probabilities.exp().sum().item() == pytest.approx(1, abs=1e-5)
    exported = torch.load(folder / "ssl.ckpt", weights_only=True)
    stage1 = torch.load(
        experiment / "paper/final/contrastive/encoder/ssl.ckpt",
        weights_only=True,
    )
    assert all(torch.equal(exported[k], stage1[k]) for k in stage1)

    card = read_card(folder)
    count = len(manifest_ids(experiment, "iemocap"))
    assert "final run of protocol `paper`" in card
    assert f"stage 2 on all {count} utterances of iemocap" in card
    assert "no test result of its own" in card
    assert "No cross-validated results of protocol `paper`" in card
    assert "| iemocap | paper |" not in card  # no test table
    assert "--run=final" in card  # the step's own command

    # The protocol's run 0, in the same experiment folder: results.json
    # (the final run is no fold of it), then quoted by the final model.
    protocol = ["demo", "--output", str(experiment), "--runs", "0", *TINY]
    assert sercl(protocol) == 0
    results = json.loads((experiment / "paper" / "results.json").read_text())
    summary = results["iemocap"]["classifier"]
    assert list(summary["folds"]) == ["0"]
    assert sercl(["export", str(step), str(folder), "--overwrite"]) == 0
    card = read_card(folder)
    ua = 100 * summary["mean"]["UA"]
    assert "No cross-validated results" not in card
    assert "Cross-validated, protocol `paper`" in card
    assert f"over 1 fold(s): UA {ua:.2f} ± 0.00" in card


def test_an_unfinished_final_step_is_not_exported(experiment, tmp_path, capsys):
    step = experiment / "paper" / "final" / "casia" / "classifier"
    unfinished = tmp_path / "paper" / "final" / "casia" / "classifier"
    shutil.copytree(step, unfinished)
    (unfinished / "trained.json").unlink()
    assert sercl(["export", str(unfinished), str(tmp_path / "model")]) == 1
    error = capsys.readouterr().err
    assert "has not finished (no trained.json): train it first" in error
    assert not (tmp_path / "model").exists()
