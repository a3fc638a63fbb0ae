"""ESD reader: manifest from the Emotional Speech Dataset's speaker folders.

ESD (20 speakers, 350 parallel utterances per speaker and emotion, 16 kHz)
is released as one folder per speaker, one folder per emotion in it, and
the official train / evaluation / test split below that::

    <data_folder>/0011/Angry/train/0011_000351.wav
    <data_folder>/0011/Angry/evaluation/0011_000351.wav  (another number)
    <data_folder>/0011/0011.txt                           (transcripts)

Speakers 0001 to 0010 speak Mandarin, 0011 to 0020 English. Copies
without the split folders (``<speaker>/<Emotion>/<speaker>_<n>.wav``) and
an outer ``Emotion Speech Dataset/`` folder are read too. The split
folders are not used (the protocols make their own folds); the
transcripts are not read (labels come from the emotion folders). The five
emotion folders map to canonical names and all are kept: Angry angry,
Happy happy, Neutral neutral, Sad sad, Surprise surprise (any case and the
spellings of ``COMMON_ALIASES``). ``language="english"`` or
``"mandarin"`` keeps the speakers of one language (the others are
counted as dropped). A file in an unknown emotion folder, a name that is
not ``<speaker>_<number>.wav`` of its speaker folder, a speaker outside
0001-0020 and a second file with the same id are skipped with the reason.
The ``speaker`` protocol holds out one of five groups of four speakers
(:mod:`~speechbrain_sercl.data.speaker_groups`).

Example
-------
>>> esd_language("0003"), esd_language("0011")
('mandarin', 'english')
"""

import os
import re

from speechbrain_sercl.data.manifest import (
    COMMON_ALIASES,
    CorpusScan,
    PreparationError,
    Utterance,
    canonical_emotion,
    find_release_root,
    folder_entries,
    prepare_once,
    wav_files,
)
from speechbrain_sercl.data.speaker_groups import group_sessions

__all__ = [
    "ESD_EMOTIONS",
    "ESD_LANGUAGES",
    "esd_language",
    "scan_esd",
    "prepare_esd",
]

ESD_EMOTIONS = ("angry", "happy", "neutral", "sad", "surprise")
ESD_LANGUAGES = ("mandarin", "english")
SPLIT_FOLDERS = ("train", "evaluation", "test")
OUTER_FOLDER = "Emotion Speech Dataset"
LAST_MANDARIN_SPEAKER = 10
SPEAKERS = range(1, 21)

_SPEAKER_FOLDER = re.compile(r"^\d{4}$")


def esd_language(speaker):
    """The language of an ESD speaker.

    Arguments
    ---------
    speaker : str
        A four-digit speaker id, ``0001`` to ``0020``.

    Returns
    -------
    str
        ``"mandarin"`` (0001-0010) or ``"english"`` (0011-0020).

    Raises
    ------
    ValueError
        For a speaker outside 0001-0020.

    Example
    -------
    >>> esd_language("0021")
    Traceback (most recent call last):
    ...
    ValueError: speaker 0021 is not an ESD speaker (0001 to 0020)
    """
    if int(speaker) not in SPEAKERS:
        raise ValueError(
            f"speaker {speaker} is not an ESD speaker (0001 to 0020)"
        )
    return ESD_LANGUAGES[int(speaker) > LAST_MANDARIN_SPEAKER]


def _emotion_files(scan, emotion_dir):
    """The wavs of an emotion folder, in its split folders or directly."""
    files = []
    for path in folder_entries(emotion_dir, scan):
        name = os.path.basename(path)
        if os.path.isdir(path) and name in SPLIT_FOLDERS:
            files += wav_files(path, scan)
        elif path.endswith(".wav") and os.path.isfile(path):
            files.append(path)
        else:
            scan.ignored.append(path)
    return files


