"""Cross-corpus testing: which utterances, and what the model says.

A finished stage-2 step of run 4 on a source corpus (four classes:
angry, happy, neutral, sad) is laid out as the fold runner leaves it: a
tiny WavLM, attention pooling and classifier with random weights, in a
checkpoint. :func:`evaluate_run` then exports it, loads it with
SpeechBrain's ``EncoderClassifier`` and classifies a target corpus (angry,
fear, happy, sad; three folds) as ``sercl folds`` does.

The expectations are written out here, not read from the code:

- the rows are the target utterances of fold 4 mod 3 = 1 whose emotion
  the source knows (the ``fear`` ones have no right answer and are left
  out), listed by hand from the fixture's own rule;
- each row's probabilities are the source model's on that utterance
  alone (no batch, no padding), those of the shared classes divided by
  their sum in float64, and the prediction is their arg-max; the loader
  batches utterances of different lengths (where relative waveform
  lengths would pool one frame too few), so the export's
  embedding path must pool each utterance's own frames;
- the collected UA is scikit-learn's balanced accuracy of those
  predictions.

Tolerance 1e-5 on probabilities, as in ``test_batch_independence.py``.
"""

import json
import os

import numpy as np
import pytest
import soundfile
import torch
from sklearn.metrics import balanced_accuracy_score

from speechbrain_sercl import layout
from speechbrain_sercl.checkpoints import AtomicCheckpointer
from speechbrain_sercl.data.pipeline import make_label_encoder
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling
from speechbrain_sercl.predictions import read_predictions
from speechbrain_sercl.protocol.cross_corpus import (
    collect_cross_corpus,
    evaluate_run,
)

RATE = 16000
PROTOCOL, RUN = "paper", 4
SOURCE_CLASSES = ["angry", "happy", "neutral", "sad"]
TARGET_EMOTIONS = ("angry", "fear", "happy", "sad")
SHARED = ["angry", "happy", "sad"]
# Fold i % 3 of each target utterance; run 4 tests fold 1: indices 1, 4,
# ..., 22, of emotions fear, angry, sad, happy, fear, angry, sad, happy.
# The six of shared emotions, with their samples: classified in one batch
# padded to 12000, where relative waveform lengths would count one frame
# fewer than the CNN makes from 3400, 4330, 5300 and 6000 samples.
TEST_SAMPLES = {
    "tgt04": 12000,
    "tgt07": 3400,
    "tgt10": 4330,
    "tgt16": 7000,
    "tgt19": 5300,
    "tgt22": 6000,
}
TEST_IDS = sorted(TEST_SAMPLES)
TARGET_SAMPLES = [TEST_SAMPLES.get(f"tgt{i:02d}", 6400) for i in range(24)]


def write_corpus(folder, name, emotions, samples):
    """Wav files, a manifest and a fold assignment (index mod 3)."""
    rng = np.random.default_rng(len(name))
    manifest, folds = {}, {}
    for index, count in enumerate(samples):
        utt = f"{name}{index:02d}"
        wav = folder / f"{utt}.wav"
        soundfile.write(
            wav, 0.2 * rng.standard_normal(count), RATE, subtype="FLOAT"
        )
        manifest[utt] = {
            "wav": str(wav),
            "duration": count / RATE,
            "emotion": emotions[index % len(emotions)],
            "corpus": name,
            "speaker": f"{name}_s{index % 2}",
        }
        folds[utt] = index % 3
    path = folder / f"{name}_manifest.json"
    path.write_text(json.dumps(manifest))
    return str(path), manifest, folds


def source_modules(pretrained_folder):
    """The source step's speech model, pooling and classifier (random)."""
    torch.manual_seed(0)
    ssl = SSLBackbone("tiny-wavlm", pretrained_folder, stage="classifier")
    pooling = AttentionPooling(ssl.hidden_size)
    classifier = EmotionClassifier(ssl.hidden_size, len(SOURCE_CLASSES), 16)
    with torch.no_grad():
        # Unlike the model the export would build from its config alone,
        # and sharp enough that padding would show in the probabilities.
        for parameter in ssl.hf_model.encoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        pooling.score.weight.mul_(5)
        classifier.layers[2].weight.mul_(30)
    return ssl, pooling.eval(), classifier.eval()


