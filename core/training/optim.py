"""Optimizers and the learning-rate schedule used for pretraining.

- AdamW (Loshchilov & Hutter 2019), torch's own, as BERT used (eps 1e-6, decay 0.01).
- LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
  minutes", Algorithm 2), which ALBERT was trained with. torch has none, so it is written here:
  Adam's bias-corrected moments, decoupled weight decay, then a per-tensor *trust ratio*
  ||w|| / ||update|| that rescales each layer's step. As in Google's LAMB used for ALBERT,
  tensors excluded from weight decay (biases, LayerNorm) are also excluded from the trust
  ratio (``adapt=False`` in their parameter group).
- Linear warm-up then linear decay to zero, BERT's schedule.

Biases and LayerNorm parameters get no weight decay (BERT's ``exclude_from_weight_decay``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from core.choices import OPTIMIZERS
from core.errors import InputError

NO_DECAY_MARKS = ("bias", "LayerNorm", "layer_norm")


class Lamb(Optimizer):
    """Layer-wise Adaptive Moments for Batch training (LAMB).

    For each tensor w with gradient g at step t:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        r = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay * w
        w = w - lr * (||w|| / ||r||) * r       (ratio 1 if either norm is 0, or adapt=False)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        adapt: bool = True,
        foreach: bool = True,
    ):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "adapt": adapt,
        }
        super().__init__(params, defaults)
        self.foreach = foreach  # False: the per-tensor loop (the reference in the tests)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("Lamb does not support sparse gradients")
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if self.foreach:
                self._step_foreach(group, params)
            else:
                self._step_loop(group, params)
        return loss

    def _step_loop(self, group: dict, params: list[torch.Tensor]) -> None:
        """One tensor at a time: the reference the foreach version is tested against."""
        b1, b2 = group["betas"]
        for p in params:
            grad = p.grad
            state = self.state[p]
            state["step"] += 1
            t = float(state["step"])
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v / (1 - b2**t)).sqrt_().add_(group["eps"])
            update = (m / (1 - b1**t)).div_(denom)
            if group["weight_decay"]:
                update.add_(p, alpha=group["weight_decay"])
            if group["adapt"]:
                w_norm = torch.linalg.vector_norm(p.float())
                u_norm = torch.linalg.vector_norm(update.float())
                ratio = torch.where(
                    (w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm)
                )
                state["trust_ratio"] = ratio.detach()
                p.add_(update * ratio.to(update.dtype), alpha=-group["lr"])
            else:
                p.add_(update, alpha=-group["lr"])

    def _step_foreach(self, group: dict, params: list[torch.Tensor]) -> None:
        """The same update with ``torch._foreach_*`` ops: a few kernels per parameter group
        instead of ~12 per tensor (on a GPU, launch overhead dominates small tensors)."""
        b1, b2 = group["betas"]
        states = [self.state[p] for p in params]
        grads = [p.grad for p in params]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1.0)  # CPU scalars: reading them below syncs nothing
        ts = [float(t) for t in steps]
        ms = [s["exp_avg"] for s in states]
        vs = [s["exp_avg_sq"] for s in states]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        # update = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), built in one list of
        # scratch tensors (the memory model's one N-sized list on CUDA).
        update = torch._foreach_div(vs, [1 - b2**t for t in ts])
        torch._foreach_sqrt_(update)
        torch._foreach_add_(update, group["eps"])
        torch._foreach_reciprocal_(update)
        torch._foreach_mul_(update, ms)
        torch._foreach_div_(update, [1 - b1**t for t in ts])
        if group["weight_decay"]:
            torch._foreach_add_(update, params, alpha=group["weight_decay"])
        if group["adapt"]:
            w_norms = torch._foreach_norm([p.float() for p in params])
            u_norms = torch._foreach_norm([u.float() for u in update])
            ratios = []
            for state, w, u, upd in zip(states, w_norms, u_norms, update, strict=True):
                ratio = torch.where((w > 0) & (u > 0), w / u, torch.ones_like(w))
                state["trust_ratio"] = ratio
                ratios.append(ratio.to(upd.dtype))
            torch._foreach_mul_(update, ratios)
        torch._foreach_add_(params, update, alpha=-group["lr"])


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and biases/LayerNorms (no decay, no LAMB adaptation)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if any(mark in name for mark in NO_DECAY_MARKS) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "adapt": True},
        {"params": no_decay, "weight_decay": 0.0, "adapt": False},
    ]


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
) -> Optimizer:
    """``"adamw"`` or ``"lamb"`` over :func:`parameter_groups`."""
    groups = parameter_groups(model, weight_decay)
    if name == "adamw":
        for group in groups:
            group.pop("adapt")
        # The fused kernel (one pass per tensor instead of ~10) exists for CPU and CUDA.
        devices = {p.device.type for group in groups for p in group["params"]}
        fused = devices <= {"cpu", "cuda"} and all(
            p.dtype in (torch.float32, torch.float16, torch.bfloat16)
            for group in groups
            for p in group["params"]
        )
        return torch.optim.AdamW(
            groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None
        )
    if name == "lamb":
        # foreach on GPUs (kernel launches dominate small tensors); the loop on CPU, whose
        # scratch is three copies of the largest tensor instead of one of every tensor.
        on_gpu = {p.device.type for group in groups for p in group["params"]} == {"cuda"}
        return Lamb(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=on_gpu)
    raise InputError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def warmup_linear(step: int, warmup: int, total: int) -> float:
    """LR multiplier for optimizer step ``step`` (0-based): (step + 1) / warmup while warming
    up, so the first step already learns and step ``warmup - 1`` reaches the peak; then a
    straight line from that peak to 0 one step after the last."""
    if step < warmup:
        return (step + 1) / warmup
    peak = max(0, warmup - 1)
    return max(0.0, (total - step) / max(1, total - peak))


def build_scheduler(optimizer: Optimizer, warmup: int, total: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: warmup_linear(step, warmup, total))
