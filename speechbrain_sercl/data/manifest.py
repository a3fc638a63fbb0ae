"""Canonical emotions, manifests and the preparation steps shared by corpora.

A corpus reader (``iemocap.py``, ``casia.py``, ...) only lists what its
release holds: it returns a :class:`CorpusScan` of labelled utterances and of
what it left out. :func:`prepare_manifest` does the rest the same way for
every corpus: it skips the work when ``save_folder`` already holds a
manifest prepared with the same options (as SpeechBrain's recipe
``*_prepare.py`` scripts do) from unchanged release files
(:mod:`speechbrain_sercl.data.release`), checks every audio file, and
writes the
manifest, the options and a :class:`PreparationReport` atomically.

Files written in ``save_folder``:

- ``manifest.json``: SpeechBrain's JSON format, ``{utt_id: {"wav": absolute
  path, "duration": seconds, "emotion": canonical name, "corpus": name,
  "speaker": str, "session": str, "checksum": the audio file's
  (:func:`~speechbrain_sercl.data.release.file_checksum`)}}``;
- ``prepare_options.json``: the options the manifest was prepared with,
  and the fingerprint of the release files it was prepared from;
- ``prepare_report.json``: the :class:`PreparationReport` as JSON.

Example
-------
>>> canonical_emotion("Happiness", {"happiness": "happy"})
'happy'
"""

import json
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace

from tqdm import tqdm

from speechbrain_sercl.atomic import writing_atomically
from speechbrain_sercl.data.audio import (
    TARGET_SAMPLE_RATE,
    AudioError,
    audio_format,
    reading_conversions,
    truncation_warning,
    validate_audio,
)
from speechbrain_sercl.data.release import (
    file_checksum,
    release_change,
    release_fingerprint,
)

__all__ = [
    "CANONICAL_EMOTIONS",
    "COMMON_ALIASES",
    "MANIFEST_FILE",
    "OPTIONS_FILE",
    "REPORT_FILE",
    "IGNORED_NAMES",
    "PreparationError",
    "Utterance",
    "CorpusScan",
    "PreparationReport",
    "canonical_emotion",
    "is_ignored_file",
    "is_utf8",
    "printable_path",
    "folder_entries",
    "wav_files",
    "find_release_root",
    "add_named_files",
    "prepare_once",
    "load_manifest",
    "load_prepared_report",
    "prepare_manifest",
    "prepared_release",
]

logger = logging.getLogger(__name__)

CANONICAL_EMOTIONS = (
    "neutral",
    "happy",
    "sad",
    "angry",
    "fear",
    "surprise",
    "disgust",
    "calm",
    "boredom",
    "frustrated",
    "excited",
    "contempt",
    "other",
)

# Spellings that corpora use for canonical emotions (keys in lower case).
COMMON_ALIASES = {
    "neutrality": "neutral",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "anger": "angry",
    "fearful": "fear",
    "afraid": "fear",
    "surprised": "surprise",
    "disgusted": "disgust",
}

MANIFEST_FILE = "manifest.json"
OPTIONS_FILE = "prepare_options.json"
REPORT_FILE = "prepare_report.json"
# macOS writes these beside real files (and zip archives keep them in
# __MACOSX); readers ignore them silently.
IGNORED_NAMES = (".DS_Store", "__MACOSX")
IGNORED_PREFIX = "._"
# Why a name that is not valid UTF-8 is skipped (manifests are UTF-8 JSON).
NOT_UTF8 = "name not valid UTF-8 (bytes shown as \\xNN); rename it to read it"
NOT_UTF8_FOLDER = (
    "folder name not valid UTF-8 (bytes shown as \\xNN): nothing in it is "
    "read; rename it to read it"
)


