"""The previous and the new version on the old and the new test splits: forgetting, backward transfer, the gate
before a push, and the card's "Versions" section."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Versions:
    parent: str  # repo@revision (or the folder) of the previous version
    parent_sha: str | None
    method: str
    old_test: dict  # {"previous": accuracy, "new": accuracy}
    new_test: dict
    data: dict  # what the update added (sizes, replayed examples, new labels)
    alpha: dict | None = None  # method interpolate: the chosen average and its validation scores

    @property
    def forgetting(self) -> float:
        """Points of old-test accuracy lost against the previous version (negative: gained)."""
        return round(100 * (self.old_test["previous"] - self.old_test["new"]), 2)

    @property
    def backward_transfer(self) -> float:
        return -self.forgetting

    @property
    def average(self) -> float:
        """The new version's mean of old- and new-test accuracy."""
        return (self.old_test["new"] + self.new_test["new"]) / 2

    def to_dict(self) -> dict:
        return asdict(self) | {
            "forgetting_points": self.forgetting,
            "backward_transfer_points": self.backward_transfer,
            "average_accuracy": self.average,
        }


def gate(v: Versions, max_forgetting: float, force: bool) -> str | None:
    """Why the new version must not be pushed, in one line (None: it may)."""
    if v.forgetting <= max_forgetting:
        return None
    line = (
        f"v2 ({v.method}) loses {v.forgetting:.2f} points of old-test accuracy against {v.parent} "
        f"({v.old_test['previous']:.4f} -> {v.old_test['new']:.4f}; new test {v.new_test['previous']:.4f} -> "
        f"{v.new_test['new']:.4f}), above update.max_forgetting={max_forgetting:g}"
    )
    if force:
        return None
    others = [m for m in ("replay", "distill", "interpolate", "joint") if m != v.method]
    return (
        f"push refused: {line}. The run folder is complete. Options: update.method={' | '.join(others)}"
        + (", a larger update.replay_fraction" if v.method == "replay" else "")
        + ", or update.force=true to push it anyway"
    )


def section(v: Versions) -> str:
    """The card's "Versions" section (markdown)."""
    sha = f" (commit `{v.parent_sha[:12]}`)" if v.parent_sha else ""
    added = v.data
    lines = [
        f"This version continues **{v.parent}**{sha} with method `{v.method}`: {added['new_train']:,} new training "
        f"examples"
        + (f" and {added['old_examples_replayed']:,} of the previous ones" if added["old_examples_replayed"] else "")
        + (f"; new labels: {', '.join(added['new_labels'])}" if added["new_labels"] else "")
        + ".",
        "",
        "| version | old test accuracy | new test accuracy | mean |",
        "|---|---|---|---|",
        f"| previous ({v.parent}) | {v.old_test['previous']:.4f} | {v.new_test['previous']:.4f} | "
        f"{(v.old_test['previous'] + v.new_test['previous']) / 2:.4f} |",
        f"| this model | {v.old_test['new']:.4f} | {v.new_test['new']:.4f} | {v.average:.4f} |",
        "",
        f"Forgetting (old-test accuracy lost): {v.forgetting:+.2f} points; backward transfer "
        f"{v.backward_transfer:+.2f}.",
    ]
    if v.alpha:
        lines.append(
            f"Weights: {v.alpha['alpha']:g} x this training + {1 - v.alpha['alpha']:g} x the previous version "
            "(chosen on the old and new validation splits)."
        )
    return "\n".join(lines)
