"""The ``sercl`` command line.

Each subcommand is a small function that parses its own options and calls
the package; ``main`` only dispatches. Run ``sercl --help`` for the list.

Example
-------
>>> build_parser().prog
'sercl'
"""

import argparse
import contextlib
import inspect
import os
import sys

from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
)

from speechbrain_sercl import __version__
from speechbrain_sercl.checkpoints import CheckpointError
from speechbrain_sercl.data import CORPORA, prepare_corpus
from speechbrain_sercl.data.folds import FoldsMismatchError
from speechbrain_sercl.data.manifest import PreparationError
from speechbrain_sercl.inference.demo import DEMO_METHOD, try_exported_model
from speechbrain_sercl.inference.export import InvalidExportError, export_step
from speechbrain_sercl.inference.hparams_trust import UntrustedHparamsError
from speechbrain_sercl.inference.hub import (
    PushError,
    loading_code,
    model_url,
    push_to_hub,
)
from speechbrain_sercl.inference.predict import (
    ModelOutputError,
    check_options,
    class_names,
    load_classifier,
    predict_files,
)
from speechbrain_sercl.inference.predict_io import (
    collect_audio_files,
    output_format,
    write_predictions,
)
from speechbrain_sercl.inference.quiet import libraries_quiet
from speechbrain_sercl.layout import (
    FINAL_RUN,
    RESULTS_JSON,
    RESULTS_MARKDOWN,
    run_of_folder,
)
from speechbrain_sercl.method.registry import method_names
from speechbrain_sercl.protocol.cross_corpus import write_cross_corpus
from speechbrain_sercl.protocol.locking import FolderLockedError, folder_lock
from speechbrain_sercl.protocol.runner import FoldRunner, StepFailed
from speechbrain_sercl.reporting.plots import PlottingUnavailable
from speechbrain_sercl.reporting.report import write_report
from speechbrain_sercl.step_records import (
    RETRAIN_OPTION,
    StepChanged,
    checked_steps,
)


