"""What stage 1 did to the representation: layer-wise pair similarity (the
paper's Fig. 4) and embedding maps, before and after stage 1.

For one run of an experiment, :func:`analyse_run` takes the run's held-out
utterances (the test part of the run's fold of every corpus, at most
``max_per_corpus`` per corpus), runs the speech model before stage 1 (the
stage-1 YAML's ``ssl_source``) and after it (the same model with the run's
stage-1 ``ssl.ckpt`` loaded strictly), and pools every layer's output by
its mean over each utterance's valid frames (the trained attention pooling
exists for the last layer only, and only after stage 1, so it would make
the two models incomparable). Layer 0 is the input of the first
transformer layer, layer ``L`` the last layer's output.

For each layer, :func:`pair_similarities` gives the mean cosine similarity
of the pooled features over positive pairs (two utterances with the same
emotion) and negative pairs (different emotions), each also split into
pairs within one corpus and across corpora. The embedding map is a t-SNE
of the last layer's mean-pooled features, fitted separately before and
after stage 1.

Example
-------
>>> import torch
>>> features = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
>>> emotions, corpora = ["sad", "sad", "angry"], ["a", "a", "b"]
>>> similarity = pair_similarities(features, emotions, corpora)
>>> round(similarity["positive"], 3), round(similarity["negative"], 3)
(0.995, 0.05)
"""

import dataclasses
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from speechbrain_sercl import layout
from speechbrain_sercl.config import read_config
from speechbrain_sercl.data.audio import load_audio
from speechbrain_sercl.data.corpora import prepare_corpora
from speechbrain_sercl.data.folds import run_split
from speechbrain_sercl.data.pipeline import load_manifests
from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.transfer import strict_parameter_transfer

__all__ = [
    "MODELS",
    "PAIR_KINDS",
    "RunAnalysis",
    "analyse_run",
    "embedding_map",
    "held_out_utterances",
    "layer_features",
    "layer_similarity",
    "mean_pool_layers",
    "pair_counts",
    "pair_similarities",
    "speech_models",
    "stage1_settings",
]

MODELS = ("before", "after")  # the speech model before / after stage 1
# Pair sets: overall, then split by whether the two utterances share a corpus.
PAIR_KINDS = (
    "positive",
    "negative",
    "positive_within",
    "positive_across",
    "negative_within",
    "negative_across",
)


@dataclasses.dataclass
class RunAnalysis:
    """The numbers behind the figures of one run.

    Arguments
    ---------
    utterances : list of dict
        The held-out utterances analysed: ``id``, ``corpus``, ``emotion``.
    similarity : dict
        ``before`` / ``after`` -> per layer (0 .. L) the
        :func:`pair_similarities` of that layer.
    maps : dict
        ``before`` / ``after`` -> ``[N, 2]`` t-SNE coordinates.
    pairs : dict
        Pair kind -> number of pairs.
    """

    utterances: list
    similarity: dict
    maps: dict
    pairs: dict


def mean_pool_layers(hidden_states, frame_lengths):
    """Mean of every layer's frames over each utterance's valid frames.

    Arguments
    ---------
    hidden_states : torch.Tensor
        ``[L + 1, B, T, D]``.
    frame_lengths : torch.Tensor
        ``[B]`` relative lengths in frames
        (:meth:`SSLBackbone.frame_lengths`).

    Returns
    -------
    torch.Tensor
        ``[L + 1, B, D]``.

    Example
    -------
    >>> hidden = torch.arange(8.0).reshape(1, 2, 4, 1)
    >>> mean_pool_layers(hidden, torch.tensor([1.0, 0.5])).flatten()
    tensor([1.5000, 4.5000])
    """
    frames = hidden_states.shape[2]
    valid = torch.round(frame_lengths * frames).clamp(min=1)
    mask = torch.arange(frames, device=valid.device) < valid[:, None]
    mask = mask.to(hidden_states.dtype)[None, :, :, None]
    return (hidden_states * mask).sum(dim=2) / valid[None, :, None]


