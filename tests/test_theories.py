"""Checks every registered theory passes, written once: the Theory protocol, its built-in systems, its claim
names and (slow) that ``reproduce --quick`` passes with the figures it announces."""

import numpy as np
import pytest

from theorykit.compile import compile_system
from theorykit.sweep import SweepOptions
from theorykit.theories import BuiltinSystem, Theory, get_theory, theory_names
from theorykit.validate import Study

NAMES = theory_names()


@pytest.mark.parametrize("name", NAMES)
def test_implements_the_protocol(name):
    theory = get_theory(name)
    assert isinstance(theory, Theory) and theory.name == name
    assert theory.title and theory.sources and all(isinstance(s, str) for s in theory.sources)
    assert theory.claim_names and len(set(theory.claim_names)) == len(theory.claim_names)
    assert all(c.isidentifier() for c in theory.claim_names)


def test_titles_are_distinct():
    titles = [get_theory(n).title for n in NAMES]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", NAMES)
def test_builtin_systems_compile_with_their_defaults(name):
    for key, builtin in get_theory(name).systems().items():
        assert isinstance(builtin, BuiltinSystem) and builtin.name == key
        csys = compile_system(builtin.build(), backend="numpy")
        assert set(builtin.params) == set(csys.param_names), key
        assert set(builtin.y0) == set(csys.state_names), key
        assert set(builtin.ranges) <= set(csys.param_names), key
        assert np.all(np.isfinite(csys.rhs(0.0, builtin.y0, builtin.params))), key


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_reproduce_quick_passes(name, tmp_path):
    theory = get_theory(name)
    study = Study(name, theory.title, tmp_path, quick=True, seed=0, sweep_options=SweepOptions(),
                  claim_names=theory.claim_names)
    report = study.run(theory.reproduce)
    failed = [c.describe_failure() + " " + str(c.details.get("error", "")) for c in report.claims if not c.passed]
    assert not failed, failed
    assert {c.name for c in report.claims} == set(theory.claim_names)
    assert report.figures and all((tmp_path / f).exists() for f in report.figures)
    # no inequality that cannot fail: none more than 100x looser than what it bounds, except a rounding
    # tolerance (bound <= 1e-8) on an exact identity, which any real violation would exceed by orders of magnitude
    loose = [(c.name, c.bound_over_measured) for c in report.claims
             if c.bound_over_measured is not None and c.bound_over_measured > 100 and c.bound > 1e-8]
    assert not loose, loose
