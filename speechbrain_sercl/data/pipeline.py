"""Datasets and data-io pipelines shared by every recipe.

A run trains on the utterances of one or more corpus manifests that a fold
split selects, reads audio through the one robust reader
(:func:`speechbrain_sercl.data.audio.load_audio`) and, for training, crops
long utterances. Crops are a pure function of ``(seed, epoch, utterance
id)`` rather than of a global random state, so a run resumed mid-epoch
reads exactly the batches the uninterrupted run would have read, whatever
the number of data-loader workers. With a feature cache
(:mod:`speechbrain_sercl.method.feature_cache`) a dataset gives the frozen
speech model's cached hidden states instead of the audio, cropped by the same
generators in frames.

Authors
 * speechbrain-sercl developers
"""

import json
import os
import zlib

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.utils.distributed import run_on_main

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.data.audio import load_audio, random_crop

__all__ = [
    "EpochCrop",
    "load_manifests",
    "make_dataset",
    "make_label_encoder",
]


class EpochCrop:
    """Deterministic random crops that change every epoch.

    Arguments
    ---------
    seconds : float
        The crop length; shorter utterances are kept whole.
    seed : int
        The base seed.

    Example
    -------
    >>> crop = EpochCrop(seconds=2.0, seed=3)
    >>> first = crop.generator("utt1").initial_seed()
    >>> crop.generator("utt1").initial_seed() == first
    True
    >>> crop.set_epoch(2)
    >>> crop.generator("utt1").initial_seed() == first
    False
    """

    def __init__(self, seconds, seed=1234):
        if seconds <= 0:
            raise ValueError(f"crop seconds must be > 0, got {seconds}")
        self.seconds = seconds
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        """Draw other crops from now on (called by the Brain each epoch).

        Arguments
        ---------
        epoch : int
            The epoch about to run.
        """
        self.epoch = epoch

    def generator(self, utterance_id):
        """Return the generator that places the crop of one utterance.

        Arguments
        ---------
        utterance_id : str
            The manifest id of the utterance.

        Returns
        -------
        torch.Generator
            Seeded from the seed, the epoch and the id alone.
        """
        key = f"{self.seed}:{self.epoch}:{utterance_id}".encode()
        return torch.Generator().manual_seed(zlib.crc32(key))


def load_manifests(paths):
    """Read and merge SpeechBrain JSON manifests, refusing duplicate ids.

    Arguments
    ---------
    paths : list of str
        Manifest files (one per corpus).

    Returns
    -------
    dict
        utterance id -> entry, in the order of ``paths``.

    Example
    -------
    >>> import json, pathlib
    >>> tmp = pathlib.Path(getfixture("tmp_path"))
    >>> for name in ("a", "b"):
    ...     _ = (tmp / f"{name}.json").write_text(
    ...         json.dumps({f"{name}1": {"emotion": "sad", "corpus": name}})
    ...     )
    >>> sorted(load_manifests([tmp / "a.json", tmp / "b.json"]))
    ['a1', 'b1']
    """
    merged = {}
    for path in paths:
        with open(path, encoding="utf-8") as manifest_file:
            entries = json.load(manifest_file)
        clashes = sorted(set(entries) & set(merged))
        if clashes:
            raise ValueError(
                f"{path}: utterance ids already used by another manifest: "
                f"{clashes[:5]}{' ...' if len(clashes) > 5 else ''}"
            )
        merged.update(entries)
    return merged


def make_label_encoder(emotions, path=None):
    """Build (or reload) the emotion encoder of a classifier.

    The classes are sorted by name so that the index of an emotion does not
    depend on the order of the data. When ``path`` exists it is loaded and
    must hold the same classes.

    Arguments
    ---------
    emotions : iterable of str
        Canonical emotion names (repeats are fine).
    path : str, optional
        Where the encoder is saved (``label_encoder.txt``).

    Returns
    -------
    speechbrain.dataio.encoder.CategoricalEncoder
        The encoder.

    Example
    -------
    >>> encoder = make_label_encoder(["sad", "angry", "sad", "happy"])
    >>> [encoder.encode_label(e) for e in ("angry", "happy", "sad")]
    [0, 1, 2]
    """
    classes = sorted(set(emotions))
    encoder = CategoricalEncoder()
    if path is None:
        encoder.update_from_iterable(classes)
        return encoder
    # Written once (main process, atomically); every process then reads it.
    run_on_main(_save_label_encoder, args=[classes, path])
    encoder.load(path)
    saved = [encoder.ind2lab[i] for i in range(len(encoder))]
    if saved != classes:
        raise ValueError(
            f"{path}: holds classes {saved} but the data has {classes}; "
            "remove the file or the output folder to start afresh"
        )
    return encoder


