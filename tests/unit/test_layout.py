"""The layout's rules, read from the source: names looked up once, no string comparisons for what objects know,
no imports hidden in functions (docs/architecture.md)."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hubtransfer"

# Where a name may still become an object: the registries themselves, job.py (the recipe's names, once), the
# `--strategies` names of the strategy sweep's command line, and the readers of saved run folders (a name in a file).
LOOKUP_ALLOWED = {
    "job.py",
    "strategies/__init__.py",
    "tasks/__init__.py",
    "recipe/refs.py",
    "evidence/strategy_sweep.py",
    "inference.py",
    "push/roundtrip.py",
    "card/folder.py",
    "card/sections.py",
}
LOOKUP = re.compile(r"\b(get_task|get_strategy|parse_strategy_ref)\(")
STRING_COMPARE = re.compile(
    r"\.(problem|task|strategy)\s*(==|!=)\s*[\"']|[\"']\s*(==|!=)\s*\w+\.(problem|task|strategy)\b"
)
LATE_IMPORT = re.compile(r"^\s+(from hubtransfer[\w.]* import|import hubtransfer)")


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8").splitlines()


def test_names_are_looked_up_once():
    found = [
        f"{name}:{i}: {line.strip()}"
        for name, lines in _sources()
        if name not in LOOKUP_ALLOWED
        for i, line in enumerate(lines, 1)
        if LOOKUP.search(line) and not line.lstrip().startswith("def ")
    ]
    assert not found, "look the name up in job.job_for and pass the object on:\n" + "\n".join(found)


def test_no_string_comparisons_of_task_problem_or_strategy():
    found = [
        f"{name}:{i}: {line.strip()}"
        for name, lines in _sources()
        for i, line in enumerate(lines, 1)
        if STRING_COMPARE.search(line)
    ]
    assert not found, "ask the Job's objects (job.task, job.problem, job.strategy):\n" + "\n".join(found)


def test_imports_inside_functions_say_why():
    # The command line imports its subcommand's stack only when that subcommand runs (a fast --help); anywhere
    # else a late import must say why in a 'late:' comment, or it may be hiding a cycle.
    found = [
        f"{name}:{i}: {line.strip()}"
        for name, lines in _sources()
        if not name.startswith("cli/")
        for i, line in enumerate(lines, 1)
        if LATE_IMPORT.match(line) and "late:" not in line
    ]
    assert not found, "hoist these imports to the module top (import-linter guards the layers):\n" + "\n".join(found)


def test_the_rules_would_catch_a_violation():
    assert LOOKUP.search("    strategy = get_strategy(recipe.strategy)")
    assert STRING_COMPARE.search('    if recipe.problem == "regression":')
    assert STRING_COMPARE.search('    if "full" != job.strategy:')
    assert LATE_IMPORT.match("    from hubtransfer.save import plots")
    assert not LATE_IMPORT.match("from hubtransfer.save import plots")
