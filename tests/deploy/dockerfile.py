"""A small reader of Dockerfiles and .dockerignore files, enough to check ours."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """The stage's ``ENV`` settings (``$VAR`` references left as written)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(parse_env(instruction.args))
        return values

    def exec_form(self, keyword: str) -> list[str] | None:
        """The JSON (exec) form of the last ``keyword`` instruction, if any."""
        found = self.all(keyword)
        if not found:
            return None
        value = json.loads(found[-1].args)
        assert isinstance(value, list), f"{keyword} is not in exec (JSON) form"
        return [str(v) for v in value]


def instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, f"{path}: ends inside a continued line"
    return found


def stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ``ARG`` defaults and the build stages, with ``${ARG}`` in FROM resolved."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(base, name))
        elif not found and instruction.keyword == "ARG":
            key, _, value = instruction.args.partition("=")
            args[key.strip()] = value.strip()
        else:
            assert found, f"{path}:{instruction.line}: {instruction.keyword} before FROM"
            found[-1].instructions.append(instruction)
    return args, found


def parse_env(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go ``filepath.Match`` syntax plus ``**``, as Docker's .dockerignore uses it."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


class DockerIgnore:
    """Which paths of the build context a .dockerignore keeps (last matching rule wins)."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line[1:].strip() if keep else line
            pattern = pattern.strip("/") or "."
            self.rules.append((keep, _pattern_regex(pattern)))

    def keeps(self, relative: str) -> bool:
        parts = relative.strip("/").split("/")
        # A rule matching a parent directory applies to everything under it.
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        kept = True
        for keep, regex in self.rules:
            if any(regex.fullmatch(c) for c in candidates):
                kept = keep
        return kept