def _save_label_encoder(classes, path):
    """Write an encoder of ``classes`` to ``path`` unless it exists."""
    if os.path.exists(path):
        return
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(classes)
    with writing_atomically(path) as tmp_path:
        encoder.save(tmp_path)


def make_dataset(
    manifest,
    ids,
    crop=None,
    max_seconds=None,
    label_encoder=None,
    features=None,
):
    """Build a DynamicItemDataset over some utterances of a manifest.

    Output keys: ``id``, ``sig`` (16 kHz mono), ``emotion``, ``corpus``
    and ``speaker`` (strings), and ``emotion_encoded`` when a label encoder
    is given. With ``features``, ``hidden`` (the cached hidden states
    ``[T, D]``, float16) replaces ``sig``, and a crop keeps
    ``features.frames(crop.seconds)`` frames placed by the same generator.

    Arguments
    ---------
    manifest : dict
        utterance id -> entry (``wav``, ``emotion``, ``corpus``,
        ``speaker``, ...).
    ids : iterable of str
        The utterances to keep (a fold split); unknown ids are an error.
    crop : EpochCrop, optional
        Random training crop; None reads whole utterances.
    max_seconds : float, optional
        Truncate longer utterances (evaluation memory bound).
    label_encoder : CategoricalEncoder, optional
        Adds ``emotion_encoded``.
    features : speechbrain_sercl.method.feature_cache.CachedFeatures, optional
        Read the cached features of each utterance instead of its audio;
        built with the same ``max_seconds``.

    Returns
    -------
    DynamicItemDataset
        The dataset.

    Example
    -------
    >>> import numpy, soundfile, pathlib
    >>> wav = pathlib.Path(getfixture("tmp_path")) / "u1.wav"
    >>> soundfile.write(wav, numpy.zeros(16000) + 0.1, 16000)
    >>> entry = {"wav": str(wav), "emotion": "sad", "corpus": "c"}
    >>> manifest = {"u1": {**entry, "speaker": "s1"}}
    >>> dataset = make_dataset(manifest, ["u1"], crop=EpochCrop(0.5))
    >>> item = dataset[0]
    >>> item["id"], item["speaker"], item["emotion"], item["sig"].shape
    ('u1', 's1', 'sad', torch.Size([8000]))
    """
    ids = list(ids)
    missing = [utt for utt in ids if utt not in manifest]
    if missing:
        raise KeyError(f"utterances not in the manifest: {missing[:5]}")
    dataset = DynamicItemDataset({utt: manifest[utt] for utt in ids})
    if features is None:
        dataset.add_dynamic_item(_audio_pipeline(crop, max_seconds))
        keys = ["id", "sig", "emotion", "corpus", "speaker"]
    else:
        if features.max_seconds != max_seconds:
            raise ValueError(
                f"the features were cached with max_seconds="
                f"{features.max_seconds}, the dataset asks for {max_seconds}"
            )
        dataset.add_dynamic_item(_features_pipeline(features, crop))
        keys = ["id", "hidden", "emotion", "corpus", "speaker"]
    if label_encoder is not None:
        dataset.add_dynamic_item(_label_pipeline(label_encoder))
        keys.append("emotion_encoded")
    dataset.set_output_keys(keys)
    return dataset


def _audio_pipeline(crop, max_seconds):
    """Return the pipeline id, wav -> sig."""

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utterance_id, wav):
        if crop is None:
            return load_audio(wav, max_seconds=max_seconds)
        return load_audio(
            wav,
            max_seconds=max_seconds,
            crop_seconds=crop.seconds,
            generator=crop.generator(utterance_id),
        )

    return audio_pipeline


def _features_pipeline(features, crop):
    """Return the pipeline id, wav -> hidden (cached, cropped in frames)."""

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("hidden")
    def features_pipeline(utterance_id, wav):
        hidden = features.read(wav)
        if crop is None:
            return hidden
        length = features.frames(crop.seconds)
        return random_crop(hidden, length, crop.generator(utterance_id))

    return features_pipeline


def _label_pipeline(label_encoder):
    """Return the pipeline emotion -> emotion_encoded."""

    @sb.utils.data_pipeline.takes("emotion")
    @sb.utils.data_pipeline.provides("emotion_encoded")
    def label_pipeline(emotion):
        return torch.LongTensor([label_encoder.encode_label(emotion)])

    return label_pipeline
