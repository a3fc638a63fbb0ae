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
        --source tiny-wavlm-pretrained --protocols speaker
    python benchmarks/frozen_features.py --speech espeak \\
        --source tiny-wavlm-pretrained tiny-wavlm-pretrained-mixture

``--source`` is what ``ssl_source`` takes: tiny model names (the
pretrained ones come from the cache folder), model folders or hub ids;
several are compared on the same folds. ``--speech synthetic`` or
``--speech espeak`` generates the demo's corpora of that speech source
(``hparams/demo.yaml``, ``demo_speech``) into ``--data`` and prepares
both protocols' folds there, instead of reading a prepared folder.
"""

import argparse
import glob
import os
import tempfile

import numpy as np
import torch

from speechbrain_sercl.config import read_config, shipped_hparams
from speechbrain_sercl.data.audio import load_audio
from speechbrain_sercl.data.corpora import prepare_corpora
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


def frozen_features(ids, waveforms, sources, save_path, every_layer):
    """Each source's mean of its last layer's valid frames, per utterance;
    of each of its layers (the CNN's projected output first) with
    ``every_layer``."""
    features = {
        "MFCC statistics": {
            utt: mfcc_statistics(wav).numpy()
            for utt, wav in zip(ids, waveforms, strict=True)
        }
    }
    for source in sources:
        ssl = SSLBackbone(
            source, save_path, "classifier", output_all_hiddens=True
        )
        layers = layer_features(ssl, waveforms).numpy()
        if not every_layer:
            features[source] = dict(zip(ids, layers[-1], strict=True))
            continue
        for index, layer in enumerate(layers):
            features[f"{source} layer {index}"] = dict(
                zip(ids, layer, strict=True)
            )
    return features


def compare_corpus(manifest_path, sources, protocols, save_path, every_layer):
    """Prints the per-fold and mean UAs of one corpus."""
    manifest = load_manifest(manifest_path)
    ids = sorted(manifest)
    waveforms = [load_audio(manifest[utt]["wav"]) for utt in ids]
    features = frozen_features(ids, waveforms, sources, save_path, every_layer)
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
                f"{corpus} {protocol:7s} {name:31s} folds {per_fold} "
                f"mean {means[name]:6.2f}"
            )
        floor = means.pop("MFCC statistics")
        for name, mean in means.items():
            print(f"{corpus} {protocol:7s} {name} - floor: {mean - floor:+.2f}")


def prepare_demo_corpora(speech, data_folder, protocols):
    """Generate and prepare the demo's corpora of ``speech``; returns the
    prepared folder."""
    config = read_config(
        shipped_hparams("demo"),
        {"demo_speech": speech, "demo_data_folder": data_folder},
    )
    prepared = os.path.join(data_folder, "prepared")
    for protocol in protocols:
        prepare_corpora(
            config["corpora"],
            prepared,
            protocol,
            config["n_folds"],
            config["fold_seed"],
        )
    return prepared


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "prepared", nargs="?", help="an experiment's prepared folder"
    )
    parser.add_argument(
        "--source", nargs="+", default=["tiny-wavlm-pretrained"]
    )
    parser.add_argument("--protocols", nargs="+", default=["paper", "speaker"])
    parser.add_argument(
        "--speech",
        choices=["synthetic", "espeak"],
        help="generate and prepare the demo corpora of this speech source",
    )
    parser.add_argument(
        "--data",
        default="results/frozen_features",
        help="where --speech generates (a folder per source)",
    )
    parser.add_argument(
        "--every-layer",
        action="store_true",
        help="one row per layer of each speech model, not the last only",
    )
    args = parser.parse_args()
    if (args.prepared is None) == (args.speech is None):
        parser.error("give a prepared folder or --speech, not both")
    prepared = args.prepared
    if args.speech:
        prepared = prepare_demo_corpora(
            args.speech, os.path.join(args.data, args.speech), args.protocols
        )
    manifests = sorted(glob.glob(os.path.join(prepared, "*", "manifest.json")))
    if not manifests:
        parser.error(f"no */manifest.json in {prepared}")
    print(f"speech models: {', '.join(args.source)}")
    with tempfile.TemporaryDirectory() as save_path:
        for manifest_path in manifests:
            compare_corpus(
                manifest_path,
                args.source,
                args.protocols,
                save_path,
                args.every_layer,
            )


if __name__ == "__main__":
    main()