def write_finished_step(experiment, pretrained_folder, modules):
    """A finished stage-2 step of run ``RUN`` on corpus ``src``."""
    ssl, pooling, classifier = modules
    step = layout.step_folder(experiment, PROTOCOL, RUN, "classifier", "src")
    save = layout.save_folder(step)
    stage1 = layout.stage1_copy_folder(save)
    os.makedirs(stage1)
    torch.save(ssl.state_dict(), os.path.join(stage1, layout.ENCODER_FILE))
    AtomicCheckpointer(
        save, {"pooling": pooling, "classifier": classifier}
    ).save_checkpoint()
    make_label_encoder(
        SOURCE_CLASSES, os.path.join(save, layout.LABEL_ENCODER_FILE)
    )
    settings = {
        "corpus": "src",
        "protocol": PROTOCOL,
        "run": RUN,
        "seed": 1986,
        "ssl_source": "tiny-wavlm",
        "pretrained_folder": str(pretrained_folder),
    }
    with open(os.path.join(step, layout.HPARAMS_FILE), "w") as out:
        out.writelines(f"{key}: {value}\n" for key, value in settings.items())
    # The step's own test report, as far as the export's model card reads
    # it (the values play no part here).
    report = {"UA": 0.5, "WA": 0.5, "confusion": [[1, 1], [1, 1]]}
    with open(layout.finished_file(step, RUN), "w") as out:
        json.dump(report, out)


def alone(modules, wav):
    """The source model's class probabilities on one file, unbatched."""
    ssl, pooling, classifier = modules
    samples, rate = soundfile.read(wav, dtype="float32")
    assert rate == RATE
    with torch.no_grad():
        hidden = ssl(torch.from_numpy(samples)[None])
        log_probabilities = classifier(pooling(hidden))
    return log_probabilities[0].double().exp().numpy()


def restricted(probabilities):
    """The shared classes' probabilities over their sum, and the arg-max."""
    kept = np.array(
        [probabilities[SOURCE_CLASSES.index(name)] for name in SHARED]
    )
    kept = kept / kept.sum()
    return SHARED[int(np.argmax(kept))], kept


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross_corpus")
    experiment = root / "experiment"
    pretrained = root / "pretrained"
    target_path, target, target_folds = write_corpus(
        root, "tgt", TARGET_EMOTIONS, TARGET_SAMPLES
    )
    source_path, _, source_folds = write_corpus(
        root, "src", SOURCE_CLASSES, [4000] * 6
    )
    modules = source_modules(pretrained)
    write_finished_step(experiment, pretrained, modules)
    prepared = {
        "src": (source_path, source_folds),
        "tgt": (target_path, target_folds),
    }
    written = evaluate_run(
        str(experiment), PROTOCOL, RUN, prepared, ["classifier"]
    )
    expected = {
        utt: restricted(alone(modules, target[utt]["wav"])) for utt in TEST_IDS
    }
    return experiment, target, written, expected


def test_the_rows_are_the_runs_test_utterances_of_shared_emotions(evaluated):
    experiment, target, written, _ = evaluated
    folder = layout.cross_corpus_folder(
        str(experiment), PROTOCOL, RUN, "classifier", "src", "tgt"
    )
    predictions = layout.step_file(folder, layout.PREDICTIONS_FILE)
    # Only src -> tgt: the target corpus has no finished step to test.
    assert written == [predictions]
    classes, rows = read_predictions(predictions)
    assert classes == SHARED
    assert sorted(row["id"] for row in rows) == TEST_IDS
    for row in rows:
        entry = target[row["id"]]
        assert (row["emotion"], row["corpus"], row["speaker"]) == (
            entry["emotion"],
            "tgt",
            entry["speaker"],
        )


def test_probabilities_are_the_models_alone_over_the_shared_classes(
    evaluated,
):
    _, _, written, expected = evaluated
    _, rows = read_predictions(written[0])
    for row in rows:
        predicted, probabilities = expected[row["id"]]
        np.testing.assert_allclose(
            row["probabilities"], probabilities, rtol=0, atol=1e-5
        )
        assert row["predicted"] == predicted
    # The random model does not predict one class for everything.
    assert len({row["predicted"] for row in rows}) > 1


def test_the_collected_ua_is_the_balanced_accuracy(evaluated):
    experiment, target, _, expected = evaluated
    truth = [target[utt]["emotion"] for utt in TEST_IDS]
    guess = [expected[utt][0] for utt in TEST_IDS]
    results = collect_cross_corpus(str(experiment / PROTOCOL))
    pair = results["classifier"]["src"]["tgt"]
    assert pair["classes"] == SHARED
    assert pair["folds"][RUN]["n"] == len(TEST_IDS)
    assert pair["folds"][RUN]["UA"] == pytest.approx(
        balanced_accuracy_score(truth, guess)
    )
