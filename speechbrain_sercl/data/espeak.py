"""Emotional speech from espeak-ng: the second synthetic speech source.

The project's own synthesiser (:mod:`speechbrain_sercl.data.synthetic`)
speaks syllables on five vowels; a model pretrained on it and tested on it
can learn the generator rather than speech. This module speaks the same
corpora, in the same release layouts and read by the same real readers,
with `espeak-ng <https://github.com/espeak-ng/espeak-ng>`_: real phonetics
(its rules for more than a hundred languages) and many voice variants.

- The IEMOCAP-like corpus speaks short English sentences (``en-us``), the
  CASIA-like one Mandarin sentences written in pinyin with tones
  (``cmn-latn-pinyin``), the EmoDB-like one EmoDB's ten German texts.
- Each speaker is a voice variant of espeak-ng (``f1``, ``m3``,
  ``Andrea``...) with a pitch, rate, level and spectral tilt of their own.
- Each emotion has a prosody profile after Murray and Arnott's rules for
  emotional synthesis (1993): speaking rate, pitch level and range (SSML
  ``<prosody>``), and, after synthesis, level, spectral tilt (a treble
  shelf at 3 kHz), a 7 Hz amplitude tremor, aspiration noise that follows
  the speech envelope, and how often the sentence ends as an exclamation
  or a question (espeak-ng's intonation follows the punctuation).
  Every utterance draws its own variation around its profile.
- :func:`unlabelled_espeak_utterances` gives label-free speech for the
  pretraining of the tiny models: pseudo-words in 30 languages, spoken by
  voice variants that no corpus speaker uses, with random mixtures of the
  profiles.

espeak-ng is a system program, not a Python package: ``make setup``
installs it (Debian's package) where it is missing, and
:func:`espeak_executable` says how where it cannot.

Authors
 * speechbrain-sercl contributors 2026
"""

import functools
import io
import shutil
import subprocess
from xml.sax.saxutils import escape

import numpy as np
import soundfile
import torch
import torchaudio

from speechbrain_sercl.data.casia import prepare_casia
from speechbrain_sercl.data.emodb import prepare_emodb
from speechbrain_sercl.data.iemocap import prepare_iemocap
from speechbrain_sercl.data.synthetic import (
    UNLABELLED_SEED,
    Speech,
    prepare_generated,
    random_profile_mixture,
    write_emodb,
    write_iemocap_and_casia,
)

__all__ = [
    "ESPEAK_PROFILES",
    "ESPEAK_SPEECH",
    "espeak_executable",
    "espeak_say",
    "espeak_version",
    "generate_espeak_corpora",
    "generate_espeak_emodb",
    "make_espeak_voice",
    "prepare_espeak",
    "speak_emotionally",
    "unlabelled_espeak_utterances",
]

# Bump whenever the speech changes, so old stamps are not trusted.
ESPEAK_SPEECH_VERSION = 1
ESPEAK_SAMPLE_RATE = 22050  # what espeak-ng writes
INSTALL_HINT = (
    "`make setup` installs it as root (Debian's package espeak-ng); "
    "otherwise install it with the system's package manager "
    "(`sudo apt-get install espeak-ng`, `sudo dnf install espeak-ng`, "
    "`brew install espeak-ng`) and run again"
)

# rate: factor on espeak-ng's speaking rate; pitch: factor on the voice's
# pitch; pitch_range: SSML pitch range (%, 100 = the voice's own);
# level_db: RMS level (dBFS); tilt_db: gain of a treble shelf at 3 kHz
# (negative = darker); tremor: depth of a 7 Hz amplitude tremor; breath:
# level of aspiration noise relative to the speech envelope; exclaim,
# question: how often a sentence ends with "!" or "?".
ESPEAK_PROFILE_FIELDS = (
    "rate", "pitch", "pitch_range", "level_db", "tilt_db",
    "tremor", "breath", "exclaim", "question",
)  # fmt: skip
ESPEAK_PROFILES = {
    emotion: dict(zip(ESPEAK_PROFILE_FIELDS, row, strict=True))
    for emotion, row in {
        #           rate pitch range level  tilt tremor breath  !    ?
        "neutral": (1.00, 1.00, 60, -32.0, 0.0, 0.00, 0.02, 0.0, 0.1),
        "happy": (1.10, 1.25, 140, -26.0, 3.0, 0.00, 0.03, 0.6, 0.1),
        "sad": (0.75, 0.85, 25, -38.0, -6.0, 0.00, 0.08, 0.0, 0.0),
        "angry": (1.25, 1.10, 110, -22.0, 6.0, 0.00, 0.04, 0.8, 0.0),
        "fear": (1.30, 1.40, 50, -30.0, 0.0, 0.30, 0.10, 0.0, 0.2),
        "surprise": (0.95, 1.35, 170, -25.0, 2.0, 0.00, 0.03, 0.3, 0.7),
    }.items()
}

