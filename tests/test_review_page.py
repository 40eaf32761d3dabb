"""Issue 28 item 3: the review page (`review.html`) and the end-of-run samples."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sentisynth.generation.review import sample_lines, write_review_html

NAMES = ["anger", "joy"]
KEPT = [
    {
        "id": "a1",
        "label": 0,
        "label_name": "anger",
        "text": "so mad at the traffic today",
        "teacher": {"confidence": 0.91},
        "provenance": {"guidance": "shap", "keywords": ["mad", "traffic"]},
    },
    {
        "id": "j1",
        "label": 1,
        "label_name": "joy",
        "text": "what a lovely day </script><b>x</b>",
        "teacher": {"confidence": 0.55},
        "provenance": {"guidance": "shap", "keywords": ["lovely"]},
    },
]
REJECTED = [
    {
        "id": "a2",
        "label": 0,
        "label_name": "anger",
        "text": "happy happy joy",
        "rejected_by": "teacher",
        "reject_reason": "low_confidence",
        "teacher": {"confidence": 0.12},
        "provenance": {"keywords": ["mad"]},
    },
]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.srcs += [v for k, v in attrs if k in ("src", "href") and v]


def test_review_page_is_self_contained_and_escapes_posts(tmp_path: Path) -> None:
    page = write_review_html(tmp_path, KEPT, REJECTED, "synthetic set")
    text = page.read_text()
    parser = Tags()
    parser.feed(text)
    assert parser.srcs == []  # no CDN, no external file
    assert parser.tags.count("script") == 1 and "table" in parser.tags
    assert text.count("</script>") == 1  # a post cannot close the inline script
    assert "low_confidence" in text and "0.91" in text


def test_end_of_run_lines_show_kept_and_rejected_with_reason() -> None:
    lines = sample_lines(KEPT, REJECTED, NAMES, k=2)
    assert "  anger:" in lines and any("kept" in x and "traffic" in x for x in lines)
    assert any("rejected  [teacher: low_confidence]" in x for x in lines)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def dom(browser: str, page: Path, fragment: str, tmp_path: Path) -> str:
    """The rendered table body and the "N shown" count after the page's script ran."""
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=2000",
        "--dump-dom",
        f"{page.as_uri()}#{fragment}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return out.split("<tbody>")[1].split("</tbody>")[0] + out.split('id="count">')[1].split("<")[0]


@pytest.mark.slow  # a real headless browser (Debian `chromium`); skipped where none is installed
def test_review_page_renders_sorts_and_filters_in_a_browser(tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    page = write_review_html(tmp_path, KEPT, REJECTED, "synthetic set")
    everything = dom(browser, page, "", tmp_path)
    assert "3 shown" in everything and everything.count('<tr class="') == 3
    rejected = dom(browser, page, "status=rejected", tmp_path)
    assert "1 shown" in rejected and "happy happy joy" in rejected and "traffic" not in rejected
    by_teacher = dom(browser, page, "sort=teacher&dir=-1", tmp_path)
    order = [by_teacher.index(t) for t in ("traffic", "lovely day", "happy happy joy")]
    assert order == sorted(order)  # 0.91, 0.55, 0.12: descending confidence
    assert "<b>x</b>" not in by_teacher  # shown as text, not markup
