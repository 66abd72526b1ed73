"""Evidence that transfer helped, and how to transfer: from-scratch comparison, data-size sweep, strategy sweep,
source effect.

Each command fine-tunes variants of one recipe (:mod:`hubtransfer.variants`), next to a classical baseline
(:mod:`hubtransfer.checks.baselines`), reads numbers off the curves (:mod:`.curves`) and writes a JSON report, a
markdown table and a PNG into one evidence folder (default ``OUTPUT_DIR-evidence``). A run of the
recipe itself copies those reports into its folder and the model card gets a "Transfer evidence"
section (:mod:`hubtransfer.card.evidence`).
"""

from __future__ import annotations

from pathlib import Path

from hubtransfer.files import evidence_dir


def default_dir(recipe) -> Path:
    """Where a recipe's evidence reports go unless told otherwise (``OUTPUT_DIR-evidence``)."""
    return evidence_dir(recipe.output_dir)
