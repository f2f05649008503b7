"""The README and the guide in docs/ stay true: links resolve, the README stays short, every ``edgenet``
command shown names real commands and options, and the site builds.

Commands in code blocks are checked against the real click tree through click's API (the command's
``params``), never by reading help text; a few cheap ones are run for real.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from markdown.extensions.toc import slugify

from edgenet.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCS = [README, *PAGES]
README_MAX_LINES = 300

FENCE = re.compile(r"^(`{3,})([\w-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]+`")
#: Commands cheap enough to run for real (no TensorFlow, no files written, seconds).
CHEAP = {("variants",), ("scale",), ("layout",), ("weights", "list")}


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (links inside them are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """The heading ids of a Markdown file as Python-Markdown's toc (what mkdocs renders) makes them."""
    found = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            found.add(slugify(match.group(1), "-"))
    # Headings with inline code: the code's text is part of the heading.
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if match and "`" in match.group(1):
            found.add(slugify(match.group(1).replace("`", ""), "-"))
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def dead_links(path: Path) -> list[str]:
    dead = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http(s), mailto: not followed (no network in tests)
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            dead.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            dead.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return dead


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dead_links(path):
    assert dead_links(path) == []


def test_the_link_checker_finds_dead_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere) `[code](ignored.md)`\n")
    assert dead_links(page) == ["missing.md: no such file", "#nowhere: no heading #nowhere in page.md"]


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    blocks = [body for _, lang, body in FENCE.findall(text)]
    # First: install everything and run the main job; second: the test command, which CI runs.
    assert "pip install -e '.[all]'" in blocks[0] and ".venv/bin/edgenet " in blocks[0]
    assert blocks[1].strip() == "./tools/run-tests"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./tools/run-tests" in ci


def test_every_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert [p.name for p in PAGES if p.name not in nav] == []


# --- commands shown in code blocks -------------------------------------------------------------------


def commands_in(text: str) -> list[str]:
    """Every ``edgenet`` command line in the fenced code blocks of ``text`` (console blocks: the
    ``$`` lines; bash/sh blocks: every line; other blocks, output and data, are not commands), and
    every inline code span of the prose that is one (`` `edgenet weights list` ``)."""
    found = re.findall(r"`(edgenet [^`]+)`", FENCE.sub("", text))
    for _, lang, body in FENCE.findall(text):
        if lang not in ("console", "bash", "sh", "shell"):
            continue
        lines = body.replace("\\\n", " ").splitlines()
        for line in lines:
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            found.extend(re.findall(r"\$\((edgenet [^)]*)\)", line))
            line = re.sub(r"\$\([^)]*\)", "SUBST", line)
            for part in re.split(r"&&|\|\||;|\|", line):
                words = part.split("#")[0].split()
                if words and Path(words[0]).name == "edgenet":
                    found.append(" ".join(["edgenet", *words[1:]]))
                elif words[:3] == ["python", "-m", "edgenet"]:
                    found.append(" ".join(["edgenet", *words[3:]]))
    return found


def option_names(command: click.Command) -> dict[str, click.Parameter]:
    names = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                names[name] = param
    for name in command.get_help_option_names(click.Context(command)):
        names[name] = None
    return names


def problems(line: str) -> tuple[list[str], tuple[str, ...]]:
    """What is wrong with one shown command line (``[]``: nothing), and its command path."""
    words = [w.strip("[]") for w in shlex.split(line.split(" >")[0])[1:]]
    words = [w for w in words if w not in ("", "...")]
    command: click.Command = main
    path: tuple[str, ...] = ()
    found: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and len(word) > 1 and not re.match(r"^-\d", word):
            name = word.split("=", 1)[0]
            params = option_names(command)
            if name not in params:
                found.append(f"`{line}`: {' '.join(('edgenet', *path))} has no option {name}")
            elif params[name] is not None and getattr(params[name], "hidden", False):
                found.append(f"`{line}`: {name} of {' '.join(('edgenet', *path))} is a hidden (old) spelling")
            elif params[name] is not None and not params[name].is_flag and "=" not in word:
                i += 1  # the option's value
        elif isinstance(command, click.Group):
            if word.isupper():  # a placeholder: `edgenet COMMAND --help`
                return found, path
            sub = command.commands.get(word)
            if sub is None:
                found.append(f"`{line}`: no command {' '.join(('edgenet', *path, word))}")
                break
            command, path = sub, (*path, word)
        i += 1
    if isinstance(command, click.Group) and "--help" not in words:
        found.append(f"`{line}`: {' '.join(('edgenet', *path))} needs a subcommand")
    return found, path


SHOWN = sorted({(path.relative_to(ROOT).as_posix(), line) for path in DOCS
                for line in commands_in(path.read_text(encoding="utf-8"))})


def test_the_docs_show_commands():
    assert len(SHOWN) > 40  # the parser still finds them


@pytest.mark.parametrize("where,line", SHOWN, ids=[f"{w}: {c[:60]}" for w, c in SHOWN])
def test_shown_command_exists(where, line):
    found, _ = problems(line)
    assert found == []


def test_the_command_checker_finds_wrong_commands_and_options():
    assert problems("edgenet bench m.tflite --threads 1 --json r.jsonl")[0] == []
    assert problems("edgenet bench m.tflite --no-such-flag")[0] != []
    assert problems("edgenet no-such-command")[0] != []
    assert problems("edgenet weights list")[1] == ("weights", "list")
    assert problems("edgenet weights")[0] != []
    assert problems("edgenet COMMAND --help")[0] == []


@pytest.mark.parametrize("line", sorted({line for _, line in SHOWN if problems(line)[1] in CHEAP and "--png" not in line}))
def test_cheap_shown_command_runs(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever it writes lands here
    result = CliRunner().invoke(main, shlex.split(line)[1:])
    assert result.exit_code == 0, result.output


def every_command(command: click.Command = main, path: tuple[str, ...] = ()):
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from every_command(sub, (*path, name))


@pytest.mark.parametrize("path", list(every_command()), ids=lambda p: " ".join(p) or "edgenet")
def test_help_runs(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([*command, "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_the_results_schema_page_lists_every_field():
    from edgenet.results.schema import FIELDS, NESTED_FIELDS

    page = (ROOT / "docs" / "results-schema.md").read_text(encoding="utf-8")
    fields = [*FIELDS, *(f"{parent}.{key}" for parent, keys in NESTED_FIELDS.items() for key in keys)]
    assert [f for f in fields if f"`{f}`" not in page] == []
