"""The end of ``sercl demo``: export a trained model and use it as users do.

After the fold runner, the demo exports run 0's stage-2 model of one
corpus (:func:`speechbrain_sercl.inference.export.export_step`), loads it back
with SpeechBrain's ``EncoderClassifier.from_hparams`` and classifies one test
utterance of each emotion of that run, printing what it predicted next to
the truth. After the final run (``sercl demo --final``), which has no
test part, it exports the final model and classifies training utterances.

Example
-------
>>> rows = [
...     {"id": "a1", "emotion": "angry"},
...     {"id": "s1", "emotion": "sad"},
...     {"id": "a2", "emotion": "angry"},
... ]
>>> [row["id"] for row in one_per_emotion(rows)]
['a1', 's1']
"""

import json
import os

from speechbrain_sercl import layout
from speechbrain_sercl.data.manifest import load_manifest
from speechbrain_sercl.inference.export import export_step

__all__ = ["MODEL_FOLDER", "one_per_emotion", "try_exported_model"]

MODEL_FOLDER = "model"
DEMO_METHOD = "classifier"


def try_exported_model(runner, corpus, run=0):
    """Export a stage-2 model of the runner's experiment and try it.

    Arguments
    ---------
    runner : speechbrain_sercl.protocol.runner.FoldRunner
        A runner that has run (its corpora are prepared).
    corpus : str
        The corpus whose stage-2 model to export.
    run : int or str
        The run whose model to export, or ``"final"``.

    Returns
    -------
    str
        The exported folder (``<experiment>/model``).
    """
    from speechbrain.inference.classifiers import EncoderClassifier

    step = runner.step_folder(run, DEMO_METHOD, corpus)
    folder = export_step(
        step,
        os.path.join(runner.experiment_folder, MODEL_FOLDER),
        overwrite=True,
    )
    classifier = EncoderClassifier.from_hparams(source=folder)
    manifest_path, _ = runner.prepared[corpus]
    manifest = load_manifest(manifest_path)
    part = "train" if layout.is_final(run) else "test"
    with open(layout.step_file(step, layout.FOLD_SPLIT_FILE)) as split:
        ids = json.load(split)[corpus][part]
    rows = one_per_emotion(
        {"id": utt, "emotion": manifest[utt]["emotion"]} for utt in ids
    )
    print(f"\nThe exported model ({folder}), loaded with")
    print(f'EncoderClassifier.from_hparams(source="{folder}"), on')
    if layout.is_final(run):
        print("training utterances (the final run holds none out):\n")
    else:
        print(f"test utterances of run {run}:\n")
    print("| file | emotion | predicted | probability |")
    print("|---|---|---|---|")
    for row in rows:
        wav = manifest[row["id"]]["wav"]
        _, score, _, labels = classifier.classify_file(wav)
        print(
            f"| {os.path.relpath(wav)} | {row['emotion']} | {labels[0]} "
            f"| {score.exp().item():.2f} |"
        )
    return folder


def one_per_emotion(rows):
    """The first row of each emotion, in order of appearance.

    Arguments
    ---------
    rows : iterable of dict
        Rows with an ``emotion``.

    Returns
    -------
    list of dict
    """
    chosen = {}
    for row in rows:
        chosen.setdefault(row["emotion"], row)
    return list(chosen.values())
