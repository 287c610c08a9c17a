"""What the README shows a reader: commands, cron lines, SQL examples and Python snippets.

The rule for a command: an inline code span, or a line of a fenced block, that holds
`polytomic-etl <subcommand>` (the bare name or a path ending in `/polytomic-etl`) where
<subcommand> is one of the CLI's and is followed by a space or the end. Prose mentions
(`polytomic-etl` alone) and output (`polytomic-etl run: syncs=…`) do not match. A line of a
```cron block (not a comment) is a cron line: five schedule fields, then the command. Inline
spans must *start* with the command; inside blocks it may follow a pipe or a path.

Inside a block, `export NAME=value` lines apply to the commands after them until a blank line,
and a command sent to the background (`… &`) makes the rest of its block a script that runs
against it. A `[--opt X]` synopsis expands to the form without and the form with its options.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SPAN = re.compile(r"`([^`\n]+)`")
PLACEHOLDER = re.compile(r"<[^<>]+>|\.\.\.|…")
# shell syntax that needs `bash -c`: pipes, redirects, background, lists
SHELL_SYNTAX = re.compile(r"[|<>&;]")


def command_pattern(subcommands: list[str]) -> re.Pattern[str]:
    names = "|".join(sorted(map(re.escape, subcommands), key=len, reverse=True))
    return re.compile(rf"(?:^|(?<=[\s|;&(]))(?:\S*/)?polytomic-etl\s+({names})(?=\s|$)")


@dataclass
class Block:
    lang: str
    start: int  # 1-based line number of the opening fence
    lines: list[tuple[int, str]]  # (line number, text), dedented
    lead: str  # the prose just before the block

    @property
    def code(self) -> str:
        return "\n".join(text for _, text in self.lines) + "\n"


@dataclass
class Command:
    text: str  # as written (continuation lines joined, trailing comment removed)
    lineno: int
    where: str  # "inline" or the block's language ("sh", "cron", ...)
    subcommand: str
    env: dict[str, str] = field(default_factory=dict)  # `export`s before it in its block group
    script: list[str] = field(default_factory=list)  # lines after a backgrounded command
    schedule: str = ""  # cron lines only
    block_start: int = 0  # the opening fence's line (0 for inline spans)


@dataclass
class SqlExample:
    title: str
    sql: str
    lineno: int


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    prose: list[str] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            prose.append(lines[i])
            i += 1
            continue
        indent, lang, start = len(match.group(1)), match.group(2), i + 1
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append((i + 1, lines[i]))
            i += 1
        dedented = textwrap.dedent(
            "\n".join(t[indent:] if t[:indent].isspace() else t for _, t in body)
        )
        texts = dedented.split("\n") if body else []
        lead = "\n".join(prose[-4:])
        found.append(
            Block(lang, start, [(n, t) for (n, _), t in zip(body, texts, strict=True)], lead)
        )
        prose = []
        i += 1
    return found


def prose_only(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced blocks, numbered."""
    out, inside = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            out.append((n, line))
    return out


def strip_quoted(text: str) -> str:
    return re.sub(r"\"[^\"]*\"|'[^']*'", "''", text)


def strip_comment(text: str) -> str:
    """Drop a trailing `# comment` (outside quotes)."""
    quote = ""
    for pos, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (pos == 0 or text[pos - 1].isspace()):
            return text[:pos].rstrip()
    return text.rstrip()


def _logical_lines(block: Block) -> list[tuple[int, str]]:
    """Lines with `\\` continuations joined."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in block.lines:
        if pending is not None:
            n, raw = pending[0], pending[1] + " " + raw.strip()
            pending = None
        if raw.rstrip().endswith("\\"):
            pending = (n, raw.rstrip()[:-1].rstrip())
            continue
        out.append((n, raw))
    if pending is not None:
        out.append(pending)
    return out


def commands(text: str, subcommands: list[str]) -> list[Command]:
    pattern = command_pattern(subcommands)
    found: list[Command] = []
    for block in blocks(text):
        if block.lang in ("python", "sql"):
            continue
        env: dict[str, str] = {}
        lines = _logical_lines(block)
        for index, (n, raw) in enumerate(lines):
            line = raw.strip()
            if not line:
                env = {}  # a blank line ends a group of exports
                continue
            if line.startswith("#"):
                continue
            export = re.match(r"export\s+(\w+)=(.*)$", strip_comment(line))
            if export:
                env[export.group(1)] = export.group(2).strip().strip("\"'")
                continue
            schedule = ""
            if block.lang == "cron":
                fields = line.split(None, 5)
                if len(fields) < 6:
                    continue
                schedule, line = " ".join(fields[:5]), fields[5]
            match = pattern.search(line)
            if not match:
                continue
            cmd = Command(
                text=line if block.lang == "cron" else strip_comment(line),
                lineno=n,
                where=block.lang or "text",
                subcommand=match.group(1),
                env=dict(env),
                schedule=schedule,
                block_start=block.start,
            )
            if cmd.text.endswith("&") and not cmd.text.endswith("&&"):
                cmd.text = cmd.text[:-1].rstrip()
                cmd.script = [strip_comment(t.strip()) for _, t in lines[index + 1 :] if t.strip()]
                found.append(cmd)
                break  # the rest of the block is the script run against it
            found.append(cmd)
    for n, line in prose_only(text):
        for span in SPAN.findall(line):
            match = pattern.match(span)
            if match:
                found.append(
                    Command(text=span.strip(), lineno=n, where="inline", subcommand=match.group(1))
                )
    return found


def expand_synopsis(text: str) -> list[str]:
    """`[--opt X]` groups: the form without any of them and the form with all of them.

    `[...]...` (repeatable) is included twice in the full form. A line without brackets is
    itself.
    """
    group = re.compile(r"\[([^\[\]]*)\](\.\.\.)?")
    if not group.search(text):
        return [text]
    bare = re.sub(r"\s+", " ", group.sub("", text)).strip()
    full = group.sub(lambda m: " ".join([m.group(1)] * (2 if m.group(2) else 1)), text)
    full = re.sub(r"\s+", " ", full).strip()
    return [bare, full]


def sql_examples(text: str) -> list[SqlExample]:
    found: list[SqlExample] = []
    for block in blocks(text):
        if block.lang != "sql":
            continue
        title, body, first = "", [], 0
        for n, raw in block.lines:
            line = raw.rstrip()
            if not body and line.startswith("--"):
                title = line.lstrip("- ").strip()
                continue
            if not line.strip() and not body:
                continue
            first = first or n
            body.append(line)
            if line.endswith(";"):
                found.append(SqlExample(title, "\n".join(body), first))
                title, body, first = "", [], 0
        if body and "".join(body).strip():
            found.append(SqlExample(title, "\n".join(body), first))
    return found


def python_snippets(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.lang == "python"]
