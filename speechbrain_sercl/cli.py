"""The ``sercl`` command line.

Each subcommand is a small function that parses its own options and calls
the package; ``main`` only dispatches. Run ``sercl --help`` for the list.

Example
-------
>>> build_parser().prog
'sercl'
"""

import argparse
import sys

from speechbrain_sercl import __version__


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
    return parser


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
