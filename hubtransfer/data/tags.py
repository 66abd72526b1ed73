"""IOB2 tag sequences: the scheme check, the tag set, and entity spans.

IOB2: ``O`` outside entities, ``B-TYPE`` on an entity's first word, ``I-TYPE`` on the words that
continue it. The token-classification task expects it because the pipeline's
``aggregation_strategy="simple"`` groups words into entities by exactly these prefixes, and the
entity-level metrics read spans the same way.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^[BI]-\S+$")
OUTSIDE = "O"


def check_iob2(rows: list[list], split: str) -> None:
    """Raise ValueError naming the offending tags when ``rows`` (one tag list per sentence) are not IOB2.

    Two faults are told apart: tags that are not ``O`` / ``B-X`` / ``I-X`` at all (BIOES, bare
    types, integer ids), and IOB1 (an entity may start with ``I-X``), whose spans read differently.
    """
    odd = sorted({str(t) for row in rows for t in row if not (isinstance(t, str) and (t == OUTSIDE or _TAG.match(t)))})
    if odd:
        raise ValueError(
            f"token classification expects IOB2 tags ('O', 'B-TYPE', 'I-TYPE'); the {split} split has {len(odd)} "
            "other tag(s): "
            f"{odd[:8]}{' ...' if len(odd) > 8 else ''}. Convert them to IOB2 (e.g. BIOES S-X -> B-X, E-X -> I-X; "
            "integer ids -> their names, or give the column a Sequence(ClassLabel) feature)"
        )
    starts = [(i, j, row[j]) for i, row in enumerate(rows) for j in range(len(row)) if _opens_with_inside(row, j)]
    if starts:
        i, j, tag = starts[0]
        raise ValueError(
            f"token classification expects IOB2 tags, where every entity starts with B-; the {split} split has "
            f"{len(starts)} "
            f"entit(ies) starting with I- (first: row {i}, word {j}, '{tag}' after "
            f"'{rows[i][j - 1] if j else 'the sentence start'}'), "
            "which is IOB1. Convert to IOB2: an I-X that does not follow B-X or I-X becomes B-X"
        )


def _opens_with_inside(row: list[str], j: int) -> bool:
    """An I-X whose previous tag is not B-X / I-X (an "O" or another type's tag)."""
    previous = row[j - 1] if j else OUTSIDE
    return row[j].startswith("I-") and previous[2:] != row[j][2:]


def tag_set(rows: list[list[str]]) -> list[str]:
    """The tags of ``rows``, sorted, with "O" first (id 0, as in most NER datasets)."""
    seen = {t for row in rows for t in row}
    return ([OUTSIDE] if OUTSIDE in seen else []) + sorted(seen - {OUTSIDE})


def entity_types(tags: list[str]) -> list[str]:
    """The entity types a tag set names, sorted: ['B-LOC', 'I-LOC', 'B-PER'] -> ['LOC', 'PER']."""
    return sorted({t[2:] for t in tags if t != OUTSIDE})