def pair_similarities(features, emotions, corpora):
    """Mean cosine similarity over each kind of pair of utterances.

    Every unordered pair of distinct utterances counts once; it is positive
    when both have the same emotion, and within when both come from the
    same corpus. Computed in float64.

    Arguments
    ---------
    features : torch.Tensor
        ``[N, D]``, one pooled feature per utterance.
    emotions : sequence of str
        The emotion of each utterance.
    corpora : sequence of str
        The corpus of each utterance.

    Returns
    -------
    dict
        Each of :data:`PAIR_KINDS` -> mean similarity (NaN without pairs).
    """
    unit = F.normalize(features.double(), dim=1)
    similarity = unit @ unit.T
    same_emotion = _same(emotions)
    same_corpus = _same(corpora)
    pairs = torch.ones_like(same_emotion).triu(diagonal=1)
    masks = _pair_masks(pairs, same_emotion, same_corpus)
    return {
        kind: similarity[mask].mean().item() if mask.any() else math.nan
        for kind, mask in masks.items()
    }


def _same(labels):
    """Boolean ``[N, N]``: whether utterances i and j share a label."""
    _, codes = np.unique(np.asarray(list(labels)), return_inverse=True)
    codes = torch.as_tensor(codes)
    return codes[:, None] == codes[None, :]


def _pair_masks(pairs, same_emotion, same_corpus):
    """Each of :data:`PAIR_KINDS` -> boolean ``[N, N]`` mask of its pairs."""
    positive, negative = pairs & same_emotion, pairs & ~same_emotion
    return {
        "positive": positive,
        "negative": negative,
        "positive_within": positive & same_corpus,
        "positive_across": positive & ~same_corpus,
        "negative_within": negative & same_corpus,
        "negative_across": negative & ~same_corpus,
    }


def pair_counts(emotions, corpora):
    """The number of pairs of each kind.

    Arguments
    ---------
    emotions : sequence of str
        The emotion of each utterance.
    corpora : sequence of str
        The corpus of each utterance.

    Returns
    -------
    dict
        Each of :data:`PAIR_KINDS` -> count.

    Example
    -------
    >>> pair_counts(["sad", "sad", "angry"], ["a", "b", "b"])["negative"]
    2
    """
    same_emotion = _same(emotions)
    pairs = torch.ones_like(same_emotion).triu(diagonal=1)
    masks = _pair_masks(pairs, same_emotion, _same(corpora))
    return {kind: int(mask.sum()) for kind, mask in masks.items()}


def layer_similarity(layer_features_, emotions, corpora):
    """:func:`pair_similarities` of every layer.

    Arguments
    ---------
    layer_features_ : torch.Tensor
        ``[L + 1, N, D]`` pooled features of every layer.
    emotions : sequence of str
        The emotion of each utterance.
    corpora : sequence of str
        The corpus of each utterance.

    Returns
    -------
    list of dict
        One per layer, layer 0 first.

    Example
    -------
    >>> layers = torch.stack([torch.eye(3), torch.ones(3, 3)])
    >>> rows = layer_similarity(layers, ["a", "a", "b"], ["x", "y", "x"])
    >>> [round(row["positive"], 6) for row in rows]
    [0.0, 1.0]
    """
    return [
        pair_similarities(features, emotions, corpora)
        for features in layer_features_
    ]


