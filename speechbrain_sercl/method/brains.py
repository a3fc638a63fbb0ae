"""The SpeechBrain ``Brain`` classes of the method.

* :class:`ContrastiveBrain`: stage 1, supervised contrastive fine-tuning of
  the transformer and the attention pooling on cross-corpus batches;
* :class:`ClassifierBrain`: stage 2, a frozen speech model (eval mode) under
  a trained pooling and emotion classifier, per corpus;
* :class:`FineTuneBrain`: the "FT" baseline, plain cross-entropy
  fine-tuning of the transformer, pooling and classifier, per corpus.

Every Brain enforces its freeze policy on the speech model (module
``ssl``, a :class:`speechbrain_sercl.method.backbone.SSLBackbone`) whatever the
YAML says, applies its epoch-wise learning-rate schedule to parameter groups
whose relative rates come from ``hparams.lr_scales`` (the transformer runs
at 0.4x), clips the gradients of all its trainable parameters together
(one norm, at most ``max_grad_norm``), and saves a checkpoint at the end of
every training epoch (and mid-epoch with SpeechBrain's
``--ckpt_interval_steps`` / ``--ckpt_interval_minutes``), so a killed run
resumes where it stopped.

Expected hparams: ``lr_schedule`` (a
:class:`~speechbrain_sercl.method.schedulers.MultiStepScheduler`), ``lr_scales``
(module name -> rate multiplier), ``train_logger``, and optionally
``train_crop`` (an :class:`~speechbrain_sercl.data.pipeline.EpochCrop`);
``contrastive_loss`` for stage 1; ``output_folder`` for test reports
(``predictions.csv`` and ``test_metrics.json``) and, in the final run
(nothing to test), ``trained.json``; for stage 2, optionally
``use_feature_cache`` and ``feature_cache_folder``.

Authors
 * speechbrain-sercl developers
"""

import json
import math
import os

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import if_main_process

from speechbrain_sercl import layout
from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.method.embedding import pool_utterances
from speechbrain_sercl.method.feature_cache import build_cache
from speechbrain_sercl.method.losses import positive_mask_from_labels
from speechbrain_sercl.method.schedulers import set_learning_rate
from speechbrain_sercl.metrics import EmotionMetricStats
from speechbrain_sercl.predictions import write_predictions

__all__ = [
    "ClassifierBrain",
    "ContrastiveBrain",
    "EmotionBrain",
    "FineTuneBrain",
    "class_names",
    "clip_gradients",
    "parameter_groups",
    "unwrap",
]


def unwrap(module):
    """Return the module inside a DDP / DataParallel wrapper, if any.

    Arguments
    ---------
    module : torch.nn.Module
        A module, wrapped or not.

    Returns
    -------
    torch.nn.Module
        The bare module.

    Example
    -------
    >>> linear = torch.nn.Linear(2, 2)
    >>> unwrap(torch.nn.DataParallel(linear)) is linear
    True
    """
    wrappers = (
        torch.nn.parallel.DistributedDataParallel,
        torch.nn.DataParallel,
    )
    return module.module if isinstance(module, wrappers) else module


def class_names(label_encoder):
    """The class names of a label encoder, in index order.

    Arguments
    ---------
    label_encoder : speechbrain.dataio.encoder.CategoricalEncoder
        The classifier's encoder.

    Returns
    -------
    list of str
        ``ind2lab[0], ind2lab[1], ...``: the order of the classifier's
        outputs.

    Example
    -------
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> encoder = CategoricalEncoder()
    >>> encoder.update_from_iterable(["sad", "angry"])
    >>> class_names(encoder)
    ['sad', 'angry']
    """
    return [label_encoder.ind2lab[i] for i in range(len(label_encoder))]


