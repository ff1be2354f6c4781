"""Cost modelling of whole models: what a configuration costs, predicted and measured.

``params`` counts parameters by component (unique vs effective) with their closed forms;
``flops`` counts FLOPs per token; ``memory`` predicts inference and training memory term by
term; ``measure`` measures memory and latency on a real device; ``compare`` puts two models
side by side. Per-sentence analysis lives in :mod:`core.analysis`.
"""
