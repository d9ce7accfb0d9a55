"""Reddit markdown: read as plain text, and plain text written so it shows as typed."""

from __future__ import annotations

import html
import re

_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SPOILER = re.compile(r">!(.*?)!<", re.DOTALL)
_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_BLOCK_PREFIX = re.compile(r"^[ \t]{0,3}(?:#{1,6}[ \t]+|>[ \t]?)+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*\*|\*\*|\*|___|__|~~)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_UNDERSCORE = re.compile(r"(?<![\w\\])_(?=\S)(.+?)(?<=\S)_(?!\w)", re.DOTALL)
_CODE = re.compile(r"`+([^`]*)`+")
_SUPERSCRIPT = re.compile(r"\^\(([^)]*)\)|\^(?=\S)")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~^>])")
_PARKED = 0xF0000
_UNPARK = re.compile("[\U000f0000-\U000f00ff]")
_RULE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$", re.MULTILINE)


def markdown_to_text(value: str) -> str:
    """Reddit markdown as plain text: links become "text (url)", emphasis, quotes, headings,
    spoilers, code marks and escapes are dropped, entities decoded."""
    text = html.unescape(value).replace("\u200b", "")
    # Escaped characters are parked in a private-use plane so no later rule reads them as markup.
    text = _ESCAPED.sub(lambda m: chr(_PARKED + ord(m.group(1))), text)
    text = _FENCE.sub("", text)
    text = _RULE.sub("", text)
    text = _LINK.sub(lambda m: m.group(2) if m.group(1) in ("", m.group(2)) else f"{m.group(1)} ({m.group(2)})", text)
    text = _SPOILER.sub(r"\1", text)
    text = _BLOCK_PREFIX.sub("", text)
    text = _CODE.sub(r"\1", text)
    for _ in range(2):  # nested emphasis, e.g. **_word_**
        text = _EMPHASIS.sub(r"\2", text)
        text = _UNDERSCORE.sub(r"\1", text)
    text = _SUPERSCRIPT.sub(lambda m: m.group(1) or "", text)
    text = _UNPARK.sub(lambda m: chr(ord(m.group()) - _PARKED), text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_KEEP = re.compile(r"https?://\S+|(?<![\w/])/?[ur]/[A-Za-z0-9_-]+")
_INLINE_SPECIAL = re.compile(r"([\\`*_~^\[\]|]|>!|!<)")
_LINE_START = re.compile(r"^([ \t]*)(#|>|[-+*](?=\s)|\d+(?=[.)]\s))")


def _neutralise(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    # "1." is escaped as "1\." (a backslash before a digit would show), the others before.
    return f"{indent}{marker}\\" if marker[0].isdigit() else f"{indent}\\{marker}"


def markdown_escape(text: str) -> str:
    """An agent's plain text as Reddit markdown that shows exactly what was typed: characters
    that would format are escaped (not inside links and u/ r/ names, which must stay clickable),
    line starts that would make headings, quotes or lists are neutralised, and single line
    breaks are kept as hard breaks instead of being joined."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        parts, position = [], 0
        for keep in _KEEP.finditer(line):
            parts.append(_INLINE_SPECIAL.sub(r"\\\1", line[position : keep.start()]))
            parts.append(keep.group())
            position = keep.end()
        parts.append(_INLINE_SPECIAL.sub(r"\\\1", line[position:]))
        escaped = "".join(parts)
        # Four leading spaces would make a code block; the indentation is not worth that.
        escaped = escaped.lstrip(" \t") if re.match(r"[ \t]{4}", escaped) else escaped
        lines.append(_LINE_START.sub(_neutralise, escaped))
    out = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        hard_break = bool(line.strip() and following.strip())
        out.append(f"{line}  " if hard_break else line)
    return "\n".join(out).strip("\n")
