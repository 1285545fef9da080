"""`theorykit reproduce`: a complete report in which every claim passes, and FAIL when a tolerance is broken."""

import json
import subprocess
import sys

import pytest

from theorykit.cli import main
from theorykit.report import reproduce
from theorykit.validate import Claim, TheoryReport


def test_reproduce_reference_writes_complete_passing_report(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["reproduce", "--only", "reference", "--out", str(out), "--store", str(tmp_path / "store")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    record = json.loads((out / "results.json").read_text())
    assert record["passed"] is True
    claims = record["theories"]["reference"]["claims"]
    assert len(claims) >= 5 and all(c["passed"] for c in claims)
    for key in ("versions", "git_commit", "python", "created"):
        assert key in record["provenance"]
    assert record["settings"]["seed"] == 0 and record["settings"]["mode"] == "quick"
    # --store is honoured by theories with sweeps; one without says that it stored nothing
    assert any("runs no sweeps" in n for n in record["theories"]["reference"]["notes"])
    md = (out / "report.md").read_text()
    assert "claims pass" in md and "FAIL" not in md and "eigenmodes.png" in md
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert (out / "reference" / "eigenmodes.png").stat().st_size > 1000


def test_broken_tolerance_shows_fail_and_nonzero_exit(tmp_path):
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "theorykit.cli", "reproduce", "--only", "reference", "--out", str(out),
                           "--tolerance", "reference.jacobian_vs_finite_differences=0"],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL reference.jacobian_vs_finite_differences" in proc.stdout
    assert "**FAIL**" in (out / "report.md").read_text()
    record = json.loads((out / "results.json").read_text())
    failed = {c["name"] for c in record["theories"]["reference"]["claims"] if not c["passed"]}
    assert failed == {"jacobian_vs_finite_differences"}


class _Toy:
    """A theory through the public protocol: ``boom`` crashes outside a section, ``fine`` passes."""

    sources = ("test",)
    claim_names = ("x",)

    def __init__(self, name, crash):
        self.name, self.title, self.crash = name, f"toy {name}", crash

    def systems(self):
        return {}

    def reproduce(self, study):
        if self.crash:
            raise RuntimeError("integrator blew up")
        study.claim("x", "x is one", 1.0, 1.0, 0.0)


@pytest.fixture
def toys():
    from theorykit.theories import register_theory, unregister_theory

    for name, crash in (("toy_boom", True), ("toy_fine", False)):
        register_theory(_Toy(name, crash))
    yield
    for name in ("toy_boom", "toy_fine"):
        unregister_theory(name)


def test_crashing_theory_is_reported_not_fatal(tmp_path, toys):
    reports, record = reproduce(tmp_path, only=["toy_boom", "toy_fine"], stream=open("/dev/null", "w"))
    assert [r.passed for r in reports] == [False, True]
    crash = record["theories"]["toy_boom"]["claims"][0]
    assert crash["name"] == "runs" and "integrator blew up" in crash["details"]["error"]
    assert record["theories"]["toy_fine"]["title"] == "toy toy_fine"
    assert record["passed"] is False


def test_unknown_theory_is_a_one_line_error(tmp_path, capsys):
    assert main(["reproduce", "--only", "nonsense", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown theory" in err and err.count("\n") == 1


def test_claim_kinds():
    assert Claim("a", "", 1.04, 1.0, 0.05).passed
    assert not Claim("a", "", 1.06, 1.0, 0.05).passed
    assert Claim("r", "", 105.0, 100.0, 0.06, kind="rel").passed
    assert Claim("le", "", 0.9, 1.0, 0.0, kind="le").passed and not Claim("le", "", 1.1, 1.0, 0.0, kind="le").passed
    assert Claim("ge", "", 1.1, 1.0, 0.0, kind="ge").passed and not Claim("ge", "", 0.9, 1.0, 0.0, kind="ge").passed
    assert Claim("t", "", 1.0, None, 0.0, kind="true").passed and not Claim("t", "", 0.0, None, 0.0, kind="true").passed
    assert not Claim("nan", "", float("nan"), 1.0, 1e9).passed


def test_claim_margin_and_looseness():
    assert Claim("a", "", 1.03, 1.0, 0.05).margin == pytest.approx(0.02)
    assert Claim("a", "", 1.08, 1.0, 0.05).margin == pytest.approx(-0.03)  # fails by 0.03
    assert Claim("t", "", 1.0, None, 0.0, kind="true").margin is None
    upper = Claim("le", "", 0.02, 0.0, 1.0, kind="le")  # 0.02 <= 1: a bound 50x above the measurement
    assert upper.bound == 1.0 and upper.margin == pytest.approx(0.98) and upper.bound_over_measured == pytest.approx(50)
    lower = Claim("ge", "", 3.3, 1.645, 0.0, kind="ge")
    assert lower.bound == 1.645 and lower.bound_over_measured == pytest.approx(3.3 / 1.645)
    assert Claim("le", "", 0.0, 1e-12, 0.0, kind="le").bound_over_measured == float("inf")
    # a slope under a negative bound or a sign claim: no ratio that would mean anything
    assert Claim("slope", "", -1.2, -0.5, 0.0, kind="le").bound_over_measured is None
    assert Claim("sign", "", 0.003, 0.0, 0.0, kind="ge").bound_over_measured is None
    assert Claim("abs", "", 0.1, 0.0, 1.0).bound is None and Claim("abs", "", 0.1, 0.0, 1.0).bound_over_measured is None


@pytest.mark.parametrize("argv", [["reproduce", "--seed", "x"], ["reproduce", "--quick", "--full"], ["nope"]])
def test_bad_cli_arguments_exit_nonzero_with_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "theorykit.cli", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_reproduce_sweeps_resume_from_a_store(tmp_path):
    """With --store the theory's sweep points are kept; a second run loads them and reports the same."""
    store = tmp_path / "store"
    first = main(["reproduce", "--only", "noncontrastive", "--out", str(tmp_path / "a"), "--store", str(store)])
    files = sorted(p.name for p in (store / "noncontrastive").rglob("point-*.npz"))
    assert first == 0 and len(files) > 10
    mtimes = {p: p.stat().st_mtime_ns for p in (store / "noncontrastive").rglob("point-*.npz")}
    second = main(["reproduce", "--only", "noncontrastive", "--out", str(tmp_path / "b"), "--store", str(store)])
    assert second == 0
    assert {p: p.stat().st_mtime_ns for p in (store / "noncontrastive").rglob("point-*.npz")} == mtimes
    a, b = (json.loads((tmp_path / d / "results.json").read_text())["theories"]["noncontrastive"]["claims"]
            for d in ("a", "b"))
    assert [c["measured"] for c in a] == [c["measured"] for c in b]
