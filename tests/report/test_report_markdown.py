"""The report rendered with GitHub's own markdown renderer (cmarkgfm with the GFM extensions).

Hostile inputs in every repo-controlled field must come out as inert text: intact tables, no raw
HTML, no mention, no issue reference, no auto-link, no image.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.report import (
    GITHUB_COMMENT_LIMIT,
    GITLAB_NOTE_LIMIT,
    ReportInputError,
    ReportLinks,
    build_report,
    format_terminal,
    report_marker,
    report_marker_id,
)
from mlops_ci.report.fit import size
from mlops_ci.report.markdown import md_code_block, md_text
from tests.report.test_report_inputs import (
    BASE_SHA,
    HEAD_SHA,
    make_comparison,
    make_verdict,
    many_metrics,
    metric,
)

EXTENSIONS = ["table", "strikethrough", "autolink", "tagfilter", "tasklist"]
RENDER_MODES = {
    "safe": Options.CMARK_OPT_GITHUB_PRE_LANG,
    "unsafe": Options.CMARK_OPT_GITHUB_PRE_LANG | Options.CMARK_OPT_UNSAFE,
}
# What the report itself may produce; anything else came from an input.
ALLOWED_TAGS = {
    "h3",
    "h4",
    "p",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "ul",
    "li",
    "strong",
    "em",
    "a",
    "pre",
    "code",
    "details",
    "summary",
    "blockquote",
    "hr",
}
HOSTILE = [
    "a|b|c",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "@everyone please look",
    "fixes #1 and GH-2 and org/repo#3",
    "`tick` ``double`` ```fence```",
    "line one\nline two\r\n| injected | row |",
    "N" * 10_000,
    "[click](javascript:alert(1))",
    "![beacon](https://tracker.invalid/pixel.png)",
    "www.evil.invalid and https://evil.invalid/x and mail@evil.invalid",
    "<details open>",
    "&lt;b&gt; entity",
    "$x^2$ ~~struck~~ **bold**",
    "- [ ] task",
    "1. ordered",
    "# heading",
    "\x1b[31mred\x1b[0m",
    "<!-- comment -->",
]


def render_gfm(markdown: str, mode: str) -> str:
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=RENDER_MODES[mode], extensions=EXTENSIONS
    )


class HtmlFacts(HTMLParser):
    """Tags, links, table shapes and the visible text outside code of a rendered report."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.pre_langs: list[str] = []
        self.tables: list[list[int]] = []
        self.text: list[str] = []
        self._code_depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "a":
            self.hrefs.append(attributes.get("href") or "")
        if tag == "pre":
            self.pre_langs.append(attributes.get("lang") or "")
        if tag in ("pre", "code"):
            self._code_depth += 1
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append(0)
        if tag in ("td", "th"):
            self.tables[-1][-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "code"):
            self._code_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._code_depth:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append("!--")


def check_inert(markdown: str, mode: str, *, allowed_hrefs: set[str] = frozenset()) -> HtmlFacts:
    html = render_gfm(markdown, mode)
    facts = HtmlFacts(html)
    assert set(facts.tags) - ALLOWED_TAGS - {"!--"} == set(), html[:2000]
    if mode == "unsafe":
        # The only HTML comments are the report's own hidden markers: a name that opened one
        # could hide the rest of the report.
        assert facts.tags.count("!--") == markdown.count("<!-- mlops-ci-report:")
    assert "<script" not in html
    assert "<img" not in html
    assert set(facts.hrefs) <= allowed_hrefs
    text = " ".join(facts.text)
    assert not re.search(r"(?<![\w`])@[A-Za-z0-9]", text), "a mention would ping someone"
    assert not re.search(r"(?<![\w&])#\d", text), "an issue reference would auto-link"
    assert not re.search(r"(?i)\bGH-\d", text)
    for rows in facts.tables:
        assert len(set(rows)) == 1, f"a table row has a different number of cells: {rows}"
    return facts


