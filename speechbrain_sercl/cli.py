"""The ``sercl`` command line.

Each subcommand is a small function that parses its own options and calls
the package; ``main`` only dispatches. Run ``sercl --help`` for the list.

Example
-------
>>> build_parser().prog
'sercl'
"""

import argparse
import inspect
import sys

from speechbrain_sercl import __version__
from speechbrain_sercl.data import PREPARERS, prepare_corpus
from speechbrain_sercl.data.manifest import PreparationError


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
    parser.add_argument("corpus", choices=sorted(PREPARERS))
    parser.add_argument("data_folder", help="the corpus release folder")
    parser.add_argument("save_folder", help="where the manifest goes")
    parser.add_argument(
        "--improvised-only",
        action="store_true",
        help="IEMOCAP: keep only the improvised dialogs",
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
    return options


def _run_prepare(args):
    """Prepare one corpus and print its summary; return the exit status."""
    options = _prepare_options(args)
    accepted = inspect.signature(PREPARERS[args.corpus]).parameters
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
    except (FileNotFoundError, PreparationError) as error:
        print(f"sercl prepare: error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


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
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