def build_parser():
    """Build the ``sercl`` argument parser with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subparser sets ``func`` to its handler.

    Example
    -------
    >>> parser = build_parser()
    >>> parser.parse_args([])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = argparse.ArgumentParser(
        prog="sercl",
        description="Cross-corpus speech emotion recognition (SpeechBrain).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_prepare_parser(subparsers)
    _add_folds_parser(subparsers)
    _add_demo_parser(subparsers)
    _add_export_parser(subparsers)
    _add_push_parser(subparsers)
    _add_predict_parser(subparsers)
    _add_analyze_parser(subparsers)
    return parser


def _add_prepare_parser(subparsers):
    """Add ``sercl prepare CORPUS DATA_FOLDER SAVE_FOLDER``."""
    parser = subparsers.add_parser(
        "prepare",
        help="write the manifest of a corpus",
        description=(
            "Read a corpus release, check every audio file and write "
            "SAVE_FOLDER/manifest.json (kept as is when already prepared "
            "with the same options), then print what was found."
        ),
    )
    parser.add_argument("corpus", choices=sorted(CORPORA))
    parser.add_argument("data_folder", help="the corpus release folder")
    parser.add_argument("save_folder", help="where the manifest goes")
    parser.add_argument(
        "--improvised-only",
        action="store_true",
        help="IEMOCAP: keep only the improvised dialogs",
    )
    parser.add_argument(
        "--language",
        help="ESD: keep one language's speakers (english or mandarin)",
    )
    parser.add_argument(
        "--corpus-name",
        help="the corpus field of the manifest (default: the corpus)",
    )
    parser.add_argument(
        "--no-validate-audio",
        dest="validate_audio",
        action="store_false",
        help="read only the file headers instead of every sample",
    )
    parser.set_defaults(func=_run_prepare)


def _prepare_options(args):
    """The reader options given on the command line."""
    options = {"validate_audio": args.validate_audio}
    if args.corpus_name:
        options["corpus_name"] = args.corpus_name
    if args.improvised_only:
        options["improvised_only"] = True
    if args.language:
        options["language"] = args.language
    return options


def _run_prepare(args):
    """Prepare one corpus and print its summary; return the exit status."""
    options = _prepare_options(args)
    accepted = inspect.signature(CORPORA[args.corpus].prepare).parameters
    unsupported = [name for name in options if name not in accepted]
    if unsupported:
        flags = ", ".join("--" + name.replace("_", "-") for name in unsupported)
        print(
            f"sercl prepare: error: {flags} does not apply to {args.corpus}",
            file=sys.stderr,
        )
        return 2
    try:
        report = prepare_corpus(
            args.corpus, args.data_folder, args.save_folder, **options
        )
    except (FileNotFoundError, PreparationError, ValueError) as error:
        print(f"sercl prepare: error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _add_folds_parser(subparsers):
    """Add ``sercl folds HPARAMS [run options and overrides]``."""
    parser = subparsers.add_parser(
        "folds",
        help="run the whole cross-validation protocol",
        allow_abbrev=False,
        description=(
            "Prepare every corpus once, then for every run: stage 1 on the "
            "training parts of the fold, then stage 2 and the FT baseline "
            "per corpus, tested on the test part; then results.md / "
            "results.json. Finished steps are skipped while they would be "
            "made from the same data and settings (a changed one stops the "
            "run, or with --retrain-changed is trained again). With "
            "--final, the "
            "final run instead: the same steps on all the data, for "
            "publishing (nothing tested). Other options are "
            "SpeechBrain run options (--device, --precision, ...), passed "
            "to every step; --key=VALUE, an override for every step whose "
            "YAML declares the key; or --METHOD.key=VALUE (contrastive, "
            "classifier, finetune), for one method. Values are YAML."
        ),
    )
    parser.add_argument(
        "hparams",
        help="the stage-1 YAML: a path, or a shipped one (wavlm, hubert, demo)",
    )
    _add_runner_options(parser)
    parser.set_defaults(func=_run_folds, extra_arguments=True)


def _add_runner_options(parser):
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=method_names(per_corpus=True),
        default=list(method_names(per_corpus=True)),
        help="what is trained and tested per corpus: classifier (stage 2, "
        "after stage 1), finetune (the FT baseline), classical (the MFCC "
        "+ logistic regression floor); default: all",
    )
    parser.add_argument(
        "--runs", nargs="+", type=int, help="only these runs (default: all)"
    )
    parser.add_argument(
        "--launcher",
        help='prefix of every step, e.g. "torchrun --nproc_per_node=4"',
    )
    parser.add_argument(
        "--no-cross-corpus",
        dest="cross_corpus",
        action="store_false",
        help="do not test each corpus's stage-2 and FT models on the other "
        "corpora's shared emotions (cross_corpus/cross_corpus.md)",
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="instead of the protocol's runs, the final run for publishing: "
        "stage 1 on every utterance of every corpus, stage 2 and FT on "
        "every utterance of each corpus, nothing tested (no classical "
        "floor), into <experiment>/<protocol>/final",
    )
    parser.add_argument(
        RETRAIN_OPTION,
        dest="retrain_changed",
        action="store_true",
        help="train again every step made from other data or settings than "
        "now, or without a step record (an older version's), instead of "
        "stopping; its old folder is kept in <protocol>/replaced until the "
        "new one is done",
    )


def _add_demo_parser(subparsers):
    """Add ``sercl demo``: the protocol on the embedded synthetic data."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole protocol on the embedded synthetic corpora",
        allow_abbrev=False,
        description=(
            "Generate two small synthetic corpora in the IEMOCAP and CASIA "
            "layouts and run `sercl folds demo` on them (tiny "
            "WavLM, CPU, minutes). The corpora are spoken by the project's "
            "formant synthesiser; add --demo_speech=espeak (and another "
            "--output) for espeak-ng's English and Mandarin speech, and "
            "any other override of hparams/demo.yaml the same way."
        ),
    )
    parser.add_argument(
        "--output", default="results/demo", help="where everything goes"
    )
    _add_runner_options(parser)
    parser.set_defaults(func=_run_demo, extra_arguments=True)


def _add_export_parser(subparsers):
    """Add ``sercl export STEP_FOLDER OUTPUT``."""
    parser = subparsers.add_parser(
        "export",
        help="write the inference folder of a trained model",
        description=(
            "Write a folder that SpeechBrain's EncoderClassifier.from_hparams "
            "loads (no network, only speechbrain_sercl installed) from a "
            "finished stage-2 or FT step: <experiment>/<protocol>/fold_<i>/"
            "<corpus>/<classifier or finetune>."
        ),
    )
    parser.add_argument("step_folder", help="a finished stage-2 or FT step")
    parser.add_argument("output", help="the folder to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if it exists"
    )
    parser.set_defaults(func=_run_export)


