"""LAMB (You et al. 2020, "Large batch optimization for deep learning: training BERT in 76
minutes"), Algorithm 2, the optimizer ALBERT was pre-trained with (Lan et al. 2020, Section 4.1).

Adam's two moment estimates per parameter, then a per-tensor trust ratio ||w|| / ||update||
rescales the step. PyTorch has no LAMB, so this is the reference implementation the memory
measurement runs (and that a trainer may use): two fp32 state tensors per parameter, as AdamW.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Lamb(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        bias_correction: bool = True,
    ):
        if lr <= 0.0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, bias_correction=bias_correction
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                if group["bias_correction"]:
                    m_hat_scale = 1.0 / (1 - beta1 ** state["step"])
                    v_hat_scale = 1.0 / (1 - beta2 ** state["step"])
                else:
                    m_hat_scale = v_hat_scale = 1.0
                update = (m * m_hat_scale) / (v * v_hat_scale).sqrt_().add_(group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                w_norm = torch.linalg.vector_norm(p)
                u_norm = torch.linalg.vector_norm(update)
                trust = torch.where(
                    (w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm)
                )
                p.add_(update * trust, alpha=-group["lr"])
        return loss
