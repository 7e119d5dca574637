"""Write docs/results.md from the benchmark records in bench/results/*.json.

    python scripts/results_page.py           # (re)write docs/results.md
    python scripts/results_page.py --check   # exit 1 when it does not match the records

Every record names its ``kind``; bench/reporting.py turns each kind into
Markdown, the same text the benchmark printed. The page holds nothing
else but the list of recipes no record names, so every figure on it has
its record, its machine and its command, and a sample grid it shows must
exist. A record of an unknown kind is an error, not a silent omission.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
OUTPUT = REPO / "docs" / "results.md"
COMMAND = "python scripts/results_page.py"

sys.path.insert(0, str(REPO / "bench"))
from reporting import COMBINED_SECTIONS, SECTIONS  # noqa: E402  (bench/ is a folder of scripts, not a package)

INTRO = """\
# Results

What gankit's recipes and techniques achieve, measured. Every figure below
comes from a record in `bench/results/`, made by the command printed with
it, on the machine and versions named with it; the training commands are
the ones a user would run, and the sample grids are the EMA generator's
images at the end of the first seed's run. This page is written by
`{command}` from those records, and a test checks that it matches them.

The metrics are described in [metrics.md](metrics.md).
"""


#: The page's order: real data first (the digits quickstart, CIFAR-10, the
#: comparison with reference implementations), then the built-in shapes and toys.
QUICKSTART_HEADING = "The quickstart: handwritten digits"
ORDER = ("quickstart", "cifar10", "reference_parity", "recipe", "toy2d", "outcome_spread", "throughput", "msggan_ablation", "thread_load")


def render(results: Path = RESULTS) -> str:
    records = []
    known = {*SECTIONS, *COMBINED_SECTIONS}
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text())
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in known:
            raise ValueError(f"{path}: 'kind' is {kind!r}; expected one of {', '.join(sorted(known))}")
        records.append((path, record))
    lines = [INTRO.format(command=COMMAND)]
    for place in ORDER:
        if place in COMBINED_SECTIONS:
            heading, combined = COMBINED_SECTIONS[place]
            chosen = [(path, record) for path, record in records if record["kind"] == place]
            if chosen:
                lines += [f"## {heading}", "", *combined([record for _, record in chosen]), ""]
                lines += ["<sub>records: " + ", ".join(f"`{path.relative_to(REPO)}`" for path, _ in chosen) + "</sub>", ""]
            continue
        kind = "recipe" if place == "quickstart" else place
        heading, section = SECTIONS[kind]
        chosen = [
            (path, record)
            for path, record in records
            if record["kind"] == kind and (kind != "recipe" or (record.get("recipe") == "quickstart") == (place == "quickstart"))
        ]
        if not chosen:
            continue
        lines += [f"## {QUICKSTART_HEADING if place == 'quickstart' else heading}", ""]
        for path, record in chosen:
            lines += [*section(record), "", f"<sub>record: `{path.relative_to(REPO)}`</sub>", ""]
    if unmeasured := recipes_without_record([record for _, record in records]):
        lines += ["## Recipes without a record", "", NOT_MEASURED, "", ", ".join(f"`{name}`" for name in unmeasured), ""]
    return "\n".join(lines).rstrip() + "\n"


NOT_MEASURED = """\
No record here names these recipes yet, so this page does not say how well
they train; their plugins' READMEs say what was measured of them. Most need
data that must be downloaded first, and the budgets their papers' figures
assume take a GPU."""


def recipes_without_record(records: list[dict]) -> list[str]:
    """The recipes in recipes/ that no record names (as ``"name"`` or its path)."""
    text = "\n".join(json.dumps(record) for record in records)
    return [
        path.stem
        for path in sorted((REPO / "recipes").glob("*.toml"))
        if f'"{path.stem}"' not in text and f"recipes/{path.name}" not in text
    ]


def missing_pictures(page: str) -> list[str]:
    return [target for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page) if not (OUTPUT.parent / target).is_file()]


def check() -> str | None:
    """What is wrong with docs/results.md, or None."""
    page = render()
    if missing := missing_pictures(page):
        return f"sample grids missing: {', '.join(missing)}"
    if not OUTPUT.is_file() or OUTPUT.read_text() != page:
        return f"does not match bench/results/*.json; run `{COMMAND}`"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/results.md does not match the records")
    args = parser.parse_args()
    if args.check:
        problem = check()
        print(f"docs/results.md: {problem}" if problem else "docs/results.md is up to date")
        return 1 if problem else 0
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