def parameter_groups(modules, lr_scales):
    """One optimizer group per module that has trainable parameters.

    Arguments
    ---------
    modules : torch.nn.ModuleDict
        The Brain's modules.
    lr_scales : dict
        Module name -> multiplier of the base rate (default 1).

    Returns
    -------
    list of dict
        Groups with ``params``, ``lr_scale`` and ``name``.

    Example
    -------
    >>> modules = torch.nn.ModuleDict(
    ...     {"ssl": torch.nn.Linear(2, 2), "pooling": torch.nn.Linear(2, 1)}
    ... )
    >>> modules["pooling"].requires_grad_(False)
    Linear(in_features=2, out_features=1, bias=True)
    >>> [
    ...     (g["name"], g["lr_scale"])
    ...     for g in parameter_groups(modules, {"ssl": 0.4})
    ... ]
    [('ssl', 0.4)]
    """
    unknown = set(lr_scales) - set(modules.keys())
    if unknown:
        raise KeyError(
            f"lr_scales names modules the Brain lacks: {sorted(unknown)}"
        )
    groups = []
    for name, module in modules.items():
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            scale = float(lr_scales.get(name, 1.0))
            groups.append({"params": params, "lr_scale": scale, "name": name})
    return groups


def clip_gradients(optimizers, max_norm):
    """Clip the gradients of every group of the optimizers to one norm.

    The L2 norm is taken over all their parameters together and every
    gradient is scaled by the same factor ``min(1, max_norm / norm)``.

    Arguments
    ---------
    optimizers : iterable of torch.optim.Optimizer
        The optimizers about to step.
    max_norm : float
        The largest total norm; zero or negative: no clipping (torch would
        zero the gradients, or flip their sign).

    Returns
    -------
    torch.Tensor or None
        The total norm before clipping; None when clipping is off.

    Example
    -------
    >>> first = torch.nn.Parameter(torch.zeros(1))
    >>> second = torch.nn.Parameter(torch.zeros(1))
    >>> optimizer = torch.optim.SGD([{"params": [first]}, {"params": [second]}])
    >>> first.grad, second.grad = torch.tensor([3.0]), torch.tensor([4.0])
    >>> clip_gradients([optimizer], max_norm=1.0)
    tensor(5.)
    >>> first.grad, second.grad
    (tensor([0.6000]), tensor([0.8000]))
    """
    if max_norm <= 0:
        return None
    params = [
        param
        for optimizer in optimizers
        for group in optimizer.param_groups
        for param in group["params"]
    ]
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