# The language each corpus is spoken in, and its sentences (no final
# punctuation: the emotion's profile chooses it).
CORPUS_LANGUAGES = {
    "iemocap": "en-us",
    "casia": "cmn-latn-pinyin",
    "emodb": "de",
}
CORPUS_SENTENCES = {
    "iemocap": (
        "I don't know what to tell you",
        "Where were you last night",
        "We have to leave right now",
        "That is not what I said",
        "Can you give me a minute",
        "I got the job",
        "It was my fault",
        "Nobody told me about it",
        "Look at this place",
        "You said you would call",
        "It's only a few more days",
        "I can't believe it",
        "Let's talk about it later",
        "They moved to another city",
        "I waited for an hour",
        "This is the last time",
    ),
    "casia": (
        "jin1 tian1 tian1 qi4 hen3 hao3",
        "wo3 men5 ming2 tian1 zai4 jian4",
        "ta1 yi3 jing1 zou3 le5",
        "zhe4 shi4 wo3 de5 shu1",
        "wan3 fan4 yi3 jing1 zuo4 hao3 le5",
        "qing3 ba3 men2 guan1 shang4",
        "wo3 zai4 deng3 ni3 de5 dian4 hua4",
        "huo3 che1 ma3 shang4 yao4 kai1 le5",
        "zhe4 jian4 shi4 hen3 zhong4 yao4",
        "ta1 mei2 you3 lai2 shang4 ban1",
        "wo3 men5 qu4 gong1 yuan2",
        "ni3 ba3 dong1 xi1 fang4 zai4 zhe4 li3",
    ),
    # EmoDB's ten texts, in the order of synthetic.EMODB_TEXTS.
    "emodb": (
        "Der Lappen liegt auf dem Eisschrank",
        "Das will sie am Mittwoch abgeben",
        "Heute abend könnte ich es ihm sagen",
        "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück",
        "In sieben Stunden wird es soweit sein",
        "Was sind denn das für Tüten, die da unter dem Tisch stehen",
        "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter",
        "An den Wochenenden bin ich jetzt immer nach Hause gefahren und "
        "habe Agnes besucht",
        "Ich will das eben wegbringen und dann mit Karl was trinken gehen",
        "Die wird auf dem Platz sein, wo wir sie immer hinlegen",
    ),
}
# espeak-ng's voice variants, by gender: the corpora's speakers draw from
# the first pool, the label-free pretraining speech from the second.
CORPUS_VARIANTS = {
    "F": ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie"),
    "M": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "adam", "Alex", "Andy"),
}
PRETRAINING_VARIANTS = (
    "aunty", "belinda", "linda", "steph", "steph2", "steph3", "anika",
    "m8", "boris", "david", "ed", "edward", "Gene", "iven",
    "iven2", "john", "klatt", "klatt2", "klatt3", "max", "Michael",
    "norbert", "paul", "rob", "robert", "travis", "victor", "zac",
)  # fmt: skip
# Languages written in the Latin alphabet, so pseudo-words in its letters
# follow each language's own rules; Mandarin takes pinyin syllables.
PRETRAINING_LANGUAGES = (
    "af", "ca", "cs", "cy", "da", "de", "en-gb", "en-us", "eo", "es",
    "et", "eu", "fi", "fr-fr", "hr", "hu", "id", "is", "it", "lt", "lv",
    "ms", "nb", "nl", "pl", "pt", "ro", "sk", "sv", "sw", "tr",
    "cmn-latn-pinyin",
)  # fmt: skip
PINYIN_SYLLABLES = (
    "ba", "bo", "da", "de", "ge", "ha", "ji", "ka", "la", "li", "ma",
    "na", "ni", "pa", "qi", "ren", "shi", "ta", "wo", "xi", "yi", "zhe",
    "zhong", "guo", "hao", "tian", "shang", "xue", "jia", "men",
)  # fmt: skip
LATIN_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t",
                "v", "z", "br", "st", "kl", "tr")  # fmt: skip