def _run_export(args):
    """Export a step; return the status."""
    try:
        folder = export_step(args.step_folder, args.output, args.overwrite)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"sercl export: error: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {folder}. Load it with:")
    print("  from speechbrain.inference.classifiers import EncoderClassifier")
    print(f'  EncoderClassifier.from_hparams(source="{folder}")')
    return 0


def _run_folds(args):
    """Run the protocol of a stage-1 YAML and report; return the status."""
    return 0 if _run_protocol(args) else 1


def _run_protocol(args, then=None):
    """Run the protocol and print its results, then call ``then(runner)``
    if given, all under the experiment folder's lock; the runner, or None
    on an error (printed)."""
    try:
        runner = FoldRunner(
            args.hparams,
            args.arguments,
            methods=args.methods,
            launcher=args.launcher,
            runs=args.runs,
            final=args.final,
            cross_corpus=args.cross_corpus,
            retrain_changed=args.retrain_changed,
        )
        with folder_lock(runner.experiment_folder):
            runner.run()
            _show_results(runner)
            if then is not None:
                then(runner)
    except (
        StepFailed,
        StepChanged,
        ValueError,
        FileNotFoundError,
        FoldsMismatchError,
        PreparationError,
        FolderLockedError,
    ) as error:
        print(f"sercl {args.command}: error: {error}", file=sys.stderr)
        return None
    return runner


def _show_results(runner):
    """The final run's models, or the protocol's report and tables."""
    if runner.final:
        _print_final_run(runner)
        return
    run = (runner.runs or [0])[0]
    _report(runner.protocol_folder, run, device=_device(runner.run_options))


def _report(protocol_folder, run, **options):
    """Write and show a protocol's results, cross-corpus table and report,
    of the steps made from the current data and settings alone (the others
    are named); False when the figures could not be drawn (said on the
    console)."""
    check = checked_steps(protocol_folder)
    for step, reason in check.excluded.items():
        print(f"[sercl] left out of the results: {step}: {reason}")
    cross_corpus = write_cross_corpus(protocol_folder, check.accepted)
    try:
        report = write_report(protocol_folder, run, check=check, **options)
    except PlottingUnavailable as error:
        report = None
        print(f"No figures and no report: {error}", file=sys.stderr)
    with open(os.path.join(protocol_folder, RESULTS_MARKDOWN)) as markdown:
        print(markdown.read())
    if cross_corpus:
        with open(cross_corpus[1], encoding="utf-8") as markdown:
            print(markdown.read())
    print("Wrote:")
    written = (os.path.join(protocol_folder, RESULTS_JSON), *cross_corpus)
    for path in (*written, report):
        if path:
            print(f"  {path}")
    return report is not None


def _device(run_options):
    """The ``--device`` among SpeechBrain's run options (default: cpu)."""
    for option in run_options:
        name, _, value = option.partition("=")
        if name == "--device" and value:
            return value
    return "cpu"


def _print_final_run(runner):
    """Where the final run's models are, and how to export one."""
    steps = runner.final_steps()
    print("The final run (every utterance of every corpus) wrote:")
    for step in steps:
        print(f"  {step}")
    print(f"Export one with: sercl export {steps[0]} <folder>")
    results = os.path.join(runner.protocol_folder, RESULTS_JSON)
    if not os.path.exists(results):
        print(
            f"No cross-validated results in {results} yet: run the same "
            "command without --final for them (the model card quotes them)."
        )


def _run_demo(args):
    """``sercl folds demo`` into ``--output``, then export run 0's (or the
    final run's) stage-2 model of the first corpus and classify a few
    files with it."""
    args.hparams = "demo"
    args.arguments = [
        f"--experiment_folder={args.output}",
        f"--demo_data_folder={os.path.join(args.output, 'data')}",
        *args.arguments,
    ]
    return 0 if _run_protocol(args, then=_try_demo_model) else 1


def _try_demo_model(runner):
    """Export run 0's (or the final run's) stage-2 model of the first
    corpus and classify a few files with it, when that run was trained."""
    run = FINAL_RUN if runner.final else 0
    if DEMO_METHOD in runner.methods and run in (runner.runs or [run]):
        try_exported_model(runner, next(iter(runner.corpora)), run)


