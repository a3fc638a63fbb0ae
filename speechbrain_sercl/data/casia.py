"""CASIA reader: manifest from the ``<speaker>/<emotion>/<NNN>.wav`` layout.

The public part of the CASIA Chinese emotional speech corpus holds four
speakers (``liuchanhg``, ``wangzhe``, ``zhaoquanyin``, ``ZhaoZuoxiang``) and
six emotions (angry, fear, happy, neutral, sad, surprise), 50 sentences
each::

    <data_folder>/<speaker>/<emotion>/<NNN>.wav

Any speaker folder is accepted. Emotion folders may use other spellings
(``anger``, ``Fearful``, ``happiness``, ``sadness``, ``surprised``,
``neutrality``...: any case, see ``COMMON_ALIASES``); the report lists
which were mapped. Files in a folder that names no CASIA emotion are skipped
and listed. The utterance id is ``casia_<speaker>_<emotion>_<NNN>`` with
the canonical emotion name; CASIA has no sessions, so the session of an
utterance is its speaker (leave-one-speaker-out folds).

Adding a corpus works like this module: one ``data/<corpus>.py`` whose
``prepare_<corpus>`` lists the labelled utterances in a
:class:`~speechbrain_sercl.data.manifest.CorpusScan` and calls
:func:`~speechbrain_sercl.data.manifest.prepare_once`, plus one
registry entry in ``speechbrain_sercl.data.corpora``.

Example
-------
>>> casia_emotion("Happiness"), casia_emotion("bored")
('happy', None)
"""

import os

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

__all__ = [
    "CASIA_EMOTIONS",
    "casia_emotion",
    "find_casia_root",
    "scan_casia",
    "prepare_casia",
]

CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def casia_emotion(folder_name):
    """Canonical emotion of a CASIA emotion folder, or None if unknown.

    Arguments
    ---------
    folder_name : str
        The folder name, in any case and any spelling of ``COMMON_ALIASES``.

    Returns
    -------
    str or None
        One of ``CASIA_EMOTIONS``, or None.

    Example
    -------
    >>> casia_emotion("ANGER"), casia_emotion("disgust")
    ('angry', None)
    """
    try:
        emotion = canonical_emotion(folder_name, COMMON_ALIASES)
    except ValueError:
        return None
    return emotion if emotion in CASIA_EMOTIONS else None


def find_casia_root(data_folder):
    """Check that ``data_folder`` exists and return its absolute path.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The folder holding one folder per speaker.

    Returns
    -------
    str
        The absolute path.

    Raises
    ------
    FileNotFoundError
        When ``data_folder`` does not exist or is not a folder.

    Example
    -------
    >>> find_casia_root(getfixture("tmp_path") / "absent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: CASIA data_folder ... does not exist ...
    """
    return find_release_root(data_folder, "CASIA")


def _scan_emotion_folder(scan, speaker, emotion_dir, seen):
    """Add the utterances of one ``<speaker>/<emotion>`` folder to ``scan``."""
    folder_name = os.path.basename(emotion_dir)
    emotion = casia_emotion(folder_name)
    for path in wav_files(emotion_dir, scan):
        if emotion is None:
            scan.skip(path, f"unknown CASIA emotion folder {folder_name!r}")
            continue
        number = os.path.splitext(os.path.basename(path))[0]
        utt_id = f"casia_{speaker}_{emotion}_{number}"
        if utt_id in seen:
            scan.skip(path, f"duplicate utterance id {utt_id} ({seen[utt_id]})")
            continue
        seen[utt_id] = path
        scan.utterances.append(
            Utterance(utt_id, path, emotion, speaker, speaker)
        )
    if emotion is not None and folder_name != emotion:
        scan.mapped_aliases[folder_name] = emotion


def scan_casia(root):
    """List the labelled utterances of a CASIA corpus folder.

    Arguments
    ---------
    root : str
        The folder holding one folder per speaker.

    Returns
    -------
    CorpusScan
        Kept utterances, skipped files (unknown emotion folder, duplicate
        id), mapped folder names and ignored files.

    Raises
    ------
    PreparationError
        When no ``<speaker>/<emotion>/*.wav`` file with a CASIA emotion is
        found (an empty or wrong folder).

    Example
    -------
    >>> scan_casia(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not a CASIA ...
    """
    scan = CorpusScan()
    seen = {}
    for speaker_dir in folder_entries(root, scan):
        if not os.path.isdir(speaker_dir):
            scan.ignored.append(speaker_dir)
            continue
        speaker = os.path.basename(speaker_dir)
        for emotion_dir in folder_entries(speaker_dir, scan):
            if os.path.isdir(emotion_dir):
                _scan_emotion_folder(scan, speaker, emotion_dir, seen)
            else:
                scan.ignored.append(emotion_dir)
    if not scan.utterances:
        raise PreparationError(
            f"CASIA data_folder {root} is not a CASIA corpus: no "
            f"<speaker>/<emotion>/*.wav file with an emotion among "
            f"{', '.join(CASIA_EMOTIONS)}"
        )
    return scan


def prepare_casia(
    data_folder, save_folder, corpus_name="casia", validate_audio=True
):
    """Write the CASIA manifest (six classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options. Fatal problems (missing
    or wrong folder) raise before anything is written.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The folder holding one folder per speaker.
    save_folder : str or os.PathLike
        Where ``manifest.json``, its options and the report go.
    corpus_name : str
        The ``corpus`` field of every manifest entry.
    validate_audio : bool
        Read every file to reject corrupt, empty or silent audio (True), or
        only read the headers for the durations (False).

    Returns
    -------
    PreparationReport
        Counts per emotion and speaker, hours, skipped files with reasons,
        mapped folder names.

    Example
    -------
    >>> prepare_casia(getfixture("tmp_path"), "out")
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not a CASIA ...
    """
    root = find_casia_root(data_folder)
    options = {
        "reader": "casia",
        "data_folder": root,
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(options, save_folder, lambda: scan_casia(root))
