"""The run report: one self-contained HTML file with charts of a warehouse (or its snapshot).

Self-contained because it is opened from a file share, a CI artifact or an e-mail, often offline:
plotly.js is inlined once (~4.8 MB), no script or font is fetched. Rendering lives here, beside the
orchestration that writes it at the end of each run (flows may not import the CLI); the numbers come
from warehouse/report_data.py.
"""

from __future__ import annotations

import html
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import plotly.io as pio
from plotly.offline import get_plotlyjs

from newsetl.warehouse.report_data import ReportData, report_data

# One palette for every chart: articles vs stories read the same everywhere.
ARTICLES, STORIES, DUPLICATES, BAD = "#4C78A8", "#F58518", "#B279A2", "#E45756"
RESOLVED = "#BAB0AC"  # quarantined inputs a later run loaded after all: history, not a problem
DAILY_SPAN_DAYS = 92


def report_path(db: str | Path) -> Path:
    """`<dir>/<stem>.report.html` for the warehouse `<dir>/<stem>.duckdb`."""
    db = Path(db)
    return db.with_name(f"{db.stem}.report.html")


# Figures are plotly.js JSON as plain dicts, not plotly.graph_objects: those check every property
# through plotly's object model, 0.3-0.6 s for these charts at the end of every run, most of it
# deep-copying the "plotly_white" template (plotly's styling of every trace type, ~40 KB of JSON, which
# was also repeated in the HTML of each chart). Of that template, the look these charts use:
_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "zerolinewidth": 2,
         "ticks": "", "automargin": True, "title": {"standoff": 15}}
_WHITE = {"layout": {"paper_bgcolor": "white", "plot_bgcolor": "white", "font": {"color": "#2a3f5f"},
                     "hovermode": "closest", "xaxis": _AXIS, "yaxis": _AXIS,
                     "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692",
                                  "#B6E880", "#FF97FF", "#FECB52"]}}

Figure = dict[str, Any]  # {"data": [trace, ...], "layout": {...}}, as plotly.js takes it


def _plain(values: list[Any]) -> list[Any]:
    """Labels from scraped text (publishers, titles) as text: plotly draws <b>, <i> and <a href> in labels
    as markup, so a scraped "<a href=...>" name would be a link in the chart."""
    return [html.escape(v, quote=False) if isinstance(v, str) else v for v in values]


def _bar(*, marker_color: str | None = None, **trace: Any) -> dict[str, Any]:
    return {"type": "bar", **trace, **({"marker": {"color": marker_color}} if marker_color else {})}


def _scatter(**trace: Any) -> dict[str, Any]:
    return {"type": "scatter", **trace}


def _layout(traces: list[dict[str, Any]], title: str, height: int = 380, **kwargs: Any) -> Figure:
    margin = {"l": 60, "r": 20, "t": 50, "b": 60} | kwargs.pop("margin", {})
    return {"data": traces, "layout": {"title": {"text": title}, "height": height, "margin": margin,
                                       "template": _WHITE, "legend": {"orientation": "h", "y": -0.2}, **kwargs}}


