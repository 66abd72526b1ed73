"""Every error hubtransfer raises for a user to fix: one base class, one subclass per stage of the flow.

The CLI turns any :class:`HubtransferError` into one line on stderr and exit code 2; each message says what was
wrong, what was got and how to fix it. The subclasses keep the builtin they were before the base existed
(``ValueError`` for bad input, ``RuntimeError`` for failures while running), so ``except ValueError`` still works.
"""

from __future__ import annotations


class HubtransferError(Exception):
    """Base of the errors a user can act on."""


class RecipeError(HubtransferError, ValueError):
    """A recipe that cannot run. The message lists every problem with its key and a fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"The recipe has {len(problems)} problem(s):\n{lines}")


class DataError(HubtransferError, ValueError):
    """Data that cannot be used, with what was wrong and how to fix it."""


class ImageDataError(DataError):
    """An image that cannot be read, with its position and the fix."""


class ModelSourceError(HubtransferError, ValueError):
    """A checkpoint that cannot be used, with the fix."""


class ProcessorError(HubtransferError, ValueError):
    """A checkpoint without the tokenizer / image processor its task needs, with the fix."""


class StrategyError(HubtransferError, ValueError):
    """A strategy the model cannot follow (too many blocks, no backbone), with the fix."""


class TrainingError(HubtransferError, RuntimeError):
    """Training that cannot go on (NaN loss, ...), with the fix."""


class OutputDirError(HubtransferError, ValueError):
    """An output folder that would be overwritten, with the fix."""


class PushError(HubtransferError, RuntimeError):
    """A push that failed after its retries; the local run folder is complete and ``hubtransfer push`` resumes it."""
