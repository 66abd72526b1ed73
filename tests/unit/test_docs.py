"""The docs that are generated or promised stay true: the recipe reference matches the schema, every key of the
schema is on it, the README stays short and links only to pages that exist."""

import re
from pathlib import Path

from hubtransfer.recipe.reference import PAGE, reference_markdown
from hubtransfer.recipe.schema import Recipe

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_recipe_reference_is_what_the_schema_generates():
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == reference_markdown(), (
        f"{PAGE} is stale: run `python -m hubtransfer.recipe.reference --write` and commit it"
    )


def test_the_reference_lists_every_key_with_a_description():
    page = reference_markdown()
    rows = dict(re.findall(r"^\| `([^`]+)` \| .*? \| .*? \| (.*) \|$", page, flags=re.M))
    for key in ("task", "model.id", "data.max_length", "train.lr", "train.lr_search.fraction", "heads[].weight"):
        assert key in rows, key
    assert all(description.strip() for description in rows.values()), [k for k, d in rows.items() if not d.strip()]
    top = set(Recipe.model_fields)
    assert top <= set(rows)


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert not missing, missing


def test_every_docs_page_links_resolve():
    broken = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not target.startswith("http") and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert not broken, broken
