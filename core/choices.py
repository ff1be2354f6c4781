"""The names a setting may take, without torch: a configuration is checked (and a form or an
argument parser offers its choices) before torch is loaded. :mod:`core.precision` maps the
precisions to dtypes and :mod:`core.training.optim` builds the optimizers."""

# Resolved precisions: plain fp32, or bf16/fp16 autocast.
PRECISION_NAMES: tuple[str, ...] = ("fp32", "bf16", "fp16")
# What a user may ask for: a precision, or "auto" (resolved per device).
PRECISION_CHOICES: tuple[str, ...] = ("auto", *PRECISION_NAMES)
OPTIMIZERS: tuple[str, ...] = ("adamw", "lamb")
