#!/usr/bin/env python3
"""Cost of batch independence: a CNN call per utterance vs one batched call.

``SSLBackbone.forward`` runs the CNN feature encoder on each utterance's
valid samples alone, then the projection and the transformer as one
batch. Before, one Hugging Face call ran the whole model on the padded
batch; that plain batched call is reimplemented here (waveform
normalisation over the valid samples, then the model with a sample-level
attention mask), and only here. Both run on the same model and the same
batch of mixed-length utterances, interleaved, and the script prints the
median time of each for

* ``SSLBackbone.forward`` in eval mode under ``torch.no_grad()``;
* a training step's forward and backward (stage-1 freeze policy, time
  masking on, attention pooling, a mean-square loss);

old time, new time and the new / old ratio last on each line, after the
largest difference the old call makes on the valid frames.

    python benchmarks/bench_batch_independence.py        # tiny WavLM, CPU
    python benchmarks/bench_batch_independence.py --device cuda:0 \\
        --source microsoft/wavlm-base-plus --batch-size 32
"""

import argparse
import tempfile
from functools import partial

import torch
from _timing import interleaved_medians
from torch.nn.utils.rnn import pad_sequence

from speechbrain_sercl.method.backbone import SSLBackbone
from speechbrain_sercl.method.pooling import AttentionPooling

SAMPLE_RATE = 16000


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="tiny-wavlm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    return parser.parse_args()


def mixed_batch(arguments, device):
    """Random utterances from min to max seconds, zero-padded together."""
    generator = torch.Generator().manual_seed(0)
    seconds = torch.linspace(
        arguments.min_seconds, arguments.max_seconds, arguments.batch_size
    )
    utterances = [
        torch.randn(int(s * SAMPLE_RATE), generator=generator) for s in seconds
    ]
    lengths = torch.tensor([len(u) for u in utterances])
    wavs = pad_sequence(utterances, batch_first=True)
    return wavs.to(device), (lengths / lengths.max()).to(device)


def batched_forward(backbone, wavs, wav_lens):
    """The replaced forward: one Hugging Face call on the padded batch."""
    counts = torch.round(wav_lens * wavs.shape[1])
    positions = torch.arange(wavs.shape[1], device=wavs.device)
    valid = positions < counts[:, None]
    if backbone.normalize_wav:
        wavs = normalise_valid_samples(wavs, valid)
    model = backbone.hf_model
    return model(wavs, attention_mask=valid).last_hidden_state


def normalise_valid_samples(wavs, valid, eps=1e-5):
    """Zero-mean unit-variance over each row's valid samples, padding 0."""
    valid = valid.to(wavs.dtype)
    count = valid.sum(dim=1, keepdim=True)
    mean = (wavs * valid).sum(dim=1, keepdim=True) / count
    var = (((wavs - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
    return (wavs - mean) / torch.sqrt(var + eps) * valid


def largest_valid_frame_gap(backbone, wavs, wav_lens):
    """Max |old - new| over the valid frames (eval mode)."""
    with torch.no_grad():
        old = batched_forward(backbone.eval(), wavs, wav_lens)
        new = backbone(wavs, wav_lens)
    frames = torch.round(wav_lens * new.shape[1]).long()
    valid = torch.arange(new.shape[1], device=new.device) < frames[:, None]
    return (old - new).abs()[valid].max().item()


def eval_step(forward, backbone, pooling, wavs, wav_lens):
    backbone.eval()
    with torch.no_grad():
        forward(backbone, wavs, wav_lens)


def train_step(forward, backbone, pooling, wavs, wav_lens):
    backbone.train()
    backbone.zero_grad(set_to_none=True)
    pooling.zero_grad(set_to_none=True)
    embeddings = pooling(forward(backbone, wavs, wav_lens), wav_lens)
    embeddings.pow(2).mean().backward()


def main():
    arguments = parse_arguments()
    device = torch.device(arguments.device)
    batch = mixed_batch(arguments, device)
    with tempfile.TemporaryDirectory() as save_path:
        backbone = SSLBackbone(arguments.source, save_path).to(device)
    torch.manual_seed(0)
    model = (backbone, AttentionPooling(backbone.hidden_size).to(device))
    print(
        f"{arguments.source}, {arguments.device}, "
        f"{torch.get_num_threads()} threads: batch of "
        f"{arguments.batch_size} from {arguments.min_seconds} to "
        f"{arguments.max_seconds} s; median of {arguments.repeats} after "
        f"{arguments.warmup} warm-up"
    )
    gap = largest_valid_frame_gap(backbone, *batch)
    print(f"max |old - new| on valid frames (eval): {gap:.3g}")
    forwards = [batched_forward, SSLBackbone.forward]
    print(f"{'':28s} {'old ms':>8s} {'new ms':>8s} {'new/old':>8s}")
    steps = [
        ("forward, eval, no grad", eval_step),
        ("train forward + backward", train_step),
    ]
    for name, step in steps:
        old, new = interleaved_medians(
            [partial(step, forward, *model, *batch) for forward in forwards],
            arguments.warmup,
            arguments.repeats,
            cuda=device.type == "cuda",
        )
        print(f"{name:28s} {old * 1e3:8.1f} {new * 1e3:8.1f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
