"""Reading what was made: a few kept and rejected posts per class printed at the end of a run, and
`review.html`, one self-contained page (inline CSS and JS, no CDN) of synthetic.jsonl and rejected.jsonl
that sorts and filters in any browser, so a person can judge the set before training on it. The view
(status, label, text filter, sort column) can also be set by the link: `review.html#status=rejected&sort=teacher`."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentisynth.utils import atomic_write_text

COLUMNS = ["status", "label", "text", "reason", "teacher", "perplexity", "keywords", "guidance", "id"]


def review_row(r: dict[str, Any], status: str) -> dict[str, Any]:
    """One table row: verdict, label, text, why it was dropped, filter scores and provenance."""
    prov = r.get("provenance") or {}
    teacher = r.get("teacher") or {}
    conf = teacher.get("confidence") if isinstance(teacher, dict) else teacher
    reason = r.get("reject_reason") or ""
    if r.get("rejected_by"):
        reason = f"{r['rejected_by']}: {reason}" + (
            f" ({r['reject_detail']})" if r.get("reject_detail") else ""
        )
    return {
        "status": status,
        "label": r.get("label_name", r.get("label")),
        "text": r.get("text", ""),
        "reason": reason,
        "teacher": None if conf is None else round(float(conf), 3),
        "perplexity": None if r.get("perplexity") is None else round(float(r["perplexity"]), 1),
        "keywords": ", ".join(map(str, prov.get("keywords") or [])),
        "guidance": prov.get("guidance") or "",
        "id": r.get("id", ""),
    }


def short(text: str, width: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def sample_lines(
    kept: Sequence[dict], rejected: Sequence[dict], names: Sequence[str], k: int = 2
) -> list[str]:
    """`k` kept and `k` rejected posts per class (first in file order), rejected ones with their reason."""
    lines = []
    for c, name in enumerate(names):
        ok = [r for r in kept if int(r["label"]) == c][:k]
        bad = [r for r in rejected if int(r["label"]) == c][:k]
        lines.append(f"  {name}:")
        lines += [f"    kept      {short(r['text'])}" for r in ok]
        lines += [f"    rejected  [{review_row(r, 'rejected')['reason']}] {short(r['text'])}" for r in bad]
        if not ok and not bad:
            lines.append("    (no posts)")
    return lines


def write_review_html(out: Path, kept: Sequence[dict], rejected: Sequence[dict], title: str) -> Path:
    """`review.html` beside synthetic.jsonl: every kept and rejected post in one sortable, filterable table."""
    rows = [review_row(r, "kept") for r in kept] + [review_row(r, "rejected") for r in rejected]
    data = json.dumps(rows, ensure_ascii=False).replace("</", "<\\/")  # no early </script>
    page = PAGE.format(
        title=html.escape(title),
        n_kept=len(kept),
        n_rejected=len(rejected),
        head="".join(f'<th data-col="{c}">{c}</th>' for c in COLUMNS),
        data=data,
        columns=json.dumps(COLUMNS),
    )
    path = out / "review.html"
    atomic_write_text(path, page)
    return path


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }}
th {{ cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }}
tr.rejected td {{ color: #8a1c1c; }}
#controls * {{ margin-right: 1em; }}
</style></head><body>
<h1>{title}</h1>
<p>{n_kept} kept, {n_rejected} rejected. Click a column header to sort; type to filter.</p>
<div id="controls">
<label>status <select id="status"><option value="">all</option><option>kept</option>
<option>rejected</option></select></label>
<label>label <select id="label"><option value="">all</option></select></label>
<label>text or reason contains <input id="q" type="search"></label>
<span id="count"></span></div>
<table id="posts"><thead><tr>{head}</tr></thead><tbody></tbody></table>
<script>
const ROWS = {data};
const COLS = {columns};
let sortCol = null, sortDir = 1;
const $ = (id) => document.getElementById(id);
for (const l of [...new Set(ROWS.map((r) => String(r.label)))].sort()) {{
  const o = document.createElement("option"); o.textContent = l; $("label").appendChild(o);
}}
function render() {{
  const st = $("status").value, lb = $("label").value, q = $("q").value.toLowerCase();
  let rows = ROWS.filter((r) => (!st || r.status === st) && (!lb || String(r.label) === lb) &&
    (!q || (r.text + " " + r.reason).toLowerCase().includes(q)));
  if (sortCol) rows.sort((a, b) => {{
    const x = a[sortCol], y = b[sortCol];
    if (x === y) return 0; if (x === null) return 1; if (y === null) return -1;
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * sortDir;
  }});
  const body = document.querySelector("#posts tbody"); body.textContent = "";
  for (const r of rows) {{
    const tr = document.createElement("tr"); tr.className = r.status;
    for (const c of COLS) {{ const td = document.createElement("td");
      td.textContent = r[c] === null ? "" : r[c]; tr.appendChild(td); }}
    body.appendChild(tr);
  }}
  $("count").textContent = rows.length + " shown";
}}
document.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {{
  const c = th.dataset.col; sortDir = sortCol === c ? -sortDir : 1; sortCol = c; render();
}}));
for (const id of ["status", "label", "q"]) $(id).addEventListener("input", render);
// a link can carry the view: review.html#status=rejected&label=joy&q=love&sort=teacher&dir=-1
const h = new URLSearchParams(location.hash.slice(1));
for (const id of ["status", "label", "q"]) if (h.has(id)) $(id).value = h.get(id);
if (h.has("sort")) {{ sortCol = h.get("sort"); sortDir = Number(h.get("dir") || 1); }}
render();
</script></body></html>
"""
