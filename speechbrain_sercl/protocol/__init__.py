"""The evaluation protocol: the fold runner that trains and tests every step
of every run, its overrides, the classical floor, the cross-corpus tests
and the lock on an experiment folder."""