def _add_emotion_folder(scan, speaker, emotion_dir, seen):
    """Add the utterances of one ``<speaker>/<Emotion>`` folder."""
    folder_name = os.path.basename(emotion_dir)
    try:
        emotion = canonical_emotion(folder_name, COMMON_ALIASES)
    except ValueError:
        emotion = None
    for path in _emotion_files(scan, emotion_dir):
        stem = os.path.splitext(os.path.basename(path))[0]
        utt_id = f"esd_{stem}"
        if emotion not in ESD_EMOTIONS:
            scan.skip(path, f"unknown ESD emotion folder {folder_name!r}")
        elif not re.fullmatch(rf"{speaker}_\d+", stem):
            scan.skip(
                path, f"not a <speaker>_<number>.wav of speaker {speaker}"
            )
        elif utt_id in seen:
            scan.skip(path, f"duplicate utterance id {utt_id} ({seen[utt_id]})")
        else:
            seen[utt_id] = path
            scan.utterances.append(
                Utterance(utt_id, path, emotion, speaker, speaker)
            )
    if emotion in ESD_EMOTIONS and folder_name != emotion:
        scan.mapped_aliases[folder_name] = emotion


def _read_speaker(scan, speaker_dir, language, seen):
    """Add a speaker's utterances; those of an unknown speaker are skipped
    and those of the other language counted as dropped."""
    speaker = os.path.basename(speaker_dir)
    try:
        spoken, problem = esd_language(speaker), None
    except ValueError as error:
        spoken, problem = None, str(error)
    for emotion_dir in folder_entries(speaker_dir, scan):
        if not os.path.isdir(emotion_dir):
            scan.ignored.append(emotion_dir)  # e.g. the transcripts
        elif problem is not None:
            for path in _emotion_files(scan, emotion_dir):
                scan.skip(path, problem)
        elif language not in (None, spoken):
            for _ in _emotion_files(scan, emotion_dir):
                scan.drop(spoken)
        else:
            _add_emotion_folder(scan, speaker, emotion_dir, seen)


def scan_esd(root, language=None):
    """List the labelled utterances of an ESD release folder.

    Arguments
    ---------
    root : str
        The folder holding the speaker folders.
    language : str, optional
        ``"english"`` or ``"mandarin"``: only that language's speakers.

    Returns
    -------
    CorpusScan
        Kept utterances (session: the speaker group), skipped files with
        reasons, dropped utterances of the other language, mapped emotion
        folder names, ignored files (transcripts among them).

    Raises
    ------
    PreparationError
        When no ``<speaker>/<Emotion>`` wav of a kept speaker is found.

    Example
    -------
    >>> scan_esd(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not an ESD ...
    """
    if language not in (None, *ESD_LANGUAGES):
        raise ValueError(
            f"ESD language must be one of {ESD_LANGUAGES} or None, got "
            f"{language!r}"
        )
    scan = CorpusScan()
    seen = {}
    for speaker_dir in folder_entries(root, scan):
        speaker = os.path.basename(speaker_dir)
        if not (os.path.isdir(speaker_dir) and _SPEAKER_FOLDER.match(speaker)):
            scan.ignored.append(speaker_dir)
            continue
        _read_speaker(scan, speaker_dir, language, seen)
    if not scan.utterances:
        raise PreparationError(
            f"ESD data_folder {root} is not an ESD release: no "
            "<speaker>/<Emotion>/[train|evaluation|test/]<speaker>_<n>.wav "
            f"file of {language or 'any'} speakers in it or in its "
            f"{OUTER_FOLDER}/ folder"
        )
    scan.utterances = group_sessions(scan.utterances)
    return scan


def prepare_esd(
    data_folder,
    save_folder,
    language=None,
    corpus_name="esd",
    validate_audio=True,
):
    """Write the ESD manifest (five classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The folder of the speaker folders, or the one holding
        ``Emotion Speech Dataset/``.
    save_folder : str or os.PathLike
        Where ``manifest.json``, its options and the report go.
    language : str, optional
        ``"english"`` or ``"mandarin"``: keep one language's speakers
        (default: both).
    corpus_name : str
        The ``corpus`` field of every manifest entry.
    validate_audio : bool
        Read every file to reject corrupt, empty or silent audio (True), or
        only read the headers for the durations (False).

    Returns
    -------
    PreparationReport
        Counts per emotion and speaker, hours, skipped files with reasons,
        utterances dropped by ``language``.

    Example
    -------
    >>> prepare_esd(getfixture("tmp_path") / "absent", "out")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ESD data_folder ... does not exist ...
    """
    root = find_release_root(
        data_folder, "ESD", (OUTER_FOLDER,), _SPEAKER_FOLDER.match
    )
    options = {
        "reader": "esd",
        "data_folder": root,
        "language": language,
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(options, save_folder, lambda: scan_esd(root, language))
