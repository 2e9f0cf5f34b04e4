"""The report's Mermaid charts checked by mermaid itself: its parser (node) and a real browser.

Needs node with `tests/js` installed (`npm ci --prefix tests/js`) and Debian's `chromium`. Without
them the tests skip on a developer machine and FAIL in CI (`CI=true`).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.report import GITHUB_COMMENT_LIMIT, Trend, TrendPoint, build_report
from mlops_ci.report.mermaid import chart_text, xychart
from tests.report.test_report_inputs import make_comparison, make_verdict
from tests.report.test_report_markdown import hostile_comparison, hostile_verdict

pytestmark = pytest.mark.integration  # runs Mermaid under node

JS_DIR = Path(__file__).parents[1] / "js"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
MERMAID_JS = JS_DIR / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require(condition: bool, what: str) -> None:
    """Skip without the tool on a developer machine; in CI a missing tool is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not installed")


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", markdown, flags=re.DOTALL)


def sample_trend() -> Trend:
    shas = [f"{i:x}" * 40 for i in range(1, 6)]
    return Trend(
        ref="main",
        metrics=["accuracy", "f1"],
        points=[
            TrendPoint(
                sha=s[:40],
                subject=f"commit {i}",
                values={"accuracy": 0.93 + i / 200, "f1": 0.92 + i / 300},
            )
            for i, s in enumerate(shas)
        ],
    )


def parse_with_mermaid(sources: list[str]) -> list[dict]:
    require(shutil.which("node") is not None, "node")
    require((JS_DIR / "node_modules" / "mermaid").is_dir(), "npm packages in tests/js (npm ci)")
    proc = subprocess.run(
        ["node", str(JS_DIR / "parse-mermaid.mjs")],
        input=json.dumps(sources),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def reports() -> dict[str, str]:
    return {
        "realistic": build_report(
            make_comparison(), make_verdict(), limit=GITHUB_COMMENT_LIMIT, trend=sample_trend()
        ).markdown,
        "hostile": build_report(
            hostile_comparison(), hostile_verdict(), limit=GITHUB_COMMENT_LIMIT
        ).markdown,
    }


def test_every_chart_parses_with_mermaid(reports: dict[str, str]) -> None:
    sources = [block for markdown in reports.values() for block in mermaid_blocks(markdown)]
    assert len(sources) == 3 + 2 + 3  # plots + trend (realistic), plots (hostile)
    # and a chart of labels and numbers mermaid's grammar would choke on if not cleaned
    sources.append(
        xychart(
            'x" %%{init}%% `a` <b> ]\n[',
            x_label='"',
            y_label="-->",
            categories=['"q"', "[x]", "a,b", ""],
            series=[("bar", [1e-9, -3.5e12, float("nan"), 2])],
        )
    )
    results = parse_with_mermaid(sources)
    bad = [(s, r["error"]) for s, r in zip(sources, results, strict=False) if not r["ok"]]
    assert bad == []
    assert {r["type"] for r in results} == {"xychart"}
    # the parser is strict: a broken chart is reported, so the check above means something
    assert not parse_with_mermaid(["xychart-beta\n  x-axis [a, b\n  line [1"])[0]["ok"]
    assert chart_text('"--> %%') == "--"
    assert chart_text('"%%') == "-"


def report_page(markdown: str) -> str:
    """The report as GitHub would show it: cmark-gfm's HTML, then mermaid on each block."""
    body = cmarkgfm.markdown_to_html_with_extensions(
        markdown,
        options=Options.CMARK_OPT_GITHUB_PRE_LANG | Options.CMARK_OPT_UNSAFE,
        extensions=["table", "strikethrough", "autolink", "tagfilter", "tasklist"],
    )
    script = MERMAID_JS.read_text(encoding="utf-8").replace("</script", "<\\/script")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>report</title>
<style>body {{ font-family: sans-serif; max-width: 960px; margin: 16px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}</style>
</head><body>
{body}
<pre id="result">pending</pre>
<script>{script}</script>
<script>
(async () => {{
  const out = document.getElementById('result');
  const result = {{charts: 0, svgs: 0, xycharts: 0, errors: []}};
  mermaid.initialize({{startOnLoad: false, securityLevel: 'strict'}});
  const blocks = Array.from(document.querySelectorAll('pre[lang="mermaid"]'));
  result.charts = blocks.length;
  for (const [i, pre] of blocks.entries()) {{
    try {{
      const {{svg}} = await mermaid.render('chart' + i, pre.textContent);
      const holder = document.createElement('div');
      holder.className = 'chart';
      holder.innerHTML = svg;
      pre.replaceWith(holder);
    }} catch (err) {{
      result.errors.push(String(err && err.message || err));
    }}
  }}
  const svgs = Array.from(document.querySelectorAll('div.chart > svg'));
  result.svgs = svgs.length;
  result.xycharts = svgs.filter(s => s.getAttribute('aria-roledescription') === 'xychart').length;
  result.errorSvgs = svgs.filter(s => s.getAttribute('aria-roledescription') === 'error').length;
  out.textContent = 'RESULT:' + JSON.stringify(result);
}})();
</script></body></html>"""


def run_chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_report_page_draws_every_chart_in_chromium(reports: dict[str, str], tmp_path: Path) -> None:
    require(shutil.which("chromium") is not None, "chromium (apt-get install chromium)")
    require(MERMAID_JS.is_file(), "npm packages in tests/js (npm ci)")
    markdown = reports["realistic"]
    page = tmp_path / "report.html"
    page.write_text(report_page(markdown), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-page.png"
    shot.unlink(missing_ok=True)
    # One browser run gives both the page as drawn and its picture.
    proc = run_chromium(
        page, tmp_path, "--dump-dom", f"--screenshot={shot}", "--window-size=1000,4200",
        "--hide-scrollbars",
    )  # fmt: skip
    found = re.search(r"RESULT:(\{.*?\})</pre>", proc.stdout)
    assert found, f"the page script did not finish: {proc.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert result["errors"] == []
    assert result["charts"] == len(mermaid_blocks(markdown)) == 5
    assert result["svgs"] == result["xycharts"] == 5
    assert result["errorSvgs"] == 0
    drawn = proc.stdout.split('<pre id="result">')[0]  # the page, not mermaid's own script
    assert "Syntax error" not in drawn
    assert drawn.count("<svg") >= 5
    assert shot.is_file(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (ARTIFACTS / "report-page.html").write_text(page.read_text(encoding="utf-8")[:200_000])
