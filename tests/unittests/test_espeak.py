"""Tests of the espeak-ng speech source: its corpora, as the real readers
read them, its prosody, its voices and languages, and its errors."""

import json
import os
import subprocess

import numpy as np
import pytest
import soundfile

from speechbrain_sercl.data import espeak
from speechbrain_sercl.data.corpora import prepare_corpus
from speechbrain_sercl.data.espeak import (
    ESPEAK_PROFILES,
    ESPEAK_SAMPLE_RATE,
    espeak_executable,
    espeak_say,
    generate_espeak_corpora,
    make_espeak_voice,
    speak_emotionally,
)
from speechbrain_sercl.data.synthetic import generate_synthetic_corpora
from speechbrain_sercl.method.pretraining import unlabelled_speech

PER_CLASS = 1
# Written out here, not taken from the generator: CASIA's four speakers,
# IEMOCAP's ten (a session and a gender each), and the emotions each
# reader keeps.
CASIA_SPEAKERS = {"liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"}
CASIA_EMOTIONS = {"angry", "fear", "happy", "neutral", "sad", "surprise"}
IEMOCAP_SPEAKERS = {f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"}
IEMOCAP_EMOTIONS = {"neutral", "happy", "sad", "angry"}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """One small espeak-ng generation shared by the tests of this file."""
    root = str(tmp_path_factory.mktemp("espeak"))
    return generate_espeak_corpora(
        root, utterances_per_speaker_emotion=PER_CLASS, progress=False
    )


def _read(reader, data_folder, save_folder):
    prepare_corpus(
        reader,
        data_folder,
        save_folder,
        utterances_per_speaker_emotion=PER_CLASS,
        progress=False,
    )
    with open(os.path.join(save_folder, "manifest.json")) as handle:
        return json.load(handle)


def _counts(manifest):
    counts = {}
    for entry in manifest.values():
        key = (entry["speaker"], entry["emotion"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_real_readers_find_every_speaker_and_emotion(corpora, tmp_path):
    casia = _read("espeak_casia", corpora["casia"], str(tmp_path / "casia"))
    assert _counts(casia) == {
        (speaker, emotion): PER_CLASS
        for speaker in CASIA_SPEAKERS
        for emotion in CASIA_EMOTIONS
    }
    for entry in casia.values():
        # The emotion is the folder the file is in, the speaker the one
        # above: CASIA's layout.
        *_, speaker, emotion, _ = entry["wav"].split(os.sep)
        assert (entry["speaker"], entry["emotion"]) == (speaker, emotion)
        assert soundfile.info(entry["wav"]).samplerate == 22050
    iemocap = _read(
        "espeak_iemocap", corpora["iemocap"], str(tmp_path / "iemocap")
    )
    # hap and exc both count as happy; fru and xxx are dropped.
    assert _counts(iemocap) == {
        (speaker, emotion): PER_CLASS
        for speaker in IEMOCAP_SPEAKERS
        for emotion in IEMOCAP_EMOTIONS
    }
    for utt_id, entry in iemocap.items():
        # The speaker is the session and the gender of the turn's suffix
        # (Ses01F_impro01_M000: Ses01M), not of the dialog's name.
        assert entry["speaker"] == utt_id[:5] + utt_id.rsplit("_", 1)[1][0]
        info = soundfile.info(entry["wav"])
        assert info.samplerate == 16000 and info.subtype == "PCM_16"
        assert 0.5 < info.duration < 4.0


def test_an_iemocap_annotation_spans_its_wav(corpora):
    """The EmoEvaluation times are the wavs' lengths, which the sentence
    sets for espeak-ng speech."""
    folder = os.path.join(
        corpora["iemocap"], "Session1", "dialog", "EmoEvaluation"
    )
    checked = 0
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as handle:
            for line in handle:
                if not line.startswith("["):
                    continue
                times, utt_id = line.split("\t")[:2]
                start, end = (float(t) for t in times[1:-1].split(" - "))
                wav = os.path.join(
                    corpora["iemocap"], "Session1", "sentences", "wav",
                    name[: -len(".txt")], utt_id + ".wav",
                )  # fmt: skip
                assert end - start == pytest.approx(
                    soundfile.info(wav).duration, abs=2e-4
                )
                checked += 1
    assert checked == 2 * (4 * PER_CLASS + 2)


def _modification_times(root):
    """Every file under ``root`` with its modification time."""
    return {
        os.path.join(folder, name): os.path.getmtime(os.path.join(folder, name))
        for folder, _, names in os.walk(root)
        for name in names
    }


def test_the_other_sources_corpora_are_never_mixed_in(corpora):
    """A root of espeak-ng corpora refuses the formant synthesiser's, and
    nothing there is touched."""
    root = os.path.dirname(corpora["casia"])
    before = _modification_times(root)
    with pytest.raises(ValueError, match="synthetic_stamp.json"):
        generate_synthetic_corpora(
            root, utterances_per_speaker_emotion=PER_CLASS, progress=False
        )
    after = _modification_times(root)
    assert after == before
    with open(os.path.join(root, "synthetic_stamp.json")) as handle:
        stamp = json.load(handle)
    assert stamp["parameters"]["speech"] == "espeak"
    assert stamp["parameters"]["espeak_ng"].startswith("eSpeak NG")


def _median_f0(wav, sample_rate):
    """Median of the autocorrelation peak (60-500 Hz) over loud frames."""
    frame = int(0.04 * sample_rate)
    lags = np.arange(sample_rate // 500, sample_rate // 60)
    loudness = [
        np.sqrt(np.mean(wav[i : i + frame] ** 2))
        for i in range(0, len(wav) - frame, frame)
    ]
    f0 = []
    for index, level in enumerate(loudness):
        if level < 0.3 * max(loudness):
            continue
        x = wav[index * frame : (index + 1) * frame].astype(np.float64)
        x = x - x.mean()
        correlation = [np.dot(x[:-lag], x[lag:]) for lag in lags]
        f0.append(sample_rate / lags[int(np.argmax(correlation))])
    return float(np.median(f0))


def test_each_profile_moves_rate_level_and_pitch_its_way():
    """Murray and Arnott's directions, measured on the waveform: sad is
    slower, quieter and lower than neutral; angry faster and louder; fear
    higher. The voice and the text are the same, and the utterances'
    random variation is drawn from the same seed."""
    voice = make_espeak_voice("M", np.random.default_rng(0))
    voice.update(pitch=1.0, rate=1.0, level_offset_db=0.0, tilt_offset_db=0)

    def measure(emotion):
        profile = {**ESPEAK_PROFILES[emotion], "exclaim": 0, "question": 0}
        wav = speak_emotionally(
            "We have to leave right now and take the train",
            "en-us",
            profile,
            voice,
            16000,
            np.random.default_rng(7),
        )
        level = 20 * np.log10(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
        return len(wav) / 16000, level, _median_f0(wav, 16000)

    neutral, sad, angry, fear = map(
        measure, ("neutral", "sad", "angry", "fear")
    )
    assert sad[0] > 1.15 * neutral[0] > 1.15 * angry[0]
    assert sad[1] < neutral[1] - 3 < angry[1] - 6
    assert sad[2] < neutral[2] < fear[2] / 1.2


def test_an_utterance_repeats_under_its_seed():
    voice = make_espeak_voice("F", np.random.default_rng(1))

    def say(seed):
        return speak_emotionally(
            "jin1 tian1 tian1 qi4 hen3 hao3",
            "cmn-latn-pinyin",
            ESPEAK_PROFILES["happy"],
            voice,
            22050,
            np.random.default_rng(seed),
        )

    first = say(3)
    assert first.dtype == np.float32 and np.abs(first).max() < 1.0
    assert np.array_equal(first, say(3))
    assert not np.array_equal(first, say(4))


def _spoken(voice):
    return subprocess.run(
        [espeak_executable(), "-v", voice, "--stdout", "hello"],
        capture_output=True,
        check=True,
    ).stdout


def test_every_voice_variant_exists_and_the_pools_do_not_meet():
    """espeak-ng falls back to its default voice for a variant it does not
    know, silently: each variant must sound unlike the default and unlike
    the others. Pretraining voices are never corpus speakers."""
    variants = [
        *espeak.CORPUS_VARIANTS["F"],
        *espeak.CORPUS_VARIANTS["M"],
        *espeak.PRETRAINING_VARIANTS,
    ]
    sounds = {_spoken(f"en-us+{variant}") for variant in variants}
    assert len(sounds) == len(variants)
    assert _spoken("en-us") not in sounds
    corpus_variants = {
        *espeak.CORPUS_VARIANTS["F"],
        *espeak.CORPUS_VARIANTS["M"],
    }
    assert not corpus_variants & set(espeak.PRETRAINING_VARIANTS)


def test_pretraining_languages_read_pseudo_words_by_their_own_rules():
    """espeak-ng marks a switch to another language's rules with
    ``(en)``; pseudo-words must stay in the language they are given to."""
    rng = np.random.default_rng(0)
    for language in espeak.PRETRAINING_LANGUAGES:
        text = espeak._pseudo_sentence(language, rng)
        phonemes = subprocess.run(
            [espeak_executable(), "-q", "-x", "-v", language, text],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert phonemes.strip() and "(" not in phonemes, (language, text)


def test_the_pretraining_mixture_is_both_sources_in_turn():
    both = unlabelled_speech(("synthetic", "espeak"), 3, 0.5, seed=2)
    alone = [
        unlabelled_speech((source,), 3, 0.5, seed=2)
        for source in ("synthetic", "espeak")
    ]
    assert both.shape == (6, 8000)
    assert np.array_equal(both[:3], alone[0])
    assert np.array_equal(both[3:], alone[1])
    with pytest.raises(ValueError, match="speech must name some of"):
        unlabelled_speech(("festival",), 3, 0.5, seed=2)


def test_a_missing_or_failing_espeak_is_named(monkeypatch):
    with pytest.raises(RuntimeError, match="espeak-ng failed .*'xx-nowhere'"):
        espeak_say("hello", "xx-nowhere")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        espeak_say("hello", "en-us")


def test_espeak_writes_what_the_module_expects():
    wav = espeak_say("hello", "en-us")
    assert wav.dtype == np.float32 and len(wav) > 0.2 * ESPEAK_SAMPLE_RATE