def layer_features(ssl, waveforms, batch_size=8, device="cpu", desc=None):
    """Every layer's mean-pooled features of a list of waveforms.

    The waveforms are batched with zero padding and relative lengths; the
    speech model runs its CNN on each utterance's valid samples and masks
    the padding in the transformer, and the pooling counts valid frames
    only, so an utterance's features do not depend on its batch mates
    (up to float rounding).

    Arguments
    ---------
    ssl : SSLBackbone
        Built with ``output_all_hiddens=True``, in eval mode.
    waveforms : list of torch.Tensor
        1-D 16 kHz waveforms.
    batch_size : int
        Utterances per forward pass.
    device : str
        Where the model runs.
    desc : str, optional
        The progress bar's label.

    Returns
    -------
    torch.Tensor
        ``[L + 1, N, D]`` on the CPU.

    Example
    -------
    >>> ssl = SSLBackbone(
    ...     "tiny-wavlm", getfixture("tmp_path"), "classifier", None, True
    ... )
    >>> wavs = [torch.randn(16000), torch.randn(8000)]
    >>> layer_features(ssl, wavs).shape == (ssl.num_layers + 1, 2, 32)
    True
    """
    pooled = []
    starts = range(0, len(waveforms), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=None):
        batch = waveforms[start : start + batch_size]
        wavs = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
        lengths = torch.tensor([len(wav) for wav in batch]) / wavs.shape[1]
        wavs, lengths = wavs.to(device), lengths.to(device)
        with torch.no_grad():
            hidden = ssl(wavs, lengths)
            frame_lengths = ssl.frame_lengths(wavs, lengths)
            pooled.append(mean_pool_layers(hidden, frame_lengths).cpu())
    return torch.cat(pooled, dim=1)


def stage1_settings(protocol_folder, run):
    """The plain values of run ``run``'s finished stage 1.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    run : int
        The run.

    Returns
    -------
    dict
        The values of its ``hyperparams.yaml`` (references resolved,
        nothing built), with ``encoder_folder``: where its ``ssl.ckpt`` is.

    Raises
    ------
    FileNotFoundError
        Naming the file that is missing when stage 1 has not finished.
    """
    experiment, protocol = os.path.split(os.path.normpath(protocol_folder))
    stage1 = layout.step_folder(experiment, protocol, run, layout.STAGE1)
    encoder = layout.encoder_folder(experiment, protocol, run)
    hparams = layout.step_file(stage1, layout.HPARAMS_FILE)
    for path in (hparams, layout.encoder_files(encoder)["ssl"]):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{protocol_folder}: run {run} has no finished stage 1 "
                f"({path} is missing)"
            )
    return {**read_config(hparams, {}), "encoder_folder": encoder}


def held_out_utterances(settings, run, max_per_corpus=200, seed=0):
    """The test part of run ``run`` of every corpus, capped per corpus.

    The corpora are those of the stage-1 YAML, read from their prepared
    manifests and folds (prepared again only if missing).

    Arguments
    ---------
    settings : dict
        The stage-1 values (:func:`stage1_settings`).
    run : int
        The run.
    max_per_corpus : int
        At most this many utterances per corpus, drawn (seeded) from each
        emotion in turn so that every emotion keeps its share.
    seed : int
        Seeds the draw.

    Returns
    -------
    list of dict
        ``id``, ``corpus``, ``emotion``, ``wav``, corpus by corpus.
    """
    prepared = prepare_corpora(
        settings["corpora"],
        settings["prepared_folder"],
        settings["protocol"],
        settings["n_folds"],
        settings["fold_seed"],
    )
    manifest = load_manifests([path for path, _ in prepared.values()])
    utterances = []
    for corpus, (_, folds) in prepared.items():
        _, test_ids = run_split(folds, run)
        emotions = [manifest[utt]["emotion"] for utt in test_ids]
        for utt in capped_by_emotion(test_ids, emotions, max_per_corpus, seed):
            entry = manifest[utt]
            utterances.append(
                {
                    "id": utt,
                    "corpus": corpus,
                    "emotion": entry["emotion"],
                    "wav": entry["wav"],
                }
            )
    return utterances


