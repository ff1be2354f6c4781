"""The one exception family of the engine.

Every failure the user can cause (a bad folder, a malformed config, odd text, bad settings)
is raised as a subclass of :class:`BertScopeError` with a one-line message that names the
file, key or value at fault. The CLI prints it as ``error: ...`` and the window shows it in a
dialog; neither ever shows a torch traceback for these.
"""

from __future__ import annotations


class BertScopeError(Exception):
    """Base class: a problem with the user's input, explained in one line."""


class ConfigError(BertScopeError):
    """An invalid or unreadable model configuration."""


class CheckpointError(BertScopeError):
    """A checkpoint folder that is missing, corrupt, unsafe or inconsistent with its config."""


class TokenizerError(BertScopeError):
    """A tokenizer that cannot be loaded, or text that cannot be encoded."""


class InputError(BertScopeError):
    """Bad text or settings passed to an engine function."""


class TrainingError(BertScopeError):
    """A training run that cannot start or had to stop (bad data, NaN loss, out of memory)."""


class DeviceError(BertScopeError):
    """A device that cannot take the work: out of GPU memory, a failed move between devices."""
