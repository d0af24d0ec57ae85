"""The bench's self-contained HTML page: conditions, results, comparisons and three plots.

Plots (inline SVG from :mod:`harness.bench.svg`): throughput over time, latency CDF, and
throughput against the number of associations for a sweep. No JavaScript, no external CSS
or fonts: the file can be mailed or archived as it is. The Bench JSON is embedded too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harness.bench.svg import Series, line_chart

TEMPLATE = "bench.html.j2"  # beside this module


def _plots(doc: dict[str, Any]) -> list[tuple[str, Markup]]:
    sweep = doc["sweep"]

    def name(p: dict[str, Any]) -> str:
        return f"{p['conditions']['associations']} assoc"

    over_time = [Series(name(p), [(pt["t_s"], pt["instances_per_s"]) for pt in p["series"]])
                 for p in sweep]
    cdf = [Series(name(p), [(ms, f * 100) for ms, f in p["latency_cdf"]]) for p in sweep]
    plots = [
        ("Throughput over time", line_chart(
            over_time, x_label="time since the measured phase started (s)",
            y_label="instances/s", title="Throughput over time")),
        ("Latency CDF", line_chart(
            cdf, x_label="latency, request sent to response received (ms)",
            y_label="% of stores at or below", title="Latency CDF", log_x=True)),
    ]
    if len(sweep) > 1:
        compared = all("compare" in p for p in sweep)
        # Against DCMTK both lines use the comparison's basis (medians, connect to release).
        ours = [(p["conditions"]["associations"],
                 _median(p["compare"]["ours_session_instances_per_s"]) if compared
                 else p["instances_per_s"]) for p in sweep]
        series = [Series("harness", ours, markers=True)]
        if compared:
            series.append(Series("DCMTK storescu", [(p["conditions"]["associations"], _median(
                p["compare"]["dcmtk_net_instances_per_s"])) for p in sweep], markers=True))
        ticks = sorted({p["conditions"]["associations"] for p in sweep})
        plots.append(("Throughput against concurrency", line_chart(
            series, x_label="associations", y_label="instances/s",
            title="Throughput against concurrency", x_ticks=ticks)))
    return [(title, Markup(svg)) for title, svg in plots]


def _median(values: list[float]) -> float:
    from harness.bench.stats import median

    return median(values) if values else 0.0


def render(doc: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.bench", "."),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    compare = [{"associations": p["conditions"]["associations"],
                "ours": round(_median(p["compare"]["ours_session_instances_per_s"]), 1),
                "theirs": round(_median(p["compare"]["dcmtk_net_instances_per_s"]), 1),
                "ratio": p["compare"]["ratio"], "version": p["compare"]["version"],
                "cpu_ours": _median(p["compare"]["ours_cpu_us_per_instance"]),
                "cpu_theirs": _median(p["compare"]["dcmtk_cpu_us_per_instance"]),
                "env": ", ".join(f"{k}={v}" for k, v in p["compare"]["env"].items()),
                "definition": p["compare"]["ratio_definition"]}
               for p in doc["sweep"] if "compare" in p]
    loopback = [{"associations": p["conditions"]["associations"], "ours": p["mb_per_s"],
                 "theirs": p["loopback"]["mb_per_s"], "ratio": p["loopback"]["ratio"],
                 "files": p["loopback"].get("files", {}).get("mb_per_s"),
                 "files_ratio": p["loopback"].get("files", {}).get("ratio")}
                for p in doc["sweep"] if "loopback" in p]
    process = [{"associations": p["conditions"]["associations"], **p["target_process"]}
               for p in doc["sweep"] if p.get("target_process", {}).get("available")]
    return env.get_template(TEMPLATE).render(
        doc=doc, compare=compare, loopback=loopback, process=process, plots=_plots(doc),
        json_text=json.dumps(doc, indent=1))


def write_html(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(doc), encoding="utf-8")
    tmp.replace(path)
    return path