def _add_push_parser(subparsers):
    """Add ``sercl push FOLDER --repo-id ID``."""
    parser = subparsers.add_parser(
        "push",
        help="publish an inference folder on the Hugging Face Hub",
        description=(
            "Check FOLDER (written by `sercl export`), create the model "
            "repository and upload the folder's files, and only those. The "
            "token is HF_TOKEN, else the one saved by `hf auth login`."
        ),
    )
    parser.add_argument("folder", help="the inference folder")
    parser.add_argument(
        "--repo-id", required=True, help="the repository, as user/name"
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="create the repository private",
    )
    parser.add_argument(
        "--revision", help="upload to this branch (created if needed)"
    )
    parser.add_argument(
        "--exist-ok",
        action="store_true",
        help="upload a new commit into a repository that already exists",
    )
    parser.set_defaults(func=_run_push)


def _run_push(args):
    """Push one inference folder and say how to load it."""
    try:
        commit = push_to_hub(
            args.folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            exist_ok=args.exist_ok,
        )
    except (
        InvalidExportError,
        HFValidationError,
        PushError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
    ) as error:
        # Hub errors put the server's message on further lines.
        message = " ".join(str(error).split())
        print(f"sercl push: error: {message}", file=sys.stderr)
        return 1
    print(f"Uploaded {args.folder} to {model_url(args.repo_id, args.revision)}")
    print(f"Commit: {commit.commit_url}")
    print("Load it with:")
    for line in loading_code(args.repo_id, args.revision).splitlines():
        print(f"    {line}")
    print(
        "Loading instantiates the classes named in hyperparams.yaml: "
        "load models only from sources you trust."
    )
    return 0


def _add_predict_parser(subparsers):
    """Add ``sercl predict INPUT... --model MODEL``."""
    parser = subparsers.add_parser(
        "predict",
        help="predict the emotion of audio files with a trained model",
        allow_abbrev=False,
        description=(
            "Predict the emotion of audio files (files, folders searched "
            "recursively, or .txt / .csv lists of files) with an inference "
            "folder or a Hugging Face model id. Files longer than "
            "--max-seconds are read and classified in windows, and get a "
            "timeline. Unusable files are reported and skipped. Loading a "
            "model builds what its hyperparams.yaml names, that is, runs "
            "code its author chose: a file that is not the one `sercl "
            "export` writes is refused unless --trust-remote-config."
        ),
    )
    parser.add_argument(
        "inputs", nargs="+", help="audio files, folders or lists of files"
    )
    parser.add_argument(
        "--model", required=True, help="an inference folder or a Hub id"
    )
    parser.add_argument(
        "--output",
        help="out.csv (timelines in out_chunks.csv) or out.json "
        "(default: CSV on standard output)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="files, or windows, per batch (default: 8)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="longer files are classified in windows (default: 30)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        help="window length in seconds (default: 10)",
    )
    parser.add_argument(
        "--hop",
        type=float,
        default=5.0,
        help="seconds between window starts (default: 5)",
    )
    parser.add_argument(
        "--savedir", help="where SpeechBrain puts the model's files"
    )
    parser.add_argument(
        "--device", help="e.g. cpu or cuda:0 (default: SpeechBrain's choice)"
    )
    parser.add_argument(
        "--trust-remote-config",
        action="store_true",
        help="load a hyperparams.yaml that `sercl export` did not write, "
        "whatever code it names: only for a source you trust as you trust "
        "code you run",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show what SpeechBrain, transformers and torch print "
        "(deprecation notices, their logs, progress bars); by default "
        "only errors and warnings about your files and model show",
    )
    parser.set_defaults(func=_run_predict)


def _run_predict(args):
    """Predict files, write the rows; status 1 when none was predicted."""
    quiet = contextlib.nullcontext() if args.verbose else libraries_quiet()
    with quiet:
        return _predict_and_write(args)


def _predict_and_write(args):
    """``sercl predict`` inside its warning filters."""
    try:
        output_format(args.output)
        check_options(args.batch_size, args.max_seconds, args.window, args.hop)
        files = collect_audio_files(args.inputs)
        classifier = load_classifier(
            args.model,
            savedir=args.savedir,
            trust_remote_config=args.trust_remote_config,
            run_opts={"device": args.device} if args.device else None,
        )
    except (
        UntrustedHparamsError,
        CheckpointError,
        FileNotFoundError,
        ValueError,
    ) as error:
        print(f"sercl predict: error: {error}", file=sys.stderr)
        return 1
    try:
        predictions = predict_files(
            classifier,
            files,
            batch_size=args.batch_size,
            max_seconds=args.max_seconds,
            window_seconds=args.window,
            hop_seconds=args.hop,
            progress=sys.stderr.isatty(),
        )
    except ModelOutputError as error:
        print(f"sercl predict: error: {args.model}: {error}", file=sys.stderr)
        return 1
    written = write_predictions(
        predictions, class_names(classifier), args.output
    )
    failed = sum(prediction.error is not None for prediction in predictions)
    print(
        f"Predicted {len(predictions) - failed} files, skipped {failed}.",
        *(f"Wrote {path}" for path in written),
        sep="\n",
        file=sys.stderr,
    )
    return 0 if len(predictions) > failed else 1


