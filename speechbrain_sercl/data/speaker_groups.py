"""Speaker groups: the held-out units of the ``speaker`` protocol.

IEMOCAP's five sessions make five speaker-independent folds of two speakers
each. Corpora without sessions but with many speakers (EmoDB 10, RAVDESS
24, CREMA-D 91, ESD 20) would make one fold per speaker; the ``speaker``
protocol gives them five folds instead, each holding out a group of
speakers. The rule is the same for every such corpus and depends only on
the speakers present: the speaker ids sorted (as strings; the corpora's ids
have a fixed width) and cut into ``n_groups`` contiguous groups whose sizes
differ by at most one, the first groups getting the extra speaker (EmoDB:
03-08, 09-10, 11-12, 13-14, 15-16, two speakers each; RAVDESS: actors
01-05, 06-10, 11-15, 16-20, 21-24; CREMA-D: 19, 18, 18, 18, 18 actors;
ESD: 0001-0004, ..., 0017-0020). A group is named after its first and
last speaker (``"03-08"``), so the folds, sorted by group name, follow
the speaker order. The reader writes the group as the utterance's
``session``; the corpus's registry entry sets ``speaker_groups="session"``.

Example
-------
>>> speaker_groups(["16", "03", "08", "09", "10"], n_groups=2)
{'03': '03-09', '08': '03-09', '09': '03-09', '10': '10-16', '16': '10-16'}
"""

from dataclasses import replace

__all__ = ["N_SPEAKER_GROUPS", "group_sessions", "speaker_groups"]

N_SPEAKER_GROUPS = 5


def speaker_groups(speakers, n_groups=N_SPEAKER_GROUPS):
    """Cut the sorted speakers into contiguous groups of near-equal size.

    Arguments
    ---------
    speakers : iterable of str
        Speaker ids (repeats allowed).
    n_groups : int
        The number of groups; fewer when there are fewer speakers.

    Returns
    -------
    dict
        ``{speaker: group name}``, the name ``"<first>-<last>"`` (or the
        speaker itself for a group of one).

    Example
    -------
    >>> speaker_groups(["a", "b", "c"], n_groups=5)
    {'a': 'a', 'b': 'b', 'c': 'c'}
    """
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}")
    ordered = sorted(set(speakers))
    count = min(n_groups, len(ordered))
    size, extra = divmod(len(ordered), count) if count else (0, 0)
    groups, start = {}, 0
    for index in range(count):
        members = ordered[start : start + size + (index < extra)]
        start += len(members)
        name = members[0]
        if len(members) > 1:
            name = f"{members[0]}-{members[-1]}"
        groups.update(dict.fromkeys(members, name))
    return groups


def group_sessions(utterances, n_groups=N_SPEAKER_GROUPS):
    """The utterances with their speaker group as ``session``.

    Arguments
    ---------
    utterances : list of Utterance
        What a reader found.
    n_groups : int
        The number of speaker groups.

    Returns
    -------
    list of Utterance
        The same utterances, each with ``session`` = its speaker's group.

    Example
    -------
    >>> from speechbrain_sercl.data.manifest import Utterance
    >>> found = [Utterance(f"u{s}", "/a.wav", "sad", s, s) for s in "abcd"]
    >>> [u.session for u in group_sessions(found, n_groups=2)]
    ['a-b', 'a-b', 'c-d', 'c-d']
    """
    groups = speaker_groups((u.speaker for u in utterances), n_groups)
    return [replace(u, session=groups[u.speaker]) for u in utterances]