@register_checkpoint_hooks
class EmotionBrain(sb.Brain):
    """What the three Brains share: freeze policy, rates, logs, checkpoints.

    Subclasses set ``STAGE`` (the :class:`SSLBackbone` freeze policy) and
    implement ``compute_forward`` / ``compute_objectives``. Running means
    of extra statistics (``self.stage_stats``) are checkpointed with the
    Brain, so they survive a mid-epoch resume.
    """

    STAGE = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.modules.ssl.set_stage(self.STAGE)
        self.stage_stats = {}
        self.stats_count = {}
        self.learning_rate = None

    def init_optimizers(self):
        """Adam (or ``opt_class``) over per-module parameter groups."""
        groups = parameter_groups(self.modules, self.hparams.lr_scales)
        self.optimizer = self.opt_class(groups)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def optimizers_step(self):
        """One optimizer step, clipping all trainable parameters together.

        Mirrors ``Brain.optimizers_step`` of SpeechBrain 1.1.2 (unscaling
        for fp16, ``skip_nonfinite_grads``, ``freeze_optimizers``, the step,
        ``zero_grad`` and the ``optimizer_step`` count) but for clipping:
        SpeechBrain clips each optimizer's first parameter group only, and
        ours has a group per module; see :func:`clip_gradients`.
        """
        optimizers = self.freeze_optimizers(self.optimizers_dict).values()
        for optimizer in optimizers:
            self.scaler.unscale_(optimizer)
        # Before the norm (SpeechBrain checks after clipping): one infinite
        # gradient would otherwise zero every other one.
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        clip_gradients(optimizers, self.max_grad_norm)
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def make_dataloader(self, dataset, stage, **loader_kwargs):
        """Keep a handle on a custom batch sampler so it gets ``set_epoch``.

        SpeechBrain calls ``set_epoch`` only on the samplers it wraps itself
        (DDP); a ``batch_sampler`` passed in a single process would
        otherwise repeat the same batches every epoch.
        """
        loader = super().make_dataloader(dataset, stage, **loader_kwargs)
        if stage == sb.Stage.TRAIN and self.train_sampler is None:
            self.train_sampler = loader_kwargs.get("batch_sampler")
        return loader

    def on_stage_start(self, stage, epoch=None):
        """Set this epoch's learning rate and crops; reset statistics.

        A training epoch resumed mid-way (SpeechBrain recovered
        ``self.step > 0``, the batches done, and ``_recover`` the means
        over them) keeps its statistics, as SpeechBrain keeps
        ``avg_train_loss``.
        """
        if stage != sb.Stage.TRAIN or self.step == 0:
            self.stage_stats = {}
            self.stats_count = {}
        if stage == sb.Stage.TRAIN:
            self.learning_rate = self.hparams.lr_schedule.value(epoch)
            set_learning_rate(self.optimizer, self.learning_rate)
            crop = getattr(self.hparams, "train_crop", None)
            if crop is not None:
                crop.set_epoch(epoch)

    def embed(self, batch):
        """Pooled embeddings: the speech model, then the attention pooling
        over each utterance's valid frames.

        A batch of cached features (stage 2, see
        :mod:`speechbrain_sercl.method.feature_cache`) goes to the pooling
        directly, in float32.

        Arguments
        ---------
        batch : PaddedBatch
            With ``sig`` (waveforms and relative lengths), or ``hidden``
            (cached hidden states and relative frame lengths).

        Returns
        -------
        torch.Tensor
            ``[B, D]``.
        """
        batch = batch.to(self.device)
        if hasattr(batch, "hidden"):
            hidden, frame_lengths = batch.hidden
            return self.modules.pooling(hidden.float(), frame_lengths)
        wavs, lengths = batch.sig
        return pool_utterances(
            self.modules.ssl, self.modules.pooling, wavs, lengths
        )

    def accumulate_stats(self, **values):
        """Add one batch's values to the running means of this stage.

        Non-finite values (e.g. a similarity that a batch cannot define)
        are left out of their mean.

        Arguments
        ---------
        **values : float
            Named statistics of the batch.
        """
        for name, value in values.items():
            value = float(value)
            if not math.isfinite(value):
                continue
            count = self.stats_count.get(name, 0) + 1
            mean = self.stage_stats.get(name, 0.0)
            self.stage_stats[name] = mean + (value - mean) / count
            self.stats_count[name] = count

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch and save a checkpoint after training."""
        if stage != sb.Stage.TRAIN:
            return
        stats = {"loss": stage_loss, **self.stage_stats}
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": epoch, "lr": self.learning_rate},
            train_stats=stats,
        )
        # SpeechBrain resets these right after this hook; resetting them
        # first makes the checkpoint resume at the start of the next epoch
        # (and keeps a later evaluate() from averaging over stale steps).
        self.step, self.avg_train_loss = 0, 0.0
        if self.checkpointer is not None:
            self.checkpointer.save_and_keep_only(
                meta={"epoch": epoch, "loss": stage_loss}, num_to_keep=1
            )

    @mark_as_saver
    def _save(self, path):
        super()._save(path)
        with open(f"{path}.stats.json", "w", encoding="utf-8") as out:
            json.dump({"means": self.stage_stats, "n": self.stats_count}, out)

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        super()._recover(path, end_of_epoch)
        stats_path = f"{path}.stats.json"
        if os.path.exists(stats_path):
            with open(stats_path, encoding="utf-8") as stats_file:
                saved = json.load(stats_file)
            self.stage_stats, self.stats_count = saved["means"], saved["n"]


class ContrastiveBrain(EmotionBrain):
    """Stage 1: contrastive fine-tuning on cross-corpus batches.

    Batches come from
    :class:`~speechbrain_sercl.method.sampler.CrossCorpusBatchSampler`,
    positives first: the batch's emotion is the emotion of its first utterance,
    which stays true when DDP hands whole batches to different processes. Logs
    each loss term and the mean positive / negative cosine similarities.
    Modules: ``ssl`` and ``pooling``.
    """

    STAGE = "contrastive"

    def compute_forward(self, batch, stage):
        """Pooled embeddings of the batch."""
        return self.embed(batch)

    def compute_objectives(self, predictions, batch, stage):
        """Contrastive + cosine-margin loss against the batch's emotion."""
        positives = positive_mask_from_labels(batch.emotion, batch.emotion[0])
        terms = self.hparams.contrastive_loss(
            predictions, positives.to(predictions.device)
        )
        self.accumulate_stats(
            contrastive=terms.contrastive.item(),
            margin=terms.margin.item(),
            positive_similarity=terms.positive_similarity.item(),
            negative_similarity=terms.negative_similarity.item(),
        )
        return terms.total

    def save_encoder(self, folder):
        """Write the stage-1 speech model and pooling for stage 2.

        Writes ``ssl.ckpt`` and ``pooling.ckpt`` (state dicts, the format
        SpeechBrain's ``Pretrainer`` loads) on the main process only.

        Arguments
        ---------
        folder : str
            Where to write.
        """
        if not if_main_process():
            return
        os.makedirs(folder, exist_ok=True)
        # ssl.ckpt last: the fold runner takes it as the sign of a finished
        # stage 1.
        for name in ("pooling", "ssl"):
            state = unwrap(self.modules[name]).state_dict()
            path = os.path.join(folder, f"{name}.ckpt")
            with writing_atomically(path) as tmp_path:
                torch.save(state, tmp_path)


