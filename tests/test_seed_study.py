"""The seed study: reproduce at several seeds, reuse of finished seeds, pass-rate table."""

from __future__ import annotations

import json

import pytest

from theorykit.cli import main
from theorykit.cli._reproduce import parse_seeds
from theorykit.errors import InvalidParameterError
from theorykit.seed_study import render, seed_study, source_of, tabulate


@pytest.mark.slow
def test_reference_seed_study_reuses_finished_seeds_and_counts_failures(tmp_path):
    rows = seed_study(tmp_path, [0, 1], only=["reference"], processes=1)
    assert rows and all(r["n_passed"] == r["n_seeds"] == 2 and r["failed_seeds"] == [] for r in rows)
    table = (tmp_path / "pass_rates.md").read_text()
    assert f"{len(rows)}/{len(rows)} claims pass at every seed" in table
    commit = json.loads((tmp_path / "seed_0" / "results.json").read_text())["provenance"]["git_commit"]
    assert f"Commit `{commit or 'n/a'}`" in table and "theorykit seed-study --quick --seeds 0,1" in table
    saved = json.loads((tmp_path / "pass_rates.json").read_text())
    assert saved["seeds"] == [0, 1] and len(saved["claims"]) == len(rows)
    stamp = (tmp_path / "seed_1" / "results.json").stat().st_mtime_ns
    seed_study(tmp_path, [1, 2], only=["reference"], processes=1)  # seed 1 is reused, seed 2 is new
    assert (tmp_path / "seed_1" / "results.json").stat().st_mtime_ns == stamp
    assert (tmp_path / "seed_2" / "results.json").exists()
    # an impossible tolerance is a change of settings: the seeds run again and the claim fails at both
    rows = seed_study(tmp_path, [0, 1], only=["reference"], processes=1,
                      tolerance_overrides={"reference.jacobian_vs_finite_differences": 0.0})
    jac = next(r for r in rows if r["claim"] == "jacobian_vs_finite_differences")
    assert jac["n_passed"] == 0 and jac["failed_seeds"] == [0, 1] and jac["pass_rate"] == 0.0
    assert "0/2" in (tmp_path / "pass_rates.md").read_text()


def _record(claims, commit="abc", seconds=10.0):
    return {"settings": {}, "wall_time_s": seconds,
            "provenance": {"git_commit": commit, "created": "2026-01-02T03:04:05+00:00", "cpu_count": 2},
            "theories": {"t": {"claims": [
        {"name": n, "passed": ok, "measured": m, "criterion": "c"} for n, ok, m in claims]}}}


def test_tabulate_counts_a_missing_claim_as_failed(tmp_path):
    dirs = {}
    for s, claims in {0: [("a", True, 1.0), ("b", True, "nan")], 1: [("a", False, 3.0)]}.items():
        dirs[s] = tmp_path / f"s{s}"
        dirs[s].mkdir()
        (dirs[s] / "results.json").write_text(json.dumps(_record(claims)))
    rows = {r["claim"]: r for r in tabulate(dirs)}
    assert rows["a"]["n_passed"] == 1 and rows["a"]["failed_seeds"] == [1]
    assert rows["a"]["measured_min"] == 1.0 and rows["a"]["measured_max"] == 3.0
    assert rows["b"]["n_passed"] == 1 and rows["b"]["failed_seeds"] == [1] and rows["b"]["measured_median"] is None


def test_table_names_its_source_and_a_mixed_commit_is_not_named(tmp_path):
    dirs = {}
    for s, (commit, seconds) in enumerate([("abc", 12.0), ("abc", 30.0), ("def", 20.0)]):
        dirs[s] = tmp_path / f"s{s}"
        dirs[s].mkdir()
        (dirs[s] / "results.json").write_text(json.dumps(_record([("a", s != 1, 1.0)], commit, seconds)))
    two = {s: dirs[s] for s in (0, 1)}
    table = render(tabulate(two), [0, 1], True, source_of(two))
    assert "Commit `abc`, 2026-01-02, 12–30 s per seed on 2 cores" in table
    assert "| t | `a` | 1/2 |" in table and "| 1 |" in table  # the failed seed is named
    assert source_of(dirs)["commit"] is None and "Commit `n/a`" in render(tabulate(dirs), [0, 1, 2], True,
                                                                          source_of(dirs))


def test_seed_arguments():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("4:7") == [4, 5, 6]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    for bad in ("a:b", "-2:3", "1,-1", "0", "2,2"):
        with pytest.raises(InvalidParameterError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(InvalidParameterError, match="distinct"):
        seed_study("unused", [1, 1], only=["reference"])
    with pytest.raises(InvalidParameterError, match="unknown theory"):
        seed_study("unused", [1], only=["nope"])


def test_cli_reports_fragile_claims(tmp_path, capsys):
    assert main(["seed-study", "--seeds", "1", "--only", "reference", "--out", str(tmp_path),
                 "--tolerance", "reference.stable_fixed_point=0"]) == 0
    out = capsys.readouterr().out
    assert "claims pass at all 1 seeds" in out and "reference.stable_fixed_point: 0/1" in out
