"""A classical floor for every results table: MFCC statistics + logistic
regression, on the same folds as the neural methods.

A results table with no reference cannot show a broken pipeline: if the
two-stage method or the FT baseline scores below this row, something is
wrong (too few epochs, a bug, a mismatch between training and test). Each
utterance is described by the mean and standard deviation over frames of
its 40 MFCCs (``torchaudio.transforms.MFCC`` at 16 kHz, whole utterance);
a standardised multinomial logistic regression (scikit-learn) is trained
on the run's training part of one corpus and tested on its test part. It
takes seconds on a CPU. Its test step writes the same files as the neural
ones (``predictions.csv`` and ``test_metrics.json``), so the report treats
it as one more method (``classical``).

Example
-------
>>> import math
>>> waveform = torch.sin(torch.arange(16000) / 16000 * 2 * math.pi * 220)
>>> mfcc_statistics(waveform).shape
torch.Size([80])
"""

import json
import os

import numpy as np
import torch
import torchaudio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from speechbrain_sercl import layout
from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.data.audio import TARGET_SAMPLE_RATE, load_audio
from speechbrain_sercl.predictions import prediction_metrics, write_predictions

__all__ = [
    "fit_floor",
    "mfcc_statistics",
    "run_classical",
    "utterance_features",
]

N_MFCC = 40
_MFCC = torchaudio.transforms.MFCC(
    sample_rate=TARGET_SAMPLE_RATE,
    n_mfcc=N_MFCC,
    melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 64},
)


def mfcc_statistics(waveform):
    """Mean and standard deviation over frames of 40 MFCCs.

    Arguments
    ---------
    waveform : torch.Tensor
        A mono 16 kHz waveform, shape ``[samples]``.

    Returns
    -------
    torch.Tensor
        Shape ``[80]``: the 40 means, then the 40 standard deviations.
    """
    with torch.no_grad():
        coefficients = _MFCC(waveform.float())  # [n_mfcc, frames]
    return torch.cat(
        [coefficients.mean(dim=1), coefficients.std(dim=1, correction=0)]
    )


def utterance_features(manifest, ids, progress=True):
    """MFCC statistics of some utterances of a manifest (whole files).

    Arguments
    ---------
    manifest : dict
        utterance id -> entry with ``wav``.
    ids : iterable of str
        The utterances.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        utterance id -> numpy array of shape ``[80]``.
    """
    ids = list(ids)
    bar = tqdm(ids, desc="MFCC statistics", disable=not progress)
    return {
        utt: mfcc_statistics(load_audio(manifest[utt]["wav"])).numpy()
        for utt in bar
    }


def fit_floor(features, manifest, train, seed=0):
    """The floor's classifier trained on some utterances' features.

    Arguments
    ---------
    features : dict
        utterance id -> feature vector (MFCC statistics for the floor).
    manifest : dict
        utterance id -> entry with ``emotion``.
    train : list of str
        The training utterances.
    seed : int
        Seed of the solver.

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        A standardised multinomial logistic regression; its classes are
        indices into ``classes``.
    classes : list of str
        The training emotions, sorted.

    Example
    -------
    >>> manifest = {u: {"emotion": e} for u, e in zip("abcd", "xxyy")}
    >>> features = {u: np.array([i, 0.0]) for i, u in enumerate("abcd")}
    >>> model, classes = fit_floor(features, manifest, list("abcd"))
    >>> [classes[i] for i in model.predict(np.array([[0.0, 0], [3, 0]]))]
    ['x', 'y']
    """
    classes = sorted({manifest[utt]["emotion"] for utt in train})
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    model.fit(
        np.stack([features[utt] for utt in train]),
        [classes.index(manifest[utt]["emotion"]) for utt in train],
    )
    return model, classes


def run_classical(split, corpus, output_folder, features, seed=0):
    """Train and test the classical floor on one corpus of a run.

    Arguments
    ---------
    split : FoldSplit
        The run's utterances (:func:`speechbrain_sercl.data.folds.select_run`).
    corpus : str
        The corpus to train and test on.
    output_folder : str
        The step folder: ``predictions.csv`` and ``test_metrics.json`` go
        there (the latter last: a finished step).
    features : dict
        utterance id -> MFCC statistics (:func:`utterance_features`) of
        at least this corpus's utterances.
    seed : int
        Seed of the solver.

    Returns
    -------
    dict
        The test metrics (UA, WA, macro-F1, confusion, classes).
    """
    manifest = split.manifest
    train, test = split.train(corpus), split.test(corpus)
    model, classes = fit_floor(features, manifest, train, seed)
    probabilities = model.predict_proba(
        np.stack([features[utt] for utt in test])
    )
    rows = [
        {
            "id": utt,
            "corpus": manifest[utt]["corpus"],
            "speaker": manifest[utt]["speaker"],
            "emotion": manifest[utt]["emotion"],
            "predicted": classes[int(np.argmax(p))],
            "probabilities": [float(value) for value in p],
        }
        for utt, p in zip(test, probabilities, strict=True)
    ]
    os.makedirs(output_folder, exist_ok=True)
    predictions = layout.step_file(output_folder, layout.PREDICTIONS_FILE)
    write_predictions(predictions, classes, rows)
    metrics = prediction_metrics(predictions)
    report = layout.step_file(output_folder, layout.TEST_REPORT_FILE)
    with writing_atomically(report) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8") as out:
            json.dump(metrics, out, indent=2)
    return metrics
