"""GitHub-flavoured markdown from untrusted strings.

Every string that comes from the repository (metric and param names and values, branch names,
commit subjects, file paths) reaches the report only through `md_text` (or `md_code_block`), so
a pull request cannot break a table with `|`, inject raw HTML, ping `@everyone`, auto-link
`#123`, or load an image beacon. GitHub's mention, issue-reference and SHA filters run on the
rendered HTML text, where a markdown backslash escape is already gone, so those are broken with a
zero-width space instead; everything markdown itself would interpret is backslash-escaped.

Each of them (and `code_span`) first makes the text inert with `untrusted.text.inert_line`: no
comment opener and no name of our hidden records survives even in code, where `<` stays `<`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlsplit

from mlops_ci.ci.untrusted.text import ZWSP, inert_line, inert_lines
from mlops_ci.ci.untrusted.text import clip as clip  # re-exported for the renderers

# ASCII punctuation that inline markdown, GFM tables, strikethrough, math or entities act on.
_MD_PUNCT = re.compile(r"([\\`*_\[\]<>|~&$!])")
# GitHub filters that act on rendered text: @mentions and e-mail autolinks, #123 / GH-123
# references, and the `www.` / `scheme:` triggers of the GFM autolink extension.
_AT_HASH = re.compile(r"([@#])")
_GH_REF = re.compile(r"(?i)\b(gh)-(?=\d)")
# No `\b`: GFM also links `www.` right after `_`, `*`, `~` or `(` (`acc_www.evil.example`), and
# `_` is a word character, so `\b` would miss exactly that case.
_WWW = re.compile(r"(?i)(www)\.")
_SCHEME = re.compile(r":")
# Most names are plain (`per_class.0.f1` minus the underscore): skip the substitutions for them,
# which keeps a 10,000-row report fast.
_PLAIN = re.compile(r"[A-Za-z0-9 ./,+=()-]*")
# What starts a list, heading, quote or setext underline when a cell's text begins a line.
_BLOCK_START = re.compile(r"(\d*)([-+=>#.)])")


def one_line(value: object) -> str:
    """The value as one line of inert plain text (`untrusted.text.inert_line`)."""
    return inert_line(value)


def code_span(value: object, limit: int = 80) -> str:
    """A name as inline code: inert (`inert_line`), no backtick that could end the span, no
    pipe that could split a table cell; inside code nothing else is markdown."""
    text = inert_line(value, limit).replace("`", "'").replace("|", "¦")
    return f"`{text}`" if text.strip() else "` `"


def md_text(value: object, limit: int = 120) -> str:
    """Untrusted `value` as inert inline markdown text, at most about `limit` visible chars.

    `md_text("a|b @you")` gives `a\\|b @` + ZWSP + `you`: one table cell, no mention.
    """
    text = inert_line(value, limit)
    if not (_PLAIN.fullmatch(text) and "www." not in text.lower()):
        text = _MD_PUNCT.sub(r"\\\1", text)
        text = _AT_HASH.sub(lambda m: m.group(1) + ZWSP, text)
        text = _GH_REF.sub(lambda m: m.group(1) + ZWSP + "-", text)
        text = _WWW.sub(lambda m: m.group(1) + "\\.", text)
        text = _SCHEME.sub("\\:", text)
    start = _BLOCK_START.match(text)
    if start and (not start.group(1) or start.group(2) in ".)"):
        # `1.` is escaped at its dot: a backslash before a digit is not an escape.
        return f"{start.group(1)}\\{text[start.end(1) :]}"
    return text


def md_code_block(text: str, lang: str = "", limit: int = 4000) -> str:
    """A fenced code block that `text` cannot close: the fence is longer than any backtick run."""
    body = inert_lines(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def safe_url(url: str | None) -> str | None:
    """`url` when it is a plain http(s) URL, percent-encoded so it cannot end a markdown link."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=":/?&=%#@+,;~-._!$'*")


def md_link(text_md: str, url: str | None) -> str:
    """`text_md` (already escaped) linked to `url`, or left as text when the URL is unusable."""
    safe = safe_url(url)
    return f"[{text_md}]({safe})" if safe else text_md


def fmt_number(value: object, digits: int = 4) -> str:
    """A metric value for a table cell: numbers to `digits` significant digits, `—` for missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return md_text(str(value).lower(), 40)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"{value:.{digits}e}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}g}"
    return md_text(value, 40)


def fmt_signed(value: object, digits: int = 3) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:+.{digits}g}"
    return "" if value is None else fmt_number(value)


def fmt_percent(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value * 100:+.2f}%"
    return ""


def table(header: Sequence[str], rows: Iterable[str]) -> str:
    """A GFM table from a header (trusted) and rows already built with `table_row`."""
    head = "| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|\n"
    return head + "".join(rows)


def table_row(cells: Sequence[str]) -> str:
    """One table row; every cell must already be escaped (`md_text`, `fmt_number`)."""
    return "| " + " | ".join(cells) + " |\n"