class PreparationError(ValueError):
    """A corpus folder that cannot be prepared (wrong folder, no data).

    Example
    -------
    >>> raise PreparationError("/data: not an IEMOCAP release")
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: /data: not an ...
    """


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance found in a corpus, before its audio is checked.

    Arguments
    ---------
    utt_id : str
        Unique utterance id (the manifest key).
    wav : str
        Absolute path of the sound file.
    emotion : str
        Canonical emotion name.
    speaker : str
        Speaker id.
    session : str
        Recording session (the unit of speaker-independent folds).

    Example
    -------
    >>> Utterance("u1", "/a/u1.wav", "sad", "spk1", "spk1").emotion
    'sad'
    """

    utt_id: str
    wav: str
    emotion: str
    speaker: str
    session: str


@dataclass
class CorpusScan:
    """What a corpus reader found: utterances and what it left out.

    Arguments
    ---------
    utterances : list of Utterance
        The labelled utterances to keep.
    skipped : list of [str, str]
        ``[path, reason]`` for each file left out because of a problem.
    dropped_labels : dict
        Count of utterances per label that the corpus recipe drops.
    mapped_aliases : dict
        ``{label as found: canonical name}`` for each label that was renamed.
    ignored : list of str
        Files ignored silently (macOS ``._*`` and ``.DS_Store``).
    missing : list of str
        Expected parts of the corpus that are absent (e.g. ``"Session3"``).
    warnings : list of str
        Messages about recoverable oddities, each naming the file.
    conversions : dict
        ``{conversion: number of files}`` for the normal conversions done
        on reading (``"resampled from 22050 Hz"``, ``"mixed down from 2
        channels"``); counted, not warned about.

    Example
    -------
    >>> scan = CorpusScan()
    >>> scan.skip("/a/x.wav", "no label")
    >>> scan.skipped
    [['/a/x.wav', 'no label']]
    >>> scan.count_conversion("resampled from 22050 Hz")
    >>> scan.conversions
    {'resampled from 22050 Hz': 1}
    """

    utterances: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    dropped_labels: dict = field(default_factory=dict)
    mapped_aliases: dict = field(default_factory=dict)
    ignored: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    conversions: dict = field(default_factory=dict)

    def skip(self, path, reason):
        """Record (and log) that ``path`` was left out because of ``reason``."""
        logger.warning("Skipping %s: %s", path, reason)
        self.skipped.append([str(path), reason])

    def warn(self, message):
        """Record a recoverable oddity (logged once per corpus, in total)."""
        logger.debug(message)
        self.warnings.append(message)

    def count_conversion(self, conversion):
        """Count one file that gets ``conversion`` on reading (not logged)."""
        self.conversions[conversion] = self.conversions.get(conversion, 0) + 1

    def drop(self, label):
        """Count one utterance with a ``label`` that the recipe drops."""
        self.dropped_labels[label] = self.dropped_labels.get(label, 0) + 1


@dataclass
class PreparationReport:
    """The outcome of preparing one corpus.

    Arguments
    ---------
    corpus : str
        The corpus name written in the manifest.
    manifest_path : str
        Where the manifest is.
    emotion_speaker_counts : dict
        ``{emotion: {speaker: utterances}}``.
    hours : float
        Total duration of the manifest in hours.
    skipped : list of [str, str]
        ``[path, reason]`` for each file left out because of a problem.
    dropped_labels : dict
        Count of utterances per dropped label.
    mapped_aliases : dict
        ``{label as found: canonical name}``.
    ignored : list of str
        Files ignored silently.
    missing : list of str
        Expected parts of the corpus that are absent.
    warnings : list of str
        Recoverable oddities.
    conversions : dict
        ``{conversion: number of files}`` for the normal conversions done
        on reading (resampling, mixing down), e.g. ``{"resampled from 22050
        Hz": 144}``; not warnings.
    reused : bool
        True when an existing manifest with the same options was kept.

    Example
    -------
    >>> report = PreparationReport("c", "/m.json", {"sad": {"s1": 2}})
    >>> report.num_utterances, report.emotion_counts
    (2, {'sad': 2})
    """

    corpus: str
    manifest_path: str
    emotion_speaker_counts: dict
    hours: float = 0.0
    skipped: list = field(default_factory=list)
    dropped_labels: dict = field(default_factory=dict)
    mapped_aliases: dict = field(default_factory=dict)
    ignored: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    conversions: dict = field(default_factory=dict)
    reused: bool = False

    @property
    def emotion_counts(self):
        """Utterances per emotion."""
        return {
            emotion: sum(by_speaker.values())
            for emotion, by_speaker in self.emotion_speaker_counts.items()
        }

    @property
    def speaker_counts(self):
        """Utterances per speaker, speakers sorted."""
        speakers = Counter()
        for by_speaker in self.emotion_speaker_counts.values():
            speakers.update(by_speaker)
        return dict(sorted(speakers.items()))

    @property
    def num_utterances(self):
        """Number of utterances in the manifest."""
        return sum(self.emotion_counts.values())

    def summary(self, max_listed=10):
        """A printable summary: the emotion x speaker table and the issues.

        Arguments
        ---------
        max_listed : int
            List at most this many skipped files and warnings each (all are
            kept in the report file).

        Returns
        -------
        str
            Several lines of text.

        Example
        -------
        >>> report = PreparationReport("c", "/m.json", {"sad": {"s1": 2}})
        >>> print(report.summary())  # doctest: +NORMALIZE_WHITESPACE
        c: 2 utterances, 0.00 hours (0 s), manifest /m.json
        <BLANKLINE>
        emotion  s1  total
        sad       2      2
        total     2      2
        >>> report.conversions = {"resampled from 22050 Hz": 2}
        >>> print(report.summary().splitlines()[-2:])
        ['converted on reading to mono 16000 Hz (normal, not a problem):',
         '  resampled from 22050 Hz: 2 files']
        """
        lines = [
            f"{self.corpus}: {self.num_utterances} utterances, "
            f"{self.hours:.2f} hours ({3600 * self.hours:.0f} s), "
            f"manifest {self.manifest_path}"
        ]
        if self.reused:
            lines.append("(kept: already prepared with the same options)")
        lines += ["", *self._table_lines(), ""]
        lines += _listing("skipped files", self.skipped, max_listed)
        lines += _pairs("dropped labels", self.dropped_labels, " ")
        lines += _pairs("mapped aliases", self.mapped_aliases, " -> ")
        if self.missing:
            lines.append(f"missing: {', '.join(self.missing)}")
        if self.ignored:
            lines.append(
                f"ignored files: {len(self.ignored)} (macOS metadata, "
                "non-wav files)"
            )
        lines += _conversion_lines(self.conversions)
        lines += _listing("warnings", self.warnings, max_listed)
        return "\n".join(lines).rstrip("\n")

    def _table_lines(self):
        """The emotion x speaker count table, with totals."""
        speakers = list(self.speaker_counts)
        header = ["emotion", *speakers, "total"]
        rows = [
            [emotion, *(by_speaker.get(s, 0) for s in speakers), total]
            for (emotion, by_speaker), total in zip(
                self.emotion_speaker_counts.items(),
                self.emotion_counts.values(),
                strict=True,
            )
        ]
        rows.append(
            ["total", *self.speaker_counts.values(), self.num_utterances]
        )
        widths = [
            max(len(str(row[column])) for row in [header, *rows])
            for column in range(len(header))
        ]
        return [
            "  ".join(
                str(cell).ljust(width)
                if column == 0
                else str(cell).rjust(width)
                for column, (cell, width) in enumerate(
                    zip(row, widths, strict=True)
                )
            ).rstrip()
            for row in [header, *rows]
        ]


def _listing(title, items, max_listed):
    """Lines listing ``items`` (at most ``max_listed``) under a title."""
    if not items:
        return []
    lines = [f"{title}: {len(items)}"]
    for item in items[:max_listed]:
        text = ": ".join(item) if isinstance(item, list) else item
        lines.append(f"  {text}")
    if len(items) > max_listed:
        lines.append(
            f"  ... and {len(items) - max_listed} more (see {REPORT_FILE})"
        )
    return lines


def _conversion_lines(conversions):
    """One line per normal conversion on reading, with its file count."""
    if not conversions:
        return []
    lines = [
        f"converted on reading to mono {TARGET_SAMPLE_RATE} Hz (normal, "
        "not a problem):"
    ]
    for conversion, count in conversions.items():
        lines.append(f"  {conversion}: {count} file{'' if count == 1 else 's'}")
    return lines


def _natural_key(text):
    """Sort key that orders the numbers inside ``text`` by value."""
    return [
        int(part) if part.isdigit() else part
        for part in re.split(r"(\d+)", text)
    ]


def _pairs(title, mapping, separator):
    """One line ``title: key<separator>value, ...``, or none if empty."""
    if not mapping:
        return []
    pairs = ", ".join(
        f"{key}{separator}{value}" for key, value in mapping.items()
    )
    return [f"{title}: {pairs}"]


def canonical_emotion(label, aliases=None):
    """Map a corpus label to its canonical emotion name.

    Matching ignores case and surrounding spaces; ``aliases`` is consulted
    first, then the label itself must be one of ``CANONICAL_EMOTIONS``.

    Arguments
    ---------
    label : str
        The label as the corpus writes it.
    aliases : dict, optional
        ``{alias: canonical name}``, keys in any case.

    Returns
    -------
    str
        A member of ``CANONICAL_EMOTIONS``.

    Raises
    ------
    ValueError
        When the label is unknown or an alias maps to a non-canonical name.

    Example
    -------
    >>> canonical_emotion(" Angry ")
    'angry'
    >>> canonical_emotion("exc", {"exc": "happy"})
    'happy'
    >>> canonical_emotion("bored")
    Traceback (most recent call last):
    ...
    ValueError: unknown emotion label 'bored'; ...
    """
    key = label.strip().lower()
    lowered = {alias.lower(): name for alias, name in (aliases or {}).items()}
    name = lowered.get(key, key)
    if name not in CANONICAL_EMOTIONS:
        raise ValueError(
            f"unknown emotion label {label!r}; expected one of "
            f"{', '.join(CANONICAL_EMOTIONS)} or an alias of one"
        )
    return name


def is_ignored_file(name):
    """Whether a file name is macOS metadata that readers skip silently.

    Arguments
    ---------
    name : str
        A file name (no folder).

    Returns
    -------
    bool
        True for ``.DS_Store``, ``__MACOSX`` and AppleDouble ``._*`` files.

    Example
    -------
    >>> is_ignored_file("._001.wav"), is_ignored_file("001.wav")
    (True, False)
    """
    return name in IGNORED_NAMES or name.startswith(IGNORED_PREFIX)


def printable_path(path):
    """A path as text that can be printed and written in UTF-8.

    A name that is not valid UTF-8 reaches Python with its undecodable
    bytes as lone surrogates, which neither a UTF-8 console nor a JSON
    file takes; here they are shown as ``\\xNN``.

    Arguments
    ---------
    path : str or os.PathLike
        A path as ``os.listdir`` gives it.

    Returns
    -------
    str
        The path, undecodable bytes escaped.

    Example
    -------
    >>> printable_path(os.fsdecode(b"/data/caf\\xe9.wav"))
    '/data/caf\\\\xe9.wav'
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(name):
    """Whether a name from the file system is valid UTF-8 text.

    Arguments
    ---------
    name : str
        A file or folder name (``os.listdir`` gives undecodable bytes as
        lone surrogates).

    Returns
    -------
    bool

    Example
    -------
    >>> is_utf8("café.wav"), is_utf8(os.fsdecode(b"caf\\xe9.wav"))
    (True, False)
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def folder_entries(folder, scan):
    """Paths in ``folder``, sorted; macOS metadata is recorded as ignored.

    A name that is not valid UTF-8 is skipped, with the reason (a manifest
    is UTF-8 JSON): a file, or a folder and all it holds.

    Arguments
    ---------
    folder : str
        The folder to list.
    scan : CorpusScan
        Where ignored and skipped names are recorded.

    Returns
    -------
    list of str
        The other paths, sorted by name.

    Example
    -------
    >>> tmp_path = getfixture("tmp_path")
    >>> for name in ("b.wav", "._b.wav", "a", b"c\\xff.wav"):
    ...     open(os.path.join(bytes(tmp_path), os.fsencode(name)), "w").close()
    >>> scan = CorpusScan()
    >>> [os.path.basename(p) for p in folder_entries(str(tmp_path), scan)]
    ['a', 'b.wav']
    >>> [os.path.basename(p) for p in scan.ignored]
    ['._b.wav']
    >>> [os.path.basename(p) for p, _ in scan.skipped]
    ['c\\\\xff.wav']
    """
    paths = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not is_utf8(name):
            reason = NOT_UTF8_FOLDER if os.path.isdir(path) else NOT_UTF8
            scan.skip(printable_path(path), reason)
        elif is_ignored_file(name):
            scan.ignored.append(path)
        else:
            paths.append(path)
    return paths


def wav_files(folder, scan):
    """The ``.wav`` files of ``folder``; anything else is recorded as ignored.

    Arguments
    ---------
    folder : str
        The folder to list.
    scan : CorpusScan
        Where ignored names are recorded.

    Returns
    -------
    list of str
        The wav files, sorted by name.

    Example
    -------
    >>> tmp_path = getfixture("tmp_path")
    >>> for name in ("b.wav", "notes.txt"):
    ...     _ = (tmp_path / name).write_text("")
    >>> scan = CorpusScan()
    >>> [os.path.basename(p) for p in wav_files(str(tmp_path), scan)]
    ['b.wav']
    >>> [os.path.basename(p) for p in scan.ignored]
    ['notes.txt']
    """
    wavs = []
    for path in folder_entries(folder, scan):
        if path.endswith(".wav") and os.path.isfile(path):
            wavs.append(path)
        else:
            scan.ignored.append(path)
    return wavs


def find_release_root(data_folder, corpus, inner=(), is_release_entry=None):
    """The folder a reader scans: ``data_folder`` or a known folder in it.

    A ``data_folder`` that holds the release twice, in an ``inner`` folder
    and beside it (``Actor_01/`` next to ``Audio_Speech_Actors_01-24/``), is
    refused: reading one copy would drop the other without a word.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The folder the user gave.
    corpus : str
        The corpus name for the error message (``"EmoDB"``).
    inner : tuple of str
        Folders of the release that may sit inside ``data_folder`` (the
        first one present is used), e.g. ``("wav",)`` for EmoDB.
    is_release_entry : callable, optional
        ``is_release_entry(name) -> bool``: whether an entry of a folder
        is part of the release itself (``Actor_01``, ``03a01Fa.wav``);
        such entries beside an ``inner`` folder are a second copy.

    Returns
    -------
    str
        The absolute path.

    Raises
    ------
    FileNotFoundError
        When ``data_folder`` does not exist or is not a folder.
    PreparationError
        When ``data_folder`` holds the release both in an ``inner`` folder
        and beside it, or its path is not valid UTF-8.

    Example
    -------
    >>> tmp_path = getfixture("tmp_path")
    >>> (tmp_path / "wav").mkdir()
    >>> find_release_root(tmp_path, "EmoDB", ("wav",)).endswith("wav")
    True
    >>> find_release_root(tmp_path / "absent", "EmoDB")
    Traceback (most recent call last):
    ...
    FileNotFoundError: EmoDB data_folder ... does not exist ...
    >>> _ = (tmp_path / "03a01Fa.wav").write_bytes(b"")
    >>> is_wav = lambda name: name.endswith(".wav")
    >>> find_release_root(tmp_path, "EmoDB", ("wav",), is_wav)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: EmoDB data_folder ...
    """
    folder = os.path.abspath(data_folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{corpus} data_folder {folder} does not exist or is not a folder"
        )
    if not is_utf8(folder):
        raise PreparationError(
            f"{corpus} data_folder {printable_path(folder)}: the path is not "
            "valid UTF-8 (manifests are UTF-8 JSON); rename it"
        )
    for name in inner:
        if os.path.isdir(os.path.join(folder, name)):
            _refuse_second_copy(folder, name, corpus, is_release_entry)
            return os.path.join(folder, name)
    return folder


def _refuse_second_copy(folder, inner, corpus, is_release_entry):
    """Raise if ``folder`` holds release entries beside its ``inner``."""
    beside = sorted(
        printable_path(name)
        for name in os.listdir(folder)
        if is_release_entry is not None and is_release_entry(name)
    )
    if not beside:
        return
    shown = ", ".join(beside[:3])
    if len(beside) > 3:
        shown += f" and {len(beside) - 3} more"
    raise PreparationError(
        f"{corpus} data_folder {folder} holds the release twice, in {inner}/ "
        f"and beside it ({shown}): keep one copy (or give "
        f"{os.path.join(folder, inner)} as data_folder to read that one)"
    )


def add_named_files(scan, paths, parse_name, prefix):
    """Add the files whose names code their labels to ``scan``.

    For corpora whose file names hold the speaker and the emotion (EmoDB,
    CREMA-D). The utterance id is ``<prefix>_<name without .wav>``; the
    session is the speaker (see
    :func:`~speechbrain_sercl.data.speaker_groups.group_sessions`).

    Arguments
    ---------
    scan : CorpusScan
        Where utterances and skipped files go.
    paths : list of str
        The wav files.
    parse_name : callable
        ``parse_name(file name) -> (speaker, canonical emotion)``, raising
        ``ValueError`` with the reason for a name it does not accept (the
        file is then skipped with that reason).
    prefix : str
        The corpus prefix of the utterance ids.

    Example
    -------
    >>> def parse(name):
    ...     if not name.startswith("s"):
    ...         raise ValueError("no speaker")
    ...     return name[:2], "sad"
    >>> scan = CorpusScan()
    >>> add_named_files(scan, ["/c/s1_a.wav", "/c/x.wav"], parse, "c")
    >>> [u.utt_id for u in scan.utterances], scan.skipped
    (['c_s1_a'], [['/c/x.wav', 'no speaker']])
    """
    for path in paths:
        name = os.path.basename(path)
        try:
            speaker, emotion = parse_name(name)
        except ValueError as error:
            scan.skip(path, str(error))
            continue
        utt_id = f"{prefix}_{os.path.splitext(name)[0]}"
        scan.utterances.append(
            Utterance(utt_id, path, emotion, speaker, speaker)
        )


def prepare_once(options, save_folder, scan_corpus):
    """Scan a corpus and write its manifest, unless already prepared.

    The shared end of every reader's ``prepare_<corpus>``: when
    ``save_folder`` holds a manifest prepared with the same ``options``
    from the same release files (same names, sizes and modification times:
    :func:`~speechbrain_sercl.data.release.release_fingerprint`, saved with
    the options), its report is returned and no audio is read. A release
    with files added, removed or modified is prepared again, over the old
    manifest.

    Arguments
    ---------
    options : dict
        The preparation options; ``data_folder`` (the release folder),
        ``corpus_name`` and ``validate_audio`` among them.
    save_folder : str or os.PathLike
        Where the manifest, its options and the report go.
    scan_corpus : callable
        Takes no argument and returns the :class:`CorpusScan`.

    Returns
    -------
    PreparationReport
        The saved report, or the report of the new manifest.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> options = {"data_folder": folder, "corpus_name": "c",
    ...            "validate_audio": True}  # fmt: skip
    >>> prepare_once(options, folder / "prepared", CorpusScan)
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: c: no utterance ...
    """
    release = release_fingerprint(options["data_folder"], is_ignored_file)
    options = {**options, "release": release}
    report = load_prepared_report(save_folder, options)
    if report is not None:
        logger.info(
            "%s already prepared in %s; skipping",
            options["data_folder"],
            save_folder,
        )
        return report
    saved = _read_json_or_none(os.path.join(save_folder, OPTIONS_FILE))
    if isinstance(saved, dict) and "release" in saved:
        logger.warning(
            "%s changed since it was prepared in %s (%s): preparing it again",
            options["data_folder"],
            save_folder,
            release_change(saved["release"], release),
        )
    return prepare_manifest(
        scan_corpus(),
        options["corpus_name"],
        save_folder,
        options,
        options["validate_audio"],
    )


def _json_bytes(obj, path):
    """``obj`` as the UTF-8 JSON text of ``path``; an error names it."""
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PreparationError(
            f"{path}: not written: it would hold text that is not valid "
            f"UTF-8 ({error.object[error.start : error.end]!r})"
        ) from error


def _write_bytes(data, path):
    """Replace ``path`` by ``data`` in one step (``writing_atomically``)."""
    with writing_atomically(path) as tmp_path:
        with open(tmp_path, "wb") as tmp_file:
            tmp_file.write(data)


def load_manifest(path):
    """Read a manifest written by a preparer.

    Arguments
    ---------
    path : str or os.PathLike
        The manifest (``<save_folder>/manifest.json``).

    Returns
    -------
    dict
        ``{utt_id: {"wav", "duration", "emotion", "corpus", "speaker",
        "session"}}``.

    Example
    -------
    >>> path = getfixture("tmp_path") / "manifest.json"
    >>> _ = path.write_text(json.dumps({"u": {"emotion": "sad"}}))
    >>> load_manifest(path)["u"]["emotion"]
    'sad'
    """
    with open(path, encoding="utf-8") as manifest_file:
        return json.load(manifest_file)


def _read_json_or_none(path):
    """The JSON content of ``path``, or None if absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as json_file:
            return json.load(json_file)
    except (OSError, ValueError):
        return None


def load_prepared_report(save_folder, options):
    """The saved report if ``save_folder`` was prepared with ``options``.

    Arguments
    ---------
    save_folder : str or os.PathLike
        The preparation folder.
    options : dict
        The options of the preparation about to run.

    Returns
    -------
    PreparationReport or None
        The saved report (with ``reused=True``), or None when the manifest,
        the report or the options are missing or the options differ, or
        when the report was written by a version with other fields (then
        the corpus is prepared again).

    Example
    -------
    >>> load_prepared_report(getfixture("tmp_path"), {"a": 1}) is None
    True
    """
    saved_options = _read_json_or_none(os.path.join(save_folder, OPTIONS_FILE))
    saved_report = _read_json_or_none(os.path.join(save_folder, REPORT_FILE))
    manifest_path = os.path.join(os.path.abspath(save_folder), MANIFEST_FILE)
    if saved_options != options or not os.path.isfile(manifest_path):
        return None
    # No report, or one written by another version (e.g. before conversions
    # were counted, when each resampled file was a warning).
    keys = {report_field.name for report_field in fields(PreparationReport)}
    if not isinstance(saved_report, dict) or set(saved_report) != keys:
        return None
    report = PreparationReport(**saved_report)
    return replace(report, manifest_path=manifest_path, reused=True)


def prepared_release(save_folder):
    """The digest of the release files a prepared folder was made from.

    Arguments
    ---------
    save_folder : str or os.PathLike
        The preparation folder.

    Returns
    -------
    str or None
        The digest saved with the options by :func:`prepare_once`, or None
        (not prepared, or prepared by an older version).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> prepared_release(folder) is None
    True
    >>> options = json.dumps({"release": {"digest": "ab"}})
    >>> _ = (folder / OPTIONS_FILE).write_text(options)
    >>> prepared_release(folder)
    'ab'
    """
    saved = _read_json_or_none(os.path.join(save_folder, OPTIONS_FILE))
    release = saved.get("release") if isinstance(saved, dict) else None
    return release.get("digest") if isinstance(release, dict) else None


def prepare_manifest(scan, corpus, save_folder, options, validate=True):
    """Check the audio of a scanned corpus and write its manifest.

    Each utterance's file is validated with
    :func:`~speechbrain_sercl.data.audio.validate_audio` (or only its header
    read when ``validate`` is False); files with a fatal problem are skipped
    and recorded. Nothing is written when no utterance is left, so an
    existing manifest survives a failing run.

    Arguments
    ---------
    scan : CorpusScan
        What the corpus reader found.
    corpus : str
        The corpus name written in each manifest entry.
    save_folder : str or os.PathLike
        Where to write the manifest, options and report (created if absent).
    options : dict
        The preparation options, saved beside the manifest.
    validate : bool
        Read every sample of every file (True) or only the headers.

    Returns
    -------
    PreparationReport
        What was written.

    Raises
    ------
    PreparationError
        When no utterance has usable audio.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp_path = getfixture("tmp_path")
    >>> sf.write(tmp_path / "u1.wav", 0.1 * np.ones(1600), 16000)
    >>> scan = CorpusScan(
    ...     [Utterance("u1", str(tmp_path / "u1.wav"), "sad", "s1", "s1")]
    ... )
    >>> report = prepare_manifest(scan, "demo", tmp_path / "out", {})
    >>> load_manifest(report.manifest_path)["u1"]["duration"]
    0.1
    """
    manifest = _build_manifest(scan, corpus, validate)
    if not manifest:
        raise PreparationError(
            f"{corpus}: no utterance with usable audio was found "
            f"({len(scan.skipped)} files skipped); nothing written"
        )
    os.makedirs(save_folder, exist_ok=True)
    report = _make_report(scan, corpus, save_folder, manifest)
    options_path = os.path.join(save_folder, OPTIONS_FILE)
    contents = {  # the options last: they mark the preparation as done
        report.manifest_path: manifest,
        os.path.join(save_folder, REPORT_FILE): asdict(report),
        options_path: options,
    }
    # Every file is encoded before any is written, and the old options go
    # first: a failure or a kill on the way is never taken for a finished
    # preparation of these options.
    encoded = {path: _json_bytes(obj, path) for path, obj in contents.items()}
    if os.path.exists(options_path):
        os.unlink(options_path)
    for path, data in encoded.items():
        _write_bytes(data, path)
    return report


def _build_manifest(scan, corpus, validate):
    """Manifest entries for the utterances whose audio passes the checks."""
    manifest = {}
    progress = tqdm(
        scan.utterances,
        desc=f"Checking {corpus} audio",
        unit="file",
        disable=None,
    )
    for utterance in progress:
        try:
            duration = _checked_duration(utterance.wav, validate, scan)
        except AudioError as error:
            scan.skip(utterance.wav, _without_path(str(error), utterance.wav))
            continue
        manifest[utterance.utt_id] = {
            "wav": utterance.wav,
            "duration": duration,
            "emotion": utterance.emotion,
            "corpus": corpus,
            "speaker": utterance.speaker,
            "session": utterance.session,
            "checksum": file_checksum(utterance.wav, read=validate),
        }
    return manifest


def _without_path(message, path):
    """``message`` without its leading ``"<path>: "``."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _checked_duration(path, validate, scan):
    """Duration of ``path``; records its warnings and conversions in ``scan``.

    Conversions are counted only for files that pass the checks.
    """
    if validate:
        info, warnings = validate_audio(path)
    else:
        info = audio_format(path)
        if info.frames <= 0:
            raise AudioError(f"{path}: audio file has no samples (zero length)")
        truncated = truncation_warning(path, info.frames)
        warnings = [] if truncated is None else [truncated]
    for message in warnings:
        scan.warn(message)
    for conversion in reading_conversions(info):
        scan.count_conversion(conversion)
    return info.duration


def _make_report(scan, corpus, save_folder, manifest):
    """Summarise ``manifest`` and ``scan`` in a PreparationReport."""
    table = {}
    for entry in manifest.values():
        by_speaker = table.setdefault(entry["emotion"], {})
        by_speaker[entry["speaker"]] = by_speaker.get(entry["speaker"], 0) + 1
    ordered = {
        emotion: dict(sorted(table[emotion].items()))
        for emotion in CANONICAL_EMOTIONS
        if emotion in table
    }
    seconds = sum(entry["duration"] for entry in manifest.values())
    conversions = dict(
        sorted(scan.conversions.items(), key=lambda item: _natural_key(item[0]))
    )
    if conversions:
        logger.info(
            "%s: converted on reading: %s",
            corpus,
            ", ".join(f"{name} ({n})" for name, n in conversions.items()),
        )
    if scan.warnings:
        logger.warning(
            "%s: %d warnings, e.g. %s (all in %s)",
            corpus,
            len(scan.warnings),
            scan.warnings[0],
            os.path.join(save_folder, REPORT_FILE),
        )
    return PreparationReport(
        corpus=corpus,
        manifest_path=os.path.join(os.path.abspath(save_folder), MANIFEST_FILE),
        emotion_speaker_counts=ordered,
        hours=seconds / 3600,
        skipped=scan.skipped,
        dropped_labels=dict(sorted(scan.dropped_labels.items())),
        mapped_aliases=dict(sorted(scan.mapped_aliases.items())),
        ignored=scan.ignored,
        missing=scan.missing,
        warnings=scan.warnings,
        conversions=conversions,
    )