def hostile_comparison() -> dict:
    names = HOSTILE
    metrics = [metric(n, 0.5, 0.4 + i / 100, "regressed") for i, n in enumerate(names)]
    metrics += [metric(n + " (text)", n, n + "!", "changed") for n in names[:8]]
    metrics += [metric("same " + n, 1.0, 1.0, "unchanged") for n in names[:4]]
    params = [
        {"name": n, "file": n, "baseline": n, "candidate": {"k": n}, "change": "changed"}
        for n in names
    ]
    plots = [
        {
            "id": n,
            "title": n,
            "x": "fpr",
            "y": "tpr",
            "template": "simple",
            "baseline": [{"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1}],
            "candidate": [{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": 0.9}, {"fpr": 1, "tpr": 1}],
        }
        for n in names[:3]
    ]
    return make_comparison(
        artifact=names[2],
        baseline={"how": "merge-base", "ref": names[0], "sha": BASE_SHA, "subject": names[3]},
        candidate={"ref": "workspace", "sha": "not-a-sha <b>", "branch": names[1], "dirty": True},
        metrics=metrics,
        params=params,
        plots=plots,
        stages=[{"name": n, "status": n, "duration_s": 1.0, "source": n} for n in names],
        policy_change={"changed": True, "diff": "\n".join(names) + "\n````\n<script>x</script>"},
        errors=[{"file": n, "revision": n, "message": n} for n in names[:5]],
        warnings=names[:5],
    )


def hostile_verdict() -> dict:
    verdict = make_verdict("fail")
    verdict["summary"] = HOSTILE[3]
    verdict["rules"] = [{"metric": n, "rule": n, "outcome": "fail", "reason": n} for n in HOSTILE]
    return verdict


@pytest.mark.parametrize("mode", sorted(RENDER_MODES))
def test_realistic_report_renders_tables_and_mermaid(mode: str) -> None:
    links = ReportLinks(commit_url=lambda sha: f"https://forge.invalid/o/r/commit/{sha}")
    report = build_report(
        make_comparison(), make_verdict(), limit=GITHUB_COMMENT_LIMIT, links=links
    )
    hrefs = {f"https://forge.invalid/o/r/commit/{s}" for s in (BASE_SHA, HEAD_SHA)}
    facts = check_inert(report.markdown, mode, allowed_hrefs=hrefs)
    assert set(facts.hrefs) == hrefs
    # metrics (4 changed), params, stages, the changed plots, unchanged details
    assert [len(rows) for rows in facts.tables] == [5, 3, 4, 4, 3]
    assert facts.tables[0] == [7] * 5  # with the confidence interval column
    assert facts.pre_langs.count("mermaid") == 3
    html = render_gfm(report.markdown, mode)
    assert html.count('<pre lang="mermaid"><code>') == 3
    assert ("<details>" in html) == (mode == "unsafe")
    assert report.markdown.startswith(report.marker)
    assert report.dropped == []
    assert report.markdown == report.full_markdown


@pytest.mark.parametrize("mode", sorted(RENDER_MODES))
def test_hostile_inputs_stay_inert(mode: str) -> None:
    report = build_report(hostile_comparison(), hostile_verdict(), limit=GITHUB_COMMENT_LIMIT)
    for markdown in (report.markdown, report.full_markdown):
        facts = check_inert(markdown, mode)
        assert facts.hrefs == []
        assert facts.pre_langs.count("mermaid") == 3
        # metrics, params, stages, unchanged: every hostile row stayed one row
        assert [len(rows) for rows in facts.tables] == [
            1 + len(HOSTILE) + 8,
            1 + len(HOSTILE),
            1 + len(HOSTILE),
            4,
            5,
        ]
    text = " ".join(HtmlFacts(render_gfm(report.markdown, mode)).text)
    assert "<script>alert(1)</script>" in text  # shown as text, not dropped silently
    assert "N" * 10_000 not in report.full_markdown  # 10 kB names are clipped
    assert "\x1b" not in report.full_markdown
    assert "\x1b" not in format_terminal(report)


def test_escaping_keeps_the_visible_text() -> None:
    for value in ["a|b", "<b>x</b>", "snake_case_name", "@someone", "x*y*z", "1. step"]:
        html = render_gfm(md_text(value), "unsafe")
        visible = " ".join(HtmlFacts(html).text).replace("\u200b", "").strip()
        assert visible == value
    assert md_text("per_class.0.f1") == "per\\_class.0.f1"
    assert md_text("x" * 500, 50) == "x" * 49 + "…"


def test_code_block_cannot_be_closed_from_inside() -> None:
    block = md_code_block("```\n</code></pre><script>x</script>\n````", "diff")
    html = render_gfm(block + "\n\nafter", "unsafe")
    assert html.count("<pre") == 1
    assert "<p>after</p>" in html
    assert "<script>" not in html


def test_ten_thousand_rows_fit_github_and_say_what_was_dropped() -> None:
    comparison = make_comparison(metrics=many_metrics(10_000))
    report = build_report(comparison, make_verdict(), limit=GITHUB_COMMENT_LIMIT)
    assert size(report.markdown) <= GITHUB_COMMENT_LIMIT
    assert len(report.full_markdown) > 5 * GITHUB_COMMENT_LIMIT
    # the fixed order: plots, (no trend given), unchanged rows, params, then the table's tail
    assert report.dropped[0] == "plots (3 charts)"
    assert report.dropped[1] == "7142 unchanged metric rows"
    assert report.dropped[2].startswith("params table")
    assert re.fullmatch(r"\d+ of 2858 changed metric rows", report.dropped[3])
    assert "Shortened to fit the 65,536-character limit" in report.markdown
    assert ".mlops-ci/report.md" in report.markdown
    facts = check_inert(report.markdown, "safe")
    assert len(facts.tables[0]) > 100  # the worst rows are still there
    assert "regressed" in " ".join(facts.text)
    # the same report fitted to roomier limits keeps more (GitLab: everything)
    assert report.fitted(GITLAB_NOTE_LIMIT)[1] == []
    roomy, dropped = report.fitted(600_000)
    assert size(roomy) <= 600_000
    assert dropped == ["plots (3 charts)", "7142 unchanged metric rows"]


def test_shrinks_only_as_far_as_needed() -> None:
    report = build_report(make_comparison(), make_verdict(), limit=None)
    full = size(report.full_markdown)
    plots_gone, dropped = report.fitted(full - 100)
    assert dropped == ["plots (3 charts)"]
    assert "```mermaid" not in plots_gone
    assert "#### Metrics" in plots_gone
    assert "<details>" in plots_gone
    tiny, dropped = report.fitted(900)
    assert size(tiny) <= 900
    assert tiny.startswith(report.marker)


def test_first_pr_without_baseline_metrics() -> None:
    rows = [metric(n, None, v, "added") for n, v in (("accuracy", 0.95), ("f1", 0.94))]
    comparison = make_comparison(
        baseline={"how": "merge-base", "ref": "main", "sha": None, "subject": None},
        metrics=rows,
        params=[],
        plots=[{**make_comparison()["plots"][0], "baseline": []}],
    )
    report = build_report(comparison, None, limit=GITHUB_COMMENT_LIMIT)
    facts = check_inert(report.markdown, "unsafe")
    text = " ".join(facts.text)
    assert "First report" in text
    assert "2 added" in text
    assert facts.tables[0] == [6, 6, 6]
    assert "0.95" in text
    assert "—" in text
    assert facts.pre_langs == ["mermaid"]
    # no baseline line, and the legend does not pretend there is one
    assert "*Lines: blue: candidate 9f8e7d6 eval/plots/roc.json*" in report.markdown
    assert "grey" not in report.markdown


def test_pr_that_changes_nothing() -> None:
    base = make_comparison()
    rows = [
        {
            **m,
            "candidate": m["baseline"],
            "delta": 0.0,
            "rel_delta": 0.0,
            "status": "unchanged",
            "ci_low": None,
            "ci_high": None,
        }
        for m in base["metrics"]
    ]
    plots = [{**p, "candidate": p["baseline"], "status": "unchanged"} for p in base["plots"]]
    comparison = make_comparison(metrics=rows, params=[], plots=plots)
    report = build_report(comparison, make_verdict("pass"), limit=GITHUB_COMMENT_LIMIT)
    facts = check_inert(report.markdown, "unsafe")
    text = " ".join(facts.text)
    assert "Nothing changed" in text
    assert "No metric changed." in text
    assert "6 unchanged metrics" in text  # folded in <details>
    assert "✅" in text
    assert "pass" in text
    assert len(facts.tables) == 2  # stages + the folded unchanged rows


def test_marker_is_hidden_and_stable() -> None:
    marker = report_marker("classifier", "pr")
    assert marker == "<!-- mlops-ci-report:classifier:pr -->"
    assert report_marker_id("bad--name -->", "x y") == "mlops-ci-report:bad-name_-_:x_y"
    report = build_report(make_comparison(), None, limit=None, marker_id="pr")
    assert report.marker == marker
    assert report.marker_id == "mlops-ci-report:classifier:pr"
    assert "mlops-ci-report" not in " ".join(HtmlFacts(render_gfm(report.markdown, "unsafe")).text)


def test_bad_documents_say_what_to_do() -> None:
    with pytest.raises(ReportInputError, match="mlops-ci compare"):
        build_report({"kind": "verdict"}, None, limit=None)
    with pytest.raises(ReportInputError, match="version 1"):
        build_report({**make_comparison(), "schema_version": 7}, None, limit=None)
    with pytest.raises(ReportInputError, match="mlops-ci gate"):
        build_report(make_comparison(), {"kind": "x"}, limit=None)


def test_terminal_form_is_plain() -> None:
    report = build_report(make_comparison(), make_verdict(), limit=GITHUB_COMMENT_LIMIT)
    text = format_terminal(report)
    assert text.startswith("mlops-ci report: classifier\ngate: fail")
    assert "accuracy" in text
    assert "regressed" in text
    assert "|" not in text
    assert "full report: .mlops-ci/report.md" in text
