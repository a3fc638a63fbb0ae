"""The method: the speech model and where it comes from, the pooling, the
classifier head, the losses, the cross-corpus sampler, the schedules, the
Brains that train them and the stage-2 feature cache."""
