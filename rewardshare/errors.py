"""The errors rewardshare raises on purpose: one base class and the few kinds a user catches.

::

    RewardShareError                       every error below
    |-- InvalidArgumentError (ValueError)  a bad argument or input value: the message names it, the value, and
    |                                      what is allowed
    |-- ArtifactError (ValueError)         a saved file (dataset, reward model, benchmark result) cannot be used
    |   |-- IncompatibleArtifactError      another kind of file, another env, another config, or a format version
    |   |   `-- ConfigMismatchError        newer than this package (the message gives both version numbers)
    |   `-- CorruptArtifactError           a checksum, size or shape does not match: truncated, edited or damaged
    `-- BudgetExhausted (RuntimeError)     the simulated teacher has no queries left (defined in
                                           rewardshare.feedback.teacher, re-exported by rewardshare.feedback)

``DatasetFormatError``, ``ModelFormatError`` and ``CurveFormatError`` are other names of :class:`ArtifactError`
(what rewardshare 0.1 raised), so ``except DatasetFormatError`` keeps catching every problem of a dataset
file. Every class but
``BudgetExhausted`` is a ``ValueError``, so code written against plain ``ValueError`` keeps working.

This module imports nothing, so every layer of the package may raise these errors.
"""

from __future__ import annotations


class RewardShareError(Exception):
    """Base class of every error rewardshare raises on purpose (``except RewardShareError`` catches them all)."""


class InvalidArgumentError(RewardShareError, ValueError):
    """An argument or input value is not allowed; the message names the argument, the value and what is allowed."""


class ArtifactError(RewardShareError, ValueError):
    """A saved artifact (feedback dataset, reward model, benchmark results) cannot be used; the message names the
    file and the reason."""


class IncompatibleArtifactError(ArtifactError):
    """A well-formed artifact that does not fit the request: another kind or format, another env's spaces, or a
    format version newer than this rewardshare reads (upgrade rewardshare) or older than it still reads."""


class CorruptArtifactError(ArtifactError):
    """An artifact whose bytes are damaged or were changed: checksum mismatch, truncated file, a size over the
    limit, a shape that does not match its header, or a path that points outside the artifact."""


class ConfigMismatchError(IncompatibleArtifactError):
    """A benchmark results directory or file belongs to a different config than the one in hand."""


#: Other names of :class:`ArtifactError`, kept for code written against rewardshare 0.1.
DatasetFormatError = ArtifactError
ModelFormatError = ArtifactError

__all__ = [
    "ArtifactError", "ConfigMismatchError", "CorruptArtifactError", "DatasetFormatError",
    "IncompatibleArtifactError", "InvalidArgumentError", "ModelFormatError", "RewardShareError",
]
