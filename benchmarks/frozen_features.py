#!/usr/bin/env python3
"""How much a frozen speech model passes on, side by side with the floor.

For every corpus of a ``prepared`` folder (``<experiment>/prepared``, one
subfolder per corpus with ``manifest.json`` and its folds files) and every
protocol, it trains the classical floor's classifier (standardised
logistic regression, :mod:`speechbrain_sercl.protocol.classical`) on each fold's
training part twice, on MFCC statistics and on the mean of the frozen
speech model's last-layer valid frames (``SSLBackbone`` in eval mode,
``speechbrain_sercl.reporting.analysis.layer_features``), and
prints the UA of each on the fold's test part, the mean over the folds
(each fold once) and the difference last. Stage 2 and FT follow the
second number closely in the demo (docs/demo.md): a speech model that
passes on less than MFCC statistics cannot give rows above the floor.

    python benchmarks/frozen_features.py results/demo/prepared
    python benchmarks/frozen_features.py results/demo/prepared \\
        --source tiny-wavlm --protocols speaker

``--source`` is what ``ssl_source`` takes: a tiny model name (the
pretrained ones come from the cache folder), a model folder or a hub id.
"""

import argparse
import glob
import os
import tempfile

import numpy as np
import torch

from speechbrain_sercl.data.audio import load_audio
from speechbrain_sercl.data.folds import read_folds, run_split
from speechbrain_sercl.data.manifest import load_manifest
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.metrics import unweighted_accuracy
from speechbrain_sercl.protocol.classical import fit_floor, mfcc_statistics
from speechbrain_sercl.reporting.analysis import layer_features


def fold_ua(features, manifest, train, test):
    """UA (%) of the floor's classifier trained on ``train``."""
    model, classes = fit_floor(features, manifest, train)
    predicted = model.predict(np.stack([features[utt] for utt in test]))
    targets = [classes.index(manifest[utt]["emotion"]) for utt in test]
    accuracy = unweighted_accuracy(
        torch.tensor(targets), torch.tensor(predicted)
    )
    return 100 * float(accuracy)


def compare_corpus(manifest_path, ssl, protocols):
    """Prints the per-fold and mean UAs of one corpus."""
    manifest = load_manifest(manifest_path)
    ids = sorted(manifest)
    waveforms = [load_audio(manifest[utt]["wav"]) for utt in ids]
    last_layer = layer_features(ssl, waveforms)[-1].numpy()
    features = {
        "MFCC statistics": {
            utt: mfcc_statistics(wav).numpy()
            for utt, wav in zip(ids, waveforms, strict=True)
        },
        "frozen model": dict(zip(ids, last_layer, strict=True)),
    }
    corpus = os.path.basename(os.path.dirname(manifest_path))
    for protocol in protocols:
        folds = read_folds(manifest_path, protocol)
        splits = [run_split(folds, i) for i in sorted(set(folds.values()))]
        means = {}
        for name, values in features.items():
            scores = [fold_ua(values, manifest, *split) for split in splits]
            means[name] = np.mean(scores)
            per_fold = " ".join(f"{score:6.2f}" for score in scores)
            print(
                f"{corpus} {protocol:7s} {name:15s} folds {per_fold} "
                f"mean {means[name]:6.2f}"
            )
        difference = means["frozen model"] - means["MFCC statistics"]
        print(f"{corpus} {protocol:7s} frozen - floor: {difference:+.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prepared", help="an experiment's prepared folder")
    parser.add_argument("--source", default="tiny-wavlm-pretrained")
    parser.add_argument("--protocols", nargs="+", default=["paper", "speaker"])
    args = parser.parse_args()
    manifests = sorted(
        glob.glob(os.path.join(args.prepared, "*", "manifest.json"))
    )
    if not manifests:
        parser.error(f"no */manifest.json in {args.prepared}")
    with tempfile.TemporaryDirectory() as save_path:
        ssl = SSLBackbone(
            args.source, save_path, "classifier", output_all_hiddens=True
        )
        print(f"speech model: {args.source}")
        for manifest_path in manifests:
            compare_corpus(manifest_path, ssl, args.protocols)


if __name__ == "__main__":
    main()
