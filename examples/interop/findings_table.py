"""Print a results JSON's findings (fail / warn / info) as a Markdown table for a README.

    python examples/interop/findings_table.py reports/dcmtk/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = {"fail": 0, "error": 1, "warn": 2, "info": 3}


def table(results: dict[str, object], outcomes: tuple[str, ...] = ("fail", "error", "warn")
          ) -> str:
    rows = ["| scenario | outcome | rule | why |", "|---|---|---|---|"]
    scenarios = [s for s in results["scenarios"]  # type: ignore[attr-defined]
                 if s["outcome"] in outcomes]
    scenarios.sort(key=lambda s: (ORDER.get(s["outcome"], 9), s["id"]))
    for s in scenarios:
        bad = [c for c in s.get("checks", []) if c["outcome"] in ("fail", "warn")]
        text = f"{bad[0]['observed']} (expected {bad[0]['expected']})" if bad else s["observed"]
        why = " ".join(text.split())[:150].replace("|", "/")
        rule = ", ".join(s["references"][:2])
        rows.append(f"| `{s['id']}` | {s['outcome']} ({s['severity']}) | {rule} | {why} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: findings_table.py RESULTS.json", file=sys.stderr)
        return 2
    try:
        results = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"findings_table.py: {argv[0]}: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
