"""The README's code runs, its command-line section names real commands and options, and its set-up
commands are the ones CI runs."""

import argparse
import re
from pathlib import Path

from theorykit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = [b.strip() for b in _blocks("bash")]
    assert len(commands) == 2
    install_run, install_test = commands
    assert "pip install" in install_run and "theorykit reproduce" in install_run
    ci = (ROOT / ".ci" / "run").read_text()
    install, _, test = install_test.partition(" && ")
    assert install in ci and test in ci
    assert ci.index(install) < ci.index(test)


def test_python_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for code in _blocks("python"):
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "stable node" in out and "max |p_SGD - p_ODE|" in out
    error = float(out.rsplit("=", 1)[1])
    assert error < 0.05


def test_command_line_section_uses_real_commands_and_options():
    """Each line of the Command line block is ``theorykit COMMAND[|COMMAND...] ...`` with options COMMAND has."""
    block = re.search(r"## Command line\n\n```\n(.*?)```", README, flags=re.S).group(1)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    usages: list[str] = []
    for line in block.splitlines():
        text = line.split("#")[0].strip()
        if text.startswith("theorykit"):
            usages.append(text)
        elif text:  # an indented continuation of the previous command
            usages[-1] += " " + text
    assert len(usages) >= 5
    for usage in usages:
        names = usage.split()[1].split("|")
        flags = re.findall(r"(?<![\w-])--?[a-z][\w-]*", " ".join(usage.split()[2:]))
        for name in names:
            assert name in commands, f"README names an unknown command {name!r}"
            unknown = [flag for flag in flags if flag not in commands[name]._option_string_actions]
            assert unknown == [], f"theorykit {name} has no options {unknown}"
