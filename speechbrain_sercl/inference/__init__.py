"""Using a trained model: export to SpeechBrain's ``EncoderClassifier``
layout, the check of an untrusted ``hyperparams.yaml``, ``sercl predict``
and publishing to the Hugging Face Hub."""
