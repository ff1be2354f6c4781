"""Attention forward + backward on the CPU: SDPA's flash kernel against its math kernel, per
precision, at BERT's training shapes. Why ``core.blocks.attention`` takes the math kernel for
bf16/fp16 on a CPU (the flash kernel's reduced-precision backward is the slower one there) and
keeps SDPA's default for float32.

    python -m benchmarks.bench_attention [--batch 32] [--heads 4] [--seq 128] [--head-size 64]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from benchmarks.common import machine, median_ms
from core.blocks import attention

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    shape = (args.batch, args.heads, args.seq, args.head_size)
    print(f"machine: {machine()}")
    print(f"q, k, v {tuple(shape)}, forward + backward, median of {args.repeat} (ms)")
    print("| dtype | padding | flash | math | ours (core.blocks.attention) | flash / math |")
    print("|---|---|---:|---:|---:|---:|")
    for dtype in (torch.float32, torch.bfloat16):
        for padded in (False, True):
            q, k, v = (torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3))
            mask = None
            if padded:  # the last fifth of every sequence is padding
                mask = torch.zeros(args.batch, 1, 1, args.seq, dtype=dtype)
                mask[..., args.seq * 4 // 5 :] = torch.finfo(dtype).min

            def kernel(backend, q=q, k=k, v=v, mask=mask):
                def run():
                    with sdpa_kernel(backend):
                        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                    out.sum().backward()

                return run

            def ours(q=q, k=k, v=v, mask=mask):
                attention(q, k, v, mask, 0.0).sum().backward()

            times = {name: median_ms(kernel(b), args.repeat) for name, b in BACKENDS.items()}
            mine = median_ms(ours, args.repeat)
            print(
                f"| {str(dtype).removeprefix('torch.')} | {'yes' if padded else 'no'} | "
                f"{times['flash']:.1f} | {times['math']:.1f} | {mine:.1f} | "
                f"{times['flash'] / times['math']:.2f}x |"
            )


if __name__ == "__main__":
    main()
