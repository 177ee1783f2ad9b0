"""Cost of the speech encoder's voice on one thread: Whisper-base's first layers on a 4 s window, its log-mel,
and the encoder's load (read, checksum, map into PyTorch).

    python bench/voice_encoder_speed.py
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from emotion import speech_encoder as se


def main() -> None:
    torch.set_num_threads(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    se.load_encoder()
    print(f"load (join the two parts, sha256, map into PyTorch): {time.perf_counter() - t:.2f} s, "
          f"peak RSS +{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024:.0f} MB")
    wave = np.random.default_rng(0).normal(0, 0.1, 4 * se.SAMPLE_RATE).astype(np.float32)
    for layers in (4, 6):
        se.encode([wave], layers)
        t = time.perf_counter()
        for _ in range(10):
            se.encode([wave], layers)
        print(f"a 4 s window through {layers} layers, one thread: {(time.perf_counter() - t) / 10:.3f} s")


if __name__ == "__main__":
    main()