LATIN_NUCLEI = ("a", "e", "i", "o", "u", "ei", "au", "ou")


def espeak_executable():
    """The path of ``espeak-ng``, or a RuntimeError that says how to get it.

    Example
    -------
    >>> espeak_executable().endswith("espeak-ng")
    True
    """
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError(
            "espeak-ng is not installed (no `espeak-ng` on PATH); the espeak "
            "speech source and the pretrained tiny models need it: "
            + INSTALL_HINT
        )
    return path


@functools.cache
def espeak_version():
    """The version line of the installed espeak-ng (recorded in stamps).

    Example
    -------
    >>> espeak_version().startswith("eSpeak NG text-to-speech:")
    True
    """
    result = subprocess.run(
        [espeak_executable(), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split("  Data at:")[0].strip()


def espeak_say(text, voice, rate=100.0, pitch=0.0, pitch_range=100.0):
    """Speak ``text`` with espeak-ng.

    Arguments
    ---------
    text : str
        What to say (plain text: it is escaped for SSML).
    voice : str
        An espeak-ng voice: a language, optionally ``+`` a variant
        (``"en-us+f2"``).
    rate : float
        Speaking rate, % of the voice's own.
    pitch : float
        Pitch change, % of the voice's own.
    pitch_range : float
        Pitch range, % of the voice's own.

    Returns
    -------
    numpy.ndarray
        The waveform, float32, at ``ESPEAK_SAMPLE_RATE``.

    Raises
    ------
    RuntimeError
        If espeak-ng is missing, or fails (naming the voice and what it
        printed).

    Example
    -------
    >>> slow = espeak_say("Hello there", "en-us+m3", rate=60)
    >>> fast = espeak_say("Hello there", "en-us+m3", rate=150)
    >>> bool(len(slow) > len(fast) > 0.3 * ESPEAK_SAMPLE_RATE)
    True
    """
    ssml = (
        f'<speak><prosody rate="{rate:.0f}%" pitch="{pitch:+.0f}%" '
        f'range="{pitch_range:.0f}%">{escape(text)}</prosody></speak>'
    )
    result = subprocess.run(
        [espeak_executable(), "-m", "-v", voice, "--stdout", ssml],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(
            f"espeak-ng failed to speak with voice {voice!r} (exit "
            f"{result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    wav, sample_rate = soundfile.read(
        io.BytesIO(result.stdout), dtype="float32"
    )
    if sample_rate != ESPEAK_SAMPLE_RATE:
        raise RuntimeError(
            f"espeak-ng wrote {sample_rate} Hz, expected {ESPEAK_SAMPLE_RATE}"
        )
    return wav


def make_espeak_voice(gender, rng):
    """Draw the voice of one corpus speaker.

    Arguments
    ---------
    gender : str
        ``"F"`` or ``"M"``: the pool of espeak-ng variants.
    rng : numpy.random.Generator
        The random source.

    Returns
    -------
    dict
        ``variant``, and the speaker's ``pitch`` and ``rate`` factors,
        ``level_offset_db`` and ``tilt_offset_db``.

    Example
    -------
    >>> voice = make_espeak_voice("F", np.random.default_rng(0))
    >>> voice["variant"] in CORPUS_VARIANTS["F"]
    True
    """
    if gender not in CORPUS_VARIANTS:
        raise ValueError(f"gender must be 'F' or 'M', got {gender!r}")
    return _voice(str(rng.choice(CORPUS_VARIANTS[gender])), rng)


def _voice(variant, rng):
    """A speaker: a variant with a pitch, rate, level and tilt of its own."""
    return {
        "variant": variant,
        "pitch": float(np.exp(rng.normal(0.0, 0.08))),
        "rate": float(np.exp(rng.normal(0.0, 0.06))),
        "level_offset_db": float(rng.normal(0.0, 2.0)),
        "tilt_offset_db": float(rng.normal(0.0, 1.5)),
    }


def _utterance_params(profile, voice, rng):
    """Draw one utterance's prosody around an emotion profile."""

    def jiggle(sigma):
        return np.exp(rng.normal(0.0, sigma))

    return {
        "rate": 100 * profile["rate"] * voice["rate"] * jiggle(0.08),
        "pitch": 100 * (profile["pitch"] * voice["pitch"] * jiggle(0.06) - 1),
        "pitch_range": profile["pitch_range"] * jiggle(0.2),
        "level_db": profile["level_db"]
        + voice["level_offset_db"]
        + rng.normal(0.0, 2.5),
        "tilt_db": profile["tilt_db"]
        + voice["tilt_offset_db"]
        + rng.normal(0.0, 1.5),
        "tremor": profile["tremor"] * jiggle(0.2),
        "breath": profile["breath"] * jiggle(0.3),
        "tremor_phase": rng.uniform(0.0, 2 * np.pi),
    }


def _ending(profile, rng):
    """The sentence's final punctuation, drawn from the profile."""
    exclaim, question = profile["exclaim"], profile["question"]
    return str(
        rng.choice(
            [".", "!", "?"], p=[1 - exclaim - question, exclaim, question]
        )
    )


def _trim(wav, margin):
    """Cut the silence before and after the speech to ``margin`` samples."""
    loud = np.flatnonzero(np.abs(wav) > 0.01 * np.abs(wav).max())
    if len(loud) == 0:
        return wav
    return wav[max(0, loud[0] - margin) : loud[-1] + margin]


def _envelope(wav, width):
    """Moving average of ``|wav|`` over ``width`` samples."""
    kernel = torch.full((1, 1, width), 1.0 / width, dtype=wav.dtype)
    padded = torch.nn.functional.pad(
        wav.abs()[None, None], (width // 2, width - 1 - width // 2)
    )
    return torch.nn.functional.conv1d(padded, kernel)[0, 0]


def _post_process(wav, params, sample_rate, rng, noise_floor_db):
    """Tilt, tremor, breath, resampling, level and noise floor."""
    rate = ESPEAK_SAMPLE_RATE
    speech = torch.from_numpy(_trim(wav, int(0.1 * rate))).double()
    speech = torchaudio.functional.treble_biquad(
        speech, rate, params["tilt_db"], central_freq=3000.0
    )
    seconds = torch.arange(len(speech), dtype=torch.float64) / rate
    speech = speech * (
        1
        + params["tremor"]
        * torch.sin(2 * np.pi * 7.0 * seconds + params["tremor_phase"])
    )
    noise = torchaudio.functional.highpass_biquad(
        torch.from_numpy(rng.standard_normal(len(speech))), rate, 1500.0
    )
    speech = (
        speech + params["breath"] * 4 * _envelope(speech, rate // 50) * noise
    )
    if sample_rate != rate:
        speech = torchaudio.functional.resample(speech, rate, sample_rate)
    speech = speech.numpy()
    speech *= 10 ** (params["level_db"] / 20) / np.sqrt(np.mean(speech**2))
    speech += 10 ** (noise_floor_db / 20) * rng.standard_normal(len(speech))
    peak = np.abs(speech).max()
    if peak > 0.98:
        speech *= 0.98 / peak
    return speech.astype(np.float32)


def speak_emotionally(
    text, language, profile, voice, sample_rate, rng, noise_floor_db=-60.0
):
    """Speak ``text`` in ``language`` with an emotion profile and a voice.

    Arguments
    ---------
    text : str
        The sentence, without its final punctuation.
    language : str
        An espeak-ng language (``"en-us"``, ``"cmn-latn-pinyin"``...).
    profile : dict
        An emotion profile, e.g. ``ESPEAK_PROFILES["sad"]``.
    voice : dict
        A speaker's voice from :func:`make_espeak_voice`.
    sample_rate : int
        Sampling rate of the result in Hz.
    rng : numpy.random.Generator
        The random source (all randomness comes from it).
    noise_floor_db : float
        RMS level of the background noise (dBFS).

    Returns
    -------
    numpy.ndarray
        The waveform, float32, peak below 1.

    Example
    -------
    >>> voice = make_espeak_voice("M", np.random.default_rng(0))
    >>> def spoken(emotion):
    ...     rng = np.random.default_rng(1)
    ...     profile = ESPEAK_PROFILES[emotion]
    ...     return speak_emotionally(
    ...         "I got the job", "en-us", profile, voice, 16000, rng
    ...     )
    >>> def rms(wav):
    ...     return np.sqrt(np.mean(wav**2))
    >>> angry, sad = spoken("angry"), spoken("sad")
    >>> bool(rms(angry) > 2 * rms(sad)), bool(len(sad) > len(angry))
    (True, True)
    """
    params = _utterance_params(profile, voice, rng)
    wav = espeak_say(
        text + _ending(profile, rng),
        f"{language}+{voice['variant']}",
        params["rate"],
        params["pitch"],
        params["pitch_range"],
    )
    return _post_process(wav, params, sample_rate, rng, noise_floor_db)


def _speak_planned(job, profile, sample_rate, duration, rng, noise_floor_db):
    """One planned utterance of a corpus: its language and sentence."""
    sentences = CORPUS_SENTENCES[job["corpus"]]
    return speak_emotionally(
        sentences[job["sentence"] % len(sentences)],
        CORPUS_LANGUAGES[job["corpus"]],
        profile,
        job["voice"],
        sample_rate,
        rng,
        noise_floor_db,
    )


# espeak-ng's speech: the length of an utterance is its sentence's.
ESPEAK_SPEECH = Speech(
    "espeak", ESPEAK_PROFILES, make_espeak_voice, _speak_planned
)


def _pseudo_sentence(language, rng):
    """Three to six pseudo-words that ``language``'s rules can read."""
    words = []
    for _ in range(rng.integers(3, 7)):
        syllables = rng.integers(1, 4)
        if language.startswith("cmn"):
            word = " ".join(
                f"{rng.choice(PINYIN_SYLLABLES)}{rng.integers(1, 5)}"
                for _ in range(syllables)
            )
        else:
            word = "".join(
                rng.choice(LATIN_ONSETS) + rng.choice(LATIN_NUCLEI)
                for _ in range(syllables)
            )
        words.append(word)
    return " ".join(words)


def _fit_length(wav, samples, rng, noise_floor_db):
    """A random window of ``samples``, or ``wav`` padded with the floor."""
    if len(wav) >= samples:
        start = rng.integers(len(wav) - samples + 1)
        return wav[start : start + samples]
    pad = 10 ** (noise_floor_db / 20) * rng.standard_normal(samples - len(wav))
    return np.concatenate([wav, pad.astype(np.float32)])


def unlabelled_espeak_utterances(count, duration, sample_rate, seed):
    """espeak-ng speech with no emotion label, for label-free pretraining.

    Each utterance says pseudo-words in one of
    :data:`PRETRAINING_LANGUAGES` (none of the corpora's sentences), with a
    random mixture of the emotion profiles
    (:func:`speechbrain_sercl.data.synthetic.random_profile_mixture`), in one
    of 40 random voices whose variants no corpus speaker uses. Each is cut
    (a random window) or padded with the noise floor to ``duration``.

    Arguments
    ---------
    count : int
        Number of utterances.
    duration : float
        Length of each, in seconds.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of everything drawn.

    Returns
    -------
    numpy.ndarray
        ``[count, samples]``, float32.

    Example
    -------
    >>> unlabelled_espeak_utterances(3, 0.5, 16000, seed=0).shape
    (3, 8000)
    """
    rng = np.random.default_rng([seed, UNLABELLED_SEED, 1])
    voices = [
        (
            str(rng.choice(PRETRAINING_LANGUAGES)),
            _voice(str(rng.choice(PRETRAINING_VARIANTS)), rng),
        )
        for _ in range(40)
    ]
    samples = int(round(duration * sample_rate))
    utterances = []
    for _ in range(count):
        profile = random_profile_mixture(ESPEAK_PROFILES, rng)
        language, voice = voices[rng.integers(len(voices))]
        wav = speak_emotionally(
            _pseudo_sentence(language, rng),
            language,
            profile,
            voice,
            sample_rate,
            rng,
        )
        utterances.append(_fit_length(wav, samples, rng, -60.0))
    return np.stack(utterances)


def _espeak_stamp_record():
    """What a stamp records of the speech source (espeak-ng's version too).

    A corpus written by another espeak-ng, or by the formant source, no
    longer matches its stamp and is never mixed in.
    """
    return {
        "speech": "espeak",
        "speech_version": ESPEAK_SPEECH_VERSION,
        "espeak_ng": espeak_version(),
    }


def generate_espeak_corpora(
    root,
    seed=0,
    utterances_per_speaker_emotion=8,
    dropped_per_speaker=2,
    iemocap_sample_rate=16000,
    casia_sample_rate=22050,
    progress=True,
):
    """Write an IEMOCAP-like and a CASIA-like corpus of espeak-ng speech.

    The same speakers, emotions, file names and annotation files as
    :func:`speechbrain_sercl.data.synthetic.generate_synthetic_corpora`,
    spoken by espeak-ng; an utterance lasts as long as its sentence takes.
    Deterministic for a given espeak-ng (its version is recorded in the
    stamp ``root/synthetic_stamp.json``, with the arguments); a complete
    generation with the same record is reused, another is an error, as is
    a root that holds the other source's corpora.

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    seed : int
        Seed of every random draw.
    utterances_per_speaker_emotion : int
        As for the other source: 320 + 20 IEMOCAP-like and 192 CASIA-like
        utterances by default.
    dropped_per_speaker : int
        IEMOCAP-like utterances per speaker labelled ``fru`` or ``xxx``.
    iemocap_sample_rate : int
        Sampling rate of the IEMOCAP-like wavs.
    casia_sample_rate : int
        Sampling rate of the CASIA-like wavs.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"iemocap": <IEMOCAP_full_release folder>, "casia": <CASIA
        folder>}``.

    Example
    -------
    >>> import glob, os
    >>> root = getfixture("tmp_path")
    >>> paths = generate_espeak_corpora(
    ...     root, utterances_per_speaker_emotion=1, progress=False
    ... )
    >>> len(glob.glob(os.path.join(paths["casia"], "*", "*", "*.wav")))
    24
    """
    parameters = {
        **_espeak_stamp_record(),
        "seed": seed,
        "utterances_per_speaker_emotion": utterances_per_speaker_emotion,
        "dropped_per_speaker": dropped_per_speaker,
        "iemocap_sample_rate": iemocap_sample_rate,
        "casia_sample_rate": casia_sample_rate,
    }
    return write_iemocap_and_casia(
        root, parameters, ESPEAK_SPEECH, None, progress
    )


def generate_espeak_emodb(
    root,
    seed=0,
    utterances_per_speaker_emotion=8,
    sample_rate=16000,
    progress=True,
):
    """Write an EmoDB-like corpus of espeak-ng speech (``root/EmoDB``).

    EmoDB's ten speakers say its ten German texts, named as in the release,
    as :func:`speechbrain_sercl.data.synthetic.generate_synthetic_emodb`
    writes them (stamp ``root/synthetic_emodb_stamp.json``).

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    seed : int
        Seed of every random draw.
    utterances_per_speaker_emotion : int
        Utterances per speaker and emotion (at most 260).
    sample_rate : int
        Sampling rate of the wavs.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"emodb": <EmoDB folder>}``.
    """
    parameters = {
        **_espeak_stamp_record(),
        "seed": seed,
        "utterances_per_speaker_emotion": utterances_per_speaker_emotion,
        "sample_rate": sample_rate,
    }
    return write_emodb(root, parameters, ESPEAK_SPEECH, None, progress)


def prepare_espeak(
    data_folder, save_folder, corpus, root=None, corpus_name=None, **options
):
    """Generate the espeak-ng corpora (once) and prepare one of them.

    The reader of the registry's ``espeak_iemocap``, ``espeak_casia`` and
    ``espeak_emodb`` corpora, as
    :func:`speechbrain_sercl.data.synthetic.prepare_synthetic` is of the
    ``synthetic_*`` ones: the real reader of ``corpus`` reads what the
    generator wrote.

    Arguments
    ---------
    data_folder : str
        The corpus folder: ``<root>/IEMOCAP_full_release``,
        ``<root>/CASIA`` or ``<root>/EmoDB``.
    save_folder : str
        Where the reader writes the manifest.
    corpus : str
        ``"iemocap"``, ``"casia"`` or ``"emodb"``.
    root : str, optional
        The folder of the corpora (default: the parent of ``data_folder``).
    corpus_name : str, optional
        The ``corpus`` field of the manifest (default: ``corpus``).
    **options
        Arguments of the generator.

    Returns
    -------
    PreparationReport
        The reader's report.
    """
    return prepare_generated(
        ESPEAK_READERS,
        data_folder,
        save_folder,
        corpus,
        root,
        corpus_name,
        **options,
    )


# corpus -> (generator, real reader).
ESPEAK_READERS = {
    "iemocap": (generate_espeak_corpora, prepare_iemocap),
    "casia": (generate_espeak_corpora, prepare_casia),
    "emodb": (generate_espeak_emodb, prepare_emodb),
}