def _charts(data: ReportData) -> list[tuple[str, Figure | None, str]]:
    """(section title, figure or None when there is nothing to draw, a note under it)."""
    out: list[tuple[str, Figure | None, str]] = []

    undated = sum(r["articles"] for r in data.date_sources if r["date_source"] == "undated")
    sources = ", ".join(f"{r['date_source']}: {r['articles']}" for r in data.date_sources)
    fig = None
    if data.daily:
        # Over more than a quarter, one-day bars are too thin to see (dedup-dev spans 14 years): months.
        span = (data.daily[-1]["day"] - data.daily[0]["day"]).days
        per, rows, key = ("day", data.daily, "day") if span <= DAILY_SPAN_DAYS else ("month", data.monthly, "month")
        xs = [r[key] for r in rows]
        fig = _layout([
            _bar(x=xs, y=[r["articles"] for r in rows], name="articles", marker_color=ARTICLES),
            _bar(x=xs, y=[r["stories"] for r in rows], name="stories", marker_color=STORIES),
        ], f"Articles and stories per {per}", barmode="group")
    out.append(("Over time", fig,
                f"Day = publication date, or a real fetch time (HTTP, WARC) when there is none. Articles by "
                f"date source: {sources or 'none'}. {undated} undated articles (files without a date: their "
                "modification time is not a publication date) are not on this chart. Stories are those with "
                "a copy dated that day: a story whose copies carry two dates counts on both (as in "
                "publisher_daily_counts); new stories per day are canonical_articles grouped by its day."))

    fig = None
    if data.publishers:
        names = _plain([r["publisher"] for r in data.publishers])
        fig = _layout([
            _bar(x=names, y=[r["articles"] for r in data.publishers], name="articles", marker_color=ARTICLES),
            _bar(x=names, y=[r["stories"] for r in data.publishers], name="stories", marker_color=STORIES),
        ], "Articles and stories per publisher (largest publishers)", barmode="group")
    out.append(("Per publisher", fig, "Stories: distinct clusters a publisher's articles belong to."))

    fig = None
    if data.publishers:
        fig = _layout([_bar(
            x=_plain([r["publisher"] for r in data.publishers]), y=[r["duplicate_rate"] for r in data.publishers],
            marker_color=DUPLICATES, text=[f"{r['duplicates']}/{r['articles']}" for r in data.publishers],
            name="duplicate rate")], "Duplicate rate per publisher", yaxis={"tickformat": ".0%"})
    t = data.totals
    rate = t["duplicates"] / t["articles"] if t.get("articles") else 0.0
    out.append(("Duplicates", fig, f"Overall: {t.get('duplicates', 0)} of {t.get('articles', 0)} articles "
                                   f"({rate:.1%}) repeat a story already present."))

    fig = None
    if data.clusters:
        rows = list(reversed(data.clusters))
        labels = _plain([f"{_short(r['title'], 60)} [{r['cluster_id'][:8]}]" for r in rows])
        fig = _layout([_bar(
            y=labels, x=[r["copies"] for r in rows], orientation="h", marker_color=STORIES,
            hovertext=_plain([f"publishers: {r['publishers']}" for r in rows]), name="copies")],
            "Biggest story clusters (copies)", height=120 + 28 * len(rows), margin={"l": 420})
    out.append(("Biggest stories", fig, "Hover a bar for the publishers that carried the story; the table "
                                        "below lists them."))

    fig = None
    if data.removals_by_category:
        cats = data.removals_by_category
        fig = _layout([_bar(x=[r["category"] for r in cats], y=[r["removals"] for r in cats],
                            marker_color=ARTICLES, name="spans removed")],
                      "Boilerplate removed, by category (spans)")
    out.append(("Boilerplate by category", fig, ""))

    fig = None
    if data.removals_by_publisher:
        by_cat: dict[str, dict[str, int]] = defaultdict(dict)
        pubs: list[str] = []
        for r in data.removals_by_publisher:
            by_cat[r["category"]][r["publisher"]] = r["removals"]
            if r["publisher"] not in pubs:
                pubs.append(r["publisher"])
        fig = _layout([_bar(x=_plain(pubs), y=[cat.get(p, 0) for p in pubs], name=name)
                       for name, cat in sorted(by_cat.items())],
                      "Boilerplate removed, by publisher and category (spans)", barmode="stack")
    out.append(("Boilerplate by publisher", fig, ""))

    fig = None
    if data.quarantine:
        q = data.quarantine
        labels = [f"{r['stage']}:{r['reason']}" for r in q]
        fig = _layout([_bar(x=labels, y=[r["still_open"] for r in q], marker_color=BAD, name="still open"),
                       _bar(x=labels, y=[r["inputs"] - r["still_open"] for r in q], marker_color=RESOLVED,
                            name="loaded by a later run")],
                      "Quarantined inputs, by stage and reason", barmode="stack")
    out.append(("Quarantine", fig, "" if data.quarantine else "Nothing quarantined."))

    fig = None
    if data.runs:
        xs = [f"{_when(r['started_at'])} {r['run_id'][:6]}" for r in data.runs]
        failed = [x for x, r in zip(xs, data.runs, strict=True) if r["status"] in ("failed", "crashed")]
        stages = sorted({s for r in data.runs for s in r["stages"]})
        fig = _layout(
            [_bar(x=xs, y=[r["stages"].get(s, 0.0) for r in data.runs], name=s) for s in stages]
            + [_scatter(x=xs, y=[r["docs_per_second"] for r in data.runs], name="docs/s", yaxis="y2",
                        mode="lines+markers", line={"color": "black"}),
               _scatter(x=failed, y=[0] * len(failed),
                        name="failed", mode="markers", marker={"color": BAD, "size": 12, "symbol": "x"})],
            "Run health: seconds per stage, summed over parallel batches (bars), docs/s (line), failed runs (x)",
            barmode="stack", yaxis={"title": {"text": "seconds (summed)"}},
            yaxis2={"title": {"text": "docs/s"}, "overlaying": "y", "side": "right"})
    shown = f" (the chart: the latest {len(data.runs)})" if t.get("runs", 0) > len(data.runs) else ""
    out.append(("Run health", fig, f"{t.get('runs', 0)} runs{shown}, {t.get('failed_runs', 0)} failed or crashed, "
                                   f"{t.get('stopped_runs', 0)} stopped (Ctrl-C, SIGTERM). Stage seconds are summed "
                                   "over batches processed in parallel: a stack can be taller than the run."))
    return out


