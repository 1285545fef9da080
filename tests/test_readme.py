"""The README's code runs, and its set-up commands are the ones CI runs."""

import re
from pathlib import Path

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