def _add_analyze_parser(subparsers):
    """Add ``sercl analyze FOLDER``."""
    parser = subparsers.add_parser(
        "analyze",
        help="write the figures and report.md of a finished experiment",
        description=(
            "For an experiment folder (each of its protocols) or one "
            "protocol folder: results.json / results.md, confusion "
            "matrices, the layer-wise cosine similarity of positive and "
            "negative pairs of held-out utterances before and after stage "
            "1 (PNG + CSV), t-SNE maps, training curves and report.md "
            "linking them (written next to results.md, figures in "
            "analysis/)."
        ),
    )
    parser.add_argument("folder", help="an experiment or protocol folder")
    parser.add_argument(
        "--run", type=int, default=0, help="the run to analyse (default: 0)"
    )
    parser.add_argument(
        "--max-utterances",
        type=int,
        default=200,
        help="held-out utterances per corpus at most (default: 200)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="utterances per forward pass (default: 8)",
    )
    parser.add_argument(
        "--device", default="cpu", help="e.g. cuda:0 (default: cpu)"
    )
    parser.set_defaults(func=_run_analyze)


def _run_analyze(args):
    """Report every protocol of the folder; return the status."""
    try:
        folders = protocol_folders(args.folder)
        if args.max_utterances < 2 or args.batch_size < 1:
            raise ValueError(
                "--max-utterances must be at least 2 and --batch-size at "
                "least 1"
            )
        for folder in folders:
            if not _report(
                folder,
                args.run,
                max_per_corpus=args.max_utterances,
                batch_size=args.batch_size,
                device=args.device,
            ):
                return 1
    except (ValueError, FileNotFoundError, PreparationError) as error:
        print(f"sercl analyze: error: {error}", file=sys.stderr)
        return 1
    return 0


def protocol_folders(folder):
    """The protocol folders of an experiment folder, or the folder itself
    if it is one (holds ``fold_<i>`` folders).

    Arguments
    ---------
    folder : str
        An experiment or protocol folder.

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        Naming the folder when it holds no run.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> (root / "paper" / "fold_0").mkdir(parents=True)
    >>> [os.path.basename(p) for p in protocol_folders(root)]
    ['paper']
    >>> protocol_folders(root / "paper") == [str(root / "paper")]
    True
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} is not a folder")
    if _holds_runs(folder):
        return [folder]
    found = [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if _holds_runs(os.path.join(folder, name))
    ]
    if not found:
        raise FileNotFoundError(
            f"{folder} holds no run (no <protocol>/fold_<i> folder): give an "
            "experiment folder or a protocol folder of `sercl folds`"
        )
    return found


def _holds_runs(folder):
    return os.path.isdir(folder) and any(
        run_of_folder(name) is not None for name in os.listdir(folder)
    )


def main(argv=None):
    """Run the ``sercl`` command line.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    own, overrides = _set_aside_overrides(parser, argv)
    args, extra = parser.parse_known_args(own)
    if (extra or overrides) and not getattr(args, "extra_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra + overrides)}")
    args.arguments = extra + overrides
    return args.func(args) or 0


def _set_aside_overrides(parser, argv):
    """Keep ``--key=value`` items that are no option of ours from argparse.

    argparse would take such an item for the value of a preceding
    ``nargs="+"`` option when it holds a space (``--runs 0
    --data_folder=/my data``). Our options are those of the parser and of
    the subcommand named in ``argv`` (every subcommand's when none is):
    another subcommand's ``--model`` is an override for ``folds``.
    """
    own = {name for option in parser._actions for name in option.option_strings}
    for action in _subparsers(parser):
        named = [item for item in argv if item in action.choices]
        for command in named[:1] or action.choices:
            own.update(
                name
                for option in action.choices[command]._actions
                for name in option.option_strings
            )
    kept, set_aside = [], []
    for item in argv:
        name, has_value, _ = item.partition("=")
        is_override = item.startswith("--") and has_value and name not in own
        (set_aside if is_override else kept).append(item)
    return kept, set_aside


def _subparsers(parser):
    return [
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]


if __name__ == "__main__":
    sys.exit(main())