def capped_by_emotion(ids, emotions, limit, seed=0):
    """At most ``limit`` ids, taken from each emotion in turn.

    Arguments
    ---------
    ids : list of str
        Utterance ids.
    emotions : list of str
        Their emotions.
    limit : int
        How many to keep.
    seed : int
        Seeds the order within each emotion.

    Returns
    -------
    list of str
        All ids (in their order) when there are at most ``limit``.

    Example
    -------
    >>> ids = ["a1", "a2", "a3", "a4", "b1"]
    >>> kept = capped_by_emotion(ids, ["a", "a", "a", "a", "b"], 3)
    >>> len(kept), "b1" in kept
    (3, True)
    """
    if len(ids) <= limit:
        return list(ids)
    generator = np.random.default_rng(seed)
    by_emotion = {}
    for utt, emotion in zip(ids, emotions, strict=True):
        by_emotion.setdefault(emotion, []).append(utt)
    queues = [
        list(generator.permutation(group))
        for _, group in sorted(by_emotion.items())
    ]
    kept = []
    while len(kept) < limit:
        for queue in queues:
            if queue and len(kept) < limit:
                kept.append(str(queue.pop()))
    return kept


def speech_models(settings, device="cpu"):
    """The speech model before and after stage 1, returning every layer.

    Arguments
    ---------
    settings : dict
        The stage-1 values (:func:`stage1_settings`): ``ssl_source``,
        ``pretrained_folder``, ``train_front_end`` and ``encoder_folder``
        (its ``ssl.ckpt`` is loaded strictly into the "after" model).
    device : str
        Where the models go.

    Returns
    -------
    dict
        ``before`` / ``after`` -> :class:`SSLBackbone` in eval mode.
    """
    models = {}
    for name in MODELS:
        models[name] = SSLBackbone(
            settings["ssl_source"],
            settings["pretrained_folder"],
            stage="classifier",
            output_all_hiddens=True,
            train_front_end=bool(settings.get("train_front_end", False)),
        )
    strict_parameter_transfer(
        models["after"], layout.encoder_files(settings["encoder_folder"])["ssl"]
    )
    return {name: model.to(device) for name, model in models.items()}


def embedding_map(features, seed=0):
    """Two-dimensional t-SNE coordinates of pooled features.

    Arguments
    ---------
    features : torch.Tensor
        ``[N, D]``.
    seed : int
        t-SNE's random state.

    Returns
    -------
    numpy.ndarray
        ``[N, 2]``.

    Example
    -------
    >>> embedding_map(torch.randn(10, 4)).shape
    (10, 2)
    """
    from sklearn.manifold import TSNE

    count = features.shape[0]
    perplexity = max(1.0, min(30.0, (count - 1) / 3))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    )
    return tsne.fit_transform(features.double().numpy())


def analyse_run(
    protocol_folder, run, max_per_corpus=200, batch_size=8, device="cpu"
):
    """Layer-wise similarity and embedding maps of run ``run``.

    Arguments
    ---------
    protocol_folder : str
        ``<experiment>/<protocol>``.
    run : int
        The run whose held-out utterances and stage 1 are analysed.
    max_per_corpus : int
        At most this many held-out utterances per corpus.
    batch_size : int
        Utterances per forward pass.
    device : str
        Where the speech models run.

    Returns
    -------
    RunAnalysis
    """
    settings = stage1_settings(protocol_folder, run)
    utterances = held_out_utterances(
        settings, run, max_per_corpus, settings["seed"]
    )
    if len(utterances) < 2:
        raise ValueError(
            f"{protocol_folder}: run {run} holds out {len(utterances)} "
            "utterance(s); pairs need at least two"
        )
    waveforms = [load_audio(utt["wav"]) for utt in utterances]
    emotions = [utt["emotion"] for utt in utterances]
    corpora = [utt["corpus"] for utt in utterances]
    models = speech_models(settings, device)
    similarity, maps = {}, {}
    for name, model in models.items():
        features = layer_features(
            model, waveforms, batch_size, device, desc=f"{name} stage 1"
        )
        similarity[name] = layer_similarity(features, emotions, corpora)
        maps[name] = embedding_map(features[-1], settings["seed"])
    return RunAnalysis(
        utterances=[
            {key: utt[key] for key in ("id", "corpus", "emotion")}
            for utt in utterances
        ],
        similarity=similarity,
        maps=maps,
        pairs=pair_counts(emotions, corpora),
    )
