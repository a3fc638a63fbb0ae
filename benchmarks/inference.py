#!/usr/bin/env python3
"""Real-time factor of ``sercl predict``: sorted batches vs one at a time.

Builds an ``EncoderClassifier`` as an exported model holds it (the
speech model in the classifier stage, attention pooling, emotion
classifier; random weights: the time does not depend on them), writes
``--files`` wav files with IEMOCAP-like lengths (``_lengths.py``) and runs
:func:`speechbrain_sercl.inference.predict.predict_files`, the code behind
``sercl predict``, on them: with ``--batch-size`` (length-sorted batches)
and one file at a time. The real-time factor is processing time over
audio time (lower is faster); the batched / one-at-a-time ratio is last,
after the largest difference batching makes to a probability.

    python benchmarks/inference.py                         # base WavLM, CPU
    python benchmarks/inference.py --device cuda:0 --files 256 --batch-size 32
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from _lengths import EMOTIONS, corpus_lengths
from _models import SIZES, speech_model_source
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.inference.classifiers import EncoderClassifier

from speechbrain_sercl.inference.predict import predict_files
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.embedding import EmotionEmbedding, KeepFeatures
from speechbrain_sercl.method.head import EmotionClassifier
from speechbrain_sercl.method.pooling import AttentionPooling

RATE = 16000


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_classifier(size, device, folder):
    """An EncoderClassifier with the modules of an exported model."""
    torch.manual_seed(0)
    ssl = SSLBackbone(speech_model_source(size), folder, stage="classifier")
    labels = EMOTIONS["iemocap"]
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(labels)
    encoder.expect_len(len(labels))
    modules = {
        "compute_features": torch.nn.Identity(),
        "mean_var_norm": KeepFeatures(),
        "embedding_model": EmotionEmbedding(
            ssl, AttentionPooling(ssl.hidden_size)
        ),
        "classifier": EmotionClassifier(ssl.hidden_size, len(labels)),
    }
    return EncoderClassifier(
        modules=modules,
        hparams={"label_encoder": encoder},
        run_opts={"device": device},
    )


def write_files(folder, count, seed):
    """Wav files of IEMOCAP-like lengths; their paths and total seconds."""
    generator = np.random.default_rng(seed)
    lengths = corpus_lengths("iemocap", seed, count)
    paths = []
    for index, seconds in enumerate(lengths):
        path = Path(folder) / f"utt{index:04d}.wav"
        samples = 0.1 * generator.standard_normal(int(seconds * RATE))
        soundfile.write(path, samples.astype(np.float32), RATE)
        paths.append(str(path))
    return paths, float(lengths.sum())


def real_time_factor(classifier, files, audio_seconds, batch_size, cuda):
    """Processing seconds per second of audio of one predict_files run,
    and the probabilities ``[files, classes]``."""
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    predictions = predict_files(classifier, files, batch_size=batch_size)
    if cuda:
        torch.cuda.synchronize()
    failed = [p.error for p in predictions if p.error]
    if failed:
        raise RuntimeError(f"predict_files failed: {failed[:3]}")
    seconds = time.perf_counter() - start
    return seconds / audio_seconds, np.array(
        [p.probabilities for p in predictions]
    )


def main():
    arguments = parse_arguments()
    cuda = arguments.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as folder:
        classifier = build_classifier(arguments.size, arguments.device, folder)
        files, seconds = write_files(folder, arguments.files, arguments.seed)
        print(
            f"sercl predict (predict_files), {arguments.size} WavLM, "
            f"{arguments.device}, {torch.get_num_threads()} threads: "
            f"{len(files)} files, {seconds:.1f} s of audio (IEMOCAP-like "
            "lengths)"
        )
        real_time_factor(classifier, files[:2], 1.0, 1, cuda)  # warm-up
        one, alone = real_time_factor(classifier, files, seconds, 1, cuda)
        batched, together = real_time_factor(
            classifier, files, seconds, arguments.batch_size, cuda
        )
    gap = np.abs(together - alone).max()
    print(f"max |batched - one at a time| over the probabilities: {gap:.3g}")
    batched_label = f"RTF, batch {arguments.batch_size}"
    print(f"{'RTF, batch 1':>13s} {batched_label:>13s} {'ratio':>6s}")
    print(f"{one:13.4f} {batched:13.4f} {batched / one:6.3f}")


if __name__ == "__main__":
    main()