def _short(text: Any, n: int) -> str:
    s = " ".join(("" if text is None else str(text)).split())  # 0 is a number to show, not a blank
    return s if len(s) <= n else s[: n - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_short(r.get(c), 200))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; padding: 0 1rem; max-width: 1200px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.totals { display: flex; flex-wrap: wrap; gap: .75rem; }
.totals div { background: #f4f6f8; padding: .5rem .9rem; border-radius: 6px; }
.totals b { display: block; font-size: 1.3rem; }
.note { color: #555; font-size: .9rem; } .empty { color: #888; font-style: italic; }
table { border-collapse: collapse; font-size: .85rem; margin-top: .5rem; }
td, th { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
"""


def render_report(data: ReportData, title: str) -> str:
    """The report as one HTML document; every chart is a `div.newsetl-chart` drawn by inlined plotly.js."""
    t = data.totals
    totals = "".join(f"<div><b>{html.escape(str(t.get(k, 0)))}</b>{label}</div>" for k, label in (
        ("articles", "articles"), ("stories", "stories"), ("empty_stories", "empty stories"),
        ("duplicates", "duplicates"), ("publishers", "publishers"), ("removals", "spans removed"),
        ("quarantined", "quarantined"), ("runs", "runs"), ("failed_runs", "failed runs")))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style>",
        # Script errors are recorded on <html data-errors>, so a headless browser's DOM dump shows them.
        "<script>window.addEventListener('error', function (e) { var d = document.documentElement;"
        " d.setAttribute('data-errors', (d.getAttribute('data-errors') || '') + (e.message || 'error') + '\\n');"
        " });</script>",
        # The whole of plotly.js, once: the page must draw without network access.
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC.</p>",
        f"<div class='totals'>{totals}</div>",
    ]
    for i, (section, fig, note) in enumerate(_charts(data)):
        parts.append(f"<h2>{html.escape(section)}</h2>")
        if fig is None:
            parts.append("<p class='empty'>No data.</p>")
        else:
            parts.append(pio.to_html(fig, validate=False, full_html=False, include_plotlyjs=False,
                                     div_id=f"chart-{i}", config={"displayModeBar": False, "responsive": True}))
        if note:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        if section == "Biggest stories" and data.clusters:
            parts.append(_table(data.clusters, ["copies", "title", "canonical_publisher", "n_publishers",
                                                "publishers"]))
    if data.runs:
        parts.append("<h2>Runs</h2>")
        parts.append(_table(list(reversed(data.runs[-20:])),
                            ["started_at", "status", "seconds", "read", "loaded", "quarantined",
                             "docs_per_second", "message"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(con: duckdb.DuckDBPyConnection, out: str | Path, title: str) -> Path:
    """Render the report of the database behind `con` into `out`, atomically (a reader of the old
    report never sees half a file)."""
    out = Path(out)
    text = render_report(report_data(con), title)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, text)
    return out


def write_text_atomically(path: Path, text: str) -> None:
    """`text` into `path` whole or not at all: written beside it and renamed over it. On a full disk the
    part written is removed: left behind, it held the space the next run needs, under another pid's name
    each time, and a report written in place was left empty or cut short (a user trial)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