class ClassifierBrain(EmotionBrain):
    """Stage 2: frozen speech model, trained pooling + emotion classifier.

    Modules: ``ssl`` (kept in eval mode, no gradients), ``pooling`` and
    ``classifier``. Targets come from ``emotion_encoded``; the test data
    also provides ``corpus`` and ``speaker``. The test stage writes, into
    ``hparams.output_folder`` and on the main process only,
    ``predictions.csv`` (one row per test utterance, see
    :func:`speechbrain_sercl.reporting.results.write_predictions`) and then
    ``test_metrics.json`` (UA, WA, macro-F1, confusion matrix, class
    names), the sign of a finished step.

    A step of the final run has no test part: instead of testing, its
    recipe calls :meth:`write_trained_report` after training, which writes
    ``trained.json``, the sign of a finished final-run step.

    SpeechBrain 1.1.2 gives the test stage no distributed sampler
    (``Brain.make_dataloader`` adds one for training only): under DDP every
    process evaluates the whole test set, so the main process holds every
    utterance exactly once (``write_predictions`` refuses a repeated id).
    """

    STAGE = "classifier"

    def cached_features(self, manifest, ids, max_seconds=None):
        """The speech model's cached features of some utterances.

        With ``hparams.use_feature_cache`` on, computes the missing
        entries in ``hparams.feature_cache_folder`` (main process, on the
        Brain's device, with a progress bar unless ``--noprogressbar``)
        and returns their reader, for
        :func:`~speechbrain_sercl.data.pipeline.make_dataset`; the speech
        model must be loaded (stage 1's weights) first.

        Arguments
        ---------
        manifest : dict
            utterance id -> entry (with ``wav``).
        ids : iterable of str
            The utterances.
        max_seconds : float, optional
            Truncate longer audio before the model.

        Returns
        -------
        speechbrain_sercl.method.feature_cache.CachedFeatures or None
            None when the cache is off (or the YAML has no such setting).
        """
        if not getattr(self.hparams, "use_feature_cache", False):
            return None
        return build_cache(
            self.hparams.feature_cache_folder,
            self.modules.ssl,
            [manifest[utt]["wav"] for utt in ids],
            max_seconds=max_seconds,
            progressbar=not self.noprogressbar,
        )

    def compute_forward(self, batch, stage):
        """Log-probabilities over the corpus's emotions."""
        return self.modules.classifier(self.embed(batch))

    def compute_objectives(self, predictions, batch, stage):
        """Negative log-likelihood; collects predictions outside training.

        At test time also keeps each utterance's corpus, speaker and class
        probabilities for ``predictions.csv``.
        """
        targets = batch.emotion_encoded.data.reshape(-1)
        loss = torch.nn.functional.nll_loss(predictions.float(), targets)
        if stage != sb.Stage.TRAIN:
            self.metrics.append(batch.id, predictions.detach(), targets)
        if stage == sb.Stage.TEST:
            probabilities = predictions.detach().double().exp()
            probabilities = probabilities.reshape(len(targets), -1)
            self.test_utterances.extend(
                zip(
                    batch.corpus,
                    batch.speaker,
                    probabilities.cpu().tolist(),
                    strict=True,
                )
            )
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Start a fresh metric accumulator for validation and test."""
        super().on_stage_start(stage, epoch)
        if stage != sb.Stage.TRAIN:
            self.metrics = EmotionMetricStats(
                n_classes=len(self.hparams.label_encoder)
            )
            self.test_utterances = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log; after the test, write the predictions and the report."""
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.TRAIN:
            return
        summary = self.metrics.summarize()
        scores = {key: summary[key] for key in ("UA", "WA", "macro_F1")}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch},
                valid_stats={"loss": stage_loss, **scores},
            )
            return
        self.hparams.train_logger.log_stats(
            stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
            test_stats={"loss": stage_loss, **scores},
        )
        if if_main_process():
            # test_metrics.json last: the fold runner takes it as the sign
            # of a finished step.
            self.write_predictions()
            self.write_test_report(summary)

    def write_predictions(self):
        """Write ``predictions.csv`` in the output folder.

        One row per test utterance: id, corpus, speaker, true emotion,
        predicted emotion (the arg-max used by the metrics) and the
        probability of every class in the label encoder's order.

        Returns
        -------
        str
            The path written.
        """
        classes = class_names(self.hparams.label_encoder)
        metrics = self.metrics
        if len(self.test_utterances) != len(metrics.ids):
            raise RuntimeError(
                f"{len(metrics.ids)} test predictions but "
                f"{len(self.test_utterances)} utterance records"
            )
        rows = []
        for index, (corpus, speaker, probabilities) in enumerate(
            self.test_utterances
        ):
            rows.append(
                {
                    "id": metrics.ids[index],
                    "corpus": corpus,
                    "speaker": speaker,
                    "emotion": classes[metrics.targets[index]],
                    "predicted": classes[metrics.predictions[index]],
                    "probabilities": probabilities,
                }
            )
        path = layout.step_file(
            self.hparams.output_folder, layout.PREDICTIONS_FILE
        )
        return write_predictions(path, classes, rows)

    def write_test_report(self, summary):
        """Write ``test_metrics.json`` in the output folder.

        Arguments
        ---------
        summary : dict
            ``EmotionMetricStats.summarize()``.
        """
        report = {
            "UA": summary["UA"],
            "WA": summary["WA"],
            "macro_F1": summary["macro_F1"],
            "confusion": [list(map(int, row)) for row in summary["confusion"]],
            "classes": class_names(self.hparams.label_encoder),
        }
        path = layout.step_file(
            self.hparams.output_folder, layout.TEST_REPORT_FILE
        )
        with writing_atomically(path) as tmp_path:
            with open(tmp_path, "w", encoding="utf-8") as out:
                json.dump(report, out, indent=2)

    def write_trained_report(self, train_ids):
        """Write ``trained.json``: a step trained on all the data is done.

        For the final run, which has no test part: what was trained (the
        number of training utterances and epochs, the classes in the
        classifier's order) and no metric (there is none to give). Main
        process only.

        Arguments
        ---------
        train_ids : list of str
            The utterances it was trained on.

        Returns
        -------
        str or None
            The path written (None on other processes).
        """
        if not if_main_process():
            return None
        report = {
            "train_utterances": len(train_ids),
            "test_utterances": 0,
            "epochs": self.hparams.epoch_counter.current,
            "classes": class_names(self.hparams.label_encoder),
        }
        path = layout.step_file(self.hparams.output_folder, layout.TRAINED_FILE)
        with writing_atomically(path) as tmp_path:
            with open(tmp_path, "w", encoding="utf-8") as out:
                json.dump(report, out, indent=2)
        return path


class FineTuneBrain(ClassifierBrain):
    """The FT baseline: cross-entropy fine-tuning of the transformer too.

    Same modules and outputs as :class:`ClassifierBrain`, but the speech
    model follows the ``finetune`` policy (transformer trainable, CNN and
    feature projection frozen) and joins the optimizer at its
    ``lr_scales["ssl"]`` rate.
    """

    STAGE = "finetune"
