"""``reproduce``: derive, simulate and compare; the measurements behind the claims of this theory."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..._random import spawn_seeds
from ...simulate import map_threads
from ...validate import TheoryReport
from . import _claims as cl
from . import _figures as fg
from . import _model as mdl
from . import _stages as stg
from . import _sweeps as sw
from . import _theory as th
from ._config import Config

THEORY = "imbalanced_pruning"
TITLE = "Contrastive learning under imbalanced data and magnitude pruning"


def default_config(quick: bool = True) -> Config:
    """The base configuration of ``reproduce`` (small in ``quick`` mode): identity attention, the bias schedule,
    Algorithm 1's pruning (rate 0 here; the sweeps set it)."""
    if quick:
        return Config(d1=32, n_major=3, n_minor=3, p=0.1, nsr=1.0, n_tokens=3, width=48, tau=1.0, lam=0.01,
                      eta=0.05, batch=32, steps=2400, record_every=20, prune_at=0.2)
    return Config(d1=48, n_major=4, n_minor=4, p=0.1, nsr=1.0, n_tokens=3, width=64, tau=1.0, lam=0.01, eta=0.05,
                  batch=48, steps=4000, record_every=20, prune_at=0.2)


def one_token_config(base: Config) -> Config:
    """``base`` in the derivation's setting: one token per input (attention cannot mix tokens), with the batch and
    the step scaled so that tokens per step and the time scale ``eta L / tau`` are those of ``base``."""
    return base.with_(n_tokens=1, batch=base.batch * base.n_tokens, eta=base.eta * base.n_tokens)


def converged_config(base: Config, quick: bool = True) -> Config:
    """The runs of Theorem 3.2's checks: weak L2 and a larger step, long enough that minority features
    converge (Theorem 3.1's training window) at every swept eps_min."""
    return base.with_(lam=1e-3, eta=0.2, steps=3200 if quick else 5000, prune_at=0.25)


def _fmt(T: np.ndarray) -> str:
    """Median stage times T1, T2, T3 over neurons as text."""
    return ", ".join(f"{x:.0f}" for x in cl.nan_reduce(np.nanmedian, T.reshape(-1, 3), axis=0))


def _attention_comparison(st: stg.StageSummary, run_attn: mdl.Run) -> dict[str, Any]:
    """How much a trained-attention run differs from the fixed-attention run of the same seed: the relative
    Frobenius change of the score matrix, the median stage times of both, and their largest relative change."""
    A0 = run_attn.config.initial_attention()
    st_attn = stg.stage_summary(run_attn, with_flow=False)
    med = cl.nan_reduce(np.nanmedian, st.measured_major.reshape(-1, 3), axis=0)
    med_attn = cl.nan_reduce(np.nanmedian, st_attn.measured_major.reshape(-1, 3), axis=0)
    return {"relative_change_A": float(np.linalg.norm(run_attn.attention_matrix - A0) / np.linalg.norm(A0)),
            "median_T_fixed": med, "median_T_trained": med_attn,
            "max_relative_change_T": cl.nan_reduce(np.nanmax, np.abs(med_attn / med - 1.0))}


def reproduce(outdir: Path, *, quick: bool = True, seed: int = 0, processes: int | None = 1,
              scheduler: Any = None, store: str | os.PathLike | None = None) -> TheoryReport:
    """Derive, compile, simulate and compare; write figures to ``outdir`` and return the report.

    The sweeps go through :func:`theorykit.sweep.sweep`: ``processes`` (default 1: inline; the replicates of a
    point still train in parallel threads), ``scheduler`` (a dask.distributed address or client) and ``store``
    (a folder keeping finished points, for resuming) are passed on. Failed or non-finite points are listed in
    the notes and left out of the means behind the claims.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    base = default_config(quick)
    n_seeds = 3 if quick else 5
    eps_values = (0.05, 0.1, 0.2) if quick else (0.02, 0.05, 0.1, 0.2, 0.4)
    nsr_values = (0.5, 1.0, 1.5) if quick else (0.5, 1.0, 1.5, 2.0)
    conv_eps = (0.125, 0.25, 0.5)
    widths = (24, 48, 96)
    d1_values = (16, 32, 64, 128) if quick else (16, 32, 64, 128, 256)
    prune_rate = 0.5
    seeds = spawn_seeds(seed, 6)
    backend = {"processes": processes, "scheduler": scheduler}

    def stored(name: str) -> Path | None:
        return None if store is None else Path(store) / name

    th.derive(2)
    th.compiled()
    timings["derive_compile_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    mc_cfg = Config(d1=16, n_major=2, n_minor=1, p=0.25, eps_min=0.5, nsr=1.0, n_tokens=1, tau=20.0, lam=0.0,
                    batch=64, bias="norm", kappa=1.0)
    sym, mc, se = sw.mc_gradient_check(mc_cfg, np.array([0.6, -0.3, 0.4]), 0.5, 150 if quick else 600, int(seeds[0]))
    timings["gradient_check_s"] = time.perf_counter() - t1

    # stage dynamics in the derivation's setting (one token), at half the step size, and with L tokens under
    # fixed and trained identity attention (four runs in parallel)
    t1 = time.perf_counter()
    stage_cfg = one_token_config(base).with_(eps_min=0.4)
    attn_cfg = base.with_(eps_min=0.2)
    run, run_half, run_attn_fixed, run_attn = map_threads(
        lambda c: mdl.train(c, int(seeds[1])),
        [stage_cfg, stage_cfg.with_(eta=stage_cfg.eta / 2), attn_cfg, attn_cfg.with_(attention="trained")])
    st, st_half = stg.stage_summary(run), stg.stage_summary(run_half, with_flow=False)
    st_tokens = stg.stage_summary(run_attn_fixed)
    attention_check = _attention_comparison(st_tokens, run_attn)
    timings["stages_s"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    axes = {"eps_min": eps_values, "nsr": nsr_values, "prune_rate": (0.0, prune_rate)}
    grid = sw.sweep(base, axes, n_seeds, int(seeds[2]), flow=False, **backend, store=stored("grid"))
    one = one_token_config(base)
    one_token = sw.sweep(one, {"eps_min": eps_values, "nsr": (1.0,), "prune_rate": (0.0, prune_rate)}, n_seeds,
                         int(seeds[2]), "one-token pruning sweep", **backend, store=stored("one_token"))
    one_token_hard = sw.sweep(one.with_(prune="hard"), {"eps_min": eps_values, "nsr": (1.0,),
                                                        "prune_rate": (prune_rate,)}, n_seeds, int(seeds[2]),
                              "one-token hard-pruning sweep", **backend, store=stored("one_token_hard"))
    # the same runs with one-shot hard pruning, reported next to Algorithm 1
    hard = sw.sweep(base.with_(prune="hard"), {"eps_min": eps_values, "nsr": (1.0,), "prune_rate": (prune_rate,)},
                    n_seeds, int(seeds[2]), "hard-pruning sweep", flow=False, **backend, store=stored("hard_pruning"))
    timings["sweep_s"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    conv_cfg = converged_config(base, quick)
    conv = sw.sweep(conv_cfg, {"eps_min": conv_eps, "nsr": (1.0,), "prune_rate": (0.0, prune_rate)}, n_seeds,
                    int(seeds[3]), "converged eps sweep", flow=False, **backend, store=stored("converged"))
    wid = sw.sweep(conv_cfg.with_(eps_min=0.25, prune_rate=prune_rate), {"width": widths, "nsr": (1.0,)}, n_seeds,
                   int(seeds[4]), "width sweep", flow=False, **backend, store=stored("width"))
    d1s = sw.d1_sweep(one_token_config(base).with_(steps=1200, record_every=10), d1_values, n_seeds, int(seeds[5]),
                      **backend, store=stored("d1"))
    timings["scaling_s"] = time.perf_counter() - t1

    failures = [f"{name}: {line}" for name, res in (("eps/NSR/pruning sweep", grid), ("hard-pruning sweep", hard),
                                                     ("one-token pruning sweep", one_token),
                                                     ("one-token hard-pruning sweep", one_token_hard),
                                                     ("converged eps sweep", conv), ("width sweep", wid),
                                                     ("d1 sweep", d1s)) for line in res.pop("failures")]
    figs = fg.sweep_figures(outdir, run, st, grid)
    scales = th.stage_time_scales(stage_cfg.d1, stage_cfg.d, stage_cfg.eta, stage_cfg.eps_min)
    figs |= fg.stage_figure(outdir, st, st_half, scales, stage_cfg.eta)
    figs |= fg.scaling_figure(outdir, conv, wid, d1s, conv_cfg.tau, base.d)

    un_eps = np.broadcast_to(grid["eps_min"][:, None, None], grid["magnitude_minor"][:, :, 0, :].shape)
    horizon_slope = cl.fit_slope(un_eps, grid["magnitude_minor"][:, :, 0, :] / base.tau)
    pruning = (f"Algorithm 1's magnitude pruning ({base.prune_mode}-level forward mask, rate {prune_rate:g}, "
               f"recomputed every {base.prune_every} step(s) from {base.prune_at:g} of training)")
    claims = [cl.gradient_claim(sym, mc, se)]
    claims += cl.stage_claims(st, st_half, run, scales, stage_cfg.eta, stage_cfg.eps_min)
    claims += cl.imbalance_claims(grid)
    claims += cl.pruning_claims(grid, pruning)
    claims.append(cl.descent_claim(one_token, one_token_hard))
    claims += cl.theorem_3_2_claims(conv, wid, conv_cfg.tau, base.d, horizon_slope["slope"])
    claims.append(cl.d1_claim(d1s, base.d, base.eta))
    timings["total_s"] = time.perf_counter() - t0

    numbers = {k: grid[k] for k in (*sw.METRICS, "eps_min", "nsr", "prune_rate", "seeds")}
    for prefix, res in (("hard_pruning_", hard), ("one_token_", one_token), ("one_token_hard_", one_token_hard)):
        numbers |= {prefix + k: res[k] for k in sw.METRICS}
    numbers |= {f"converged_{k}": conv[k] for k in ("magnitude_minor", "magnitude_major", "count_minor",
                                                    "count_major", "eps_min")}
    numbers |= {f"width_{k}": wid[k] for k in ("count_minor", "width")}
    numbers |= {f"d1_{k}": d1s[k] for k in ("T1_sgd", "T1_flow", "n_neurons", "d1")}
    numbers |= {f"trained_attention_{k}": v for k, v in attention_check.items()}
    numbers |= {"stage_T_major": st.measured_major, "stage_T_minor": st.measured_minor,
                "stage_T_flow_major": st.predicted_major, "stage_T_flow_minor": st.predicted_minor,
                "stage_T_major_L_tokens": st_tokens.measured_major,
                "stage_T_flow_major_L_tokens": st_tokens.predicted_major,
                "lemma_3_1_scales": scales, "stage1_rate_major": th.stage1_rate(stage_cfg)}
    details = {c.name: c.details for c in claims}
    nsr1 = int(np.argmin(np.abs(grid["nsr"] - 1.0)))

    def paired(key: str, pruned: np.ndarray, unpruned: np.ndarray, fmt: str) -> str:
        return format(cl.nan_reduce(np.nanmean, pruned[key] - unpruned[key]), fmt)

    fwd, hrd, un = ({k: grid[k][:, nsr1, 1, :] for k in sw.METRICS}, {k: hard[k][:, 0, 0, :] for k in sw.METRICS},
                    {k: grid[k][:, nsr1, 0, :] for k in sw.METRICS})
    one_fwd, one_hrd, one_un = ({k: one_token[k][:, :, 1, :] for k in sw.METRICS},
                                {k: one_token_hard[k][:, :, 0, :] for k in sw.METRICS},
                                {k: one_token[k][:, :, 0, :] for k in sw.METRICS})
    theorem = details["minority_coefficient_independent_of_eps"]
    sgd_exp, flow_exp = details["stage1_d1_exponent_vs_population_flow"]["sgd_exponent"], \
        details["stage1_d1_exponent_vs_population_flow"]["flow_exponent"]
    notes = [
        "Population gradient derived for one token (or tokens not mixed by attention), InfoNCE linearised in the "
        "logits, to first order in the feature frequencies in the flow (exact over all sparse codes in the "
        "Monte-Carlo check); the simulator uses L tokens, identity softmax attention and the full InfoNCE.",
        "The bias 'schedule' b_i^(t) = sqrt(2 ln d) sigma ||w_i^(t)|| is our reconstruction: the sources give the "
        "symbol b_i^(t) but not its formula.",
        "Pruning, paired differences at NSR 1 (mean over eps_min and seeds): Algorithm 1 changes the minority-"
        f"feature neuron count by {paired('count_minor', fwd, un, '+.2f')}, the minority max cosine by "
        f"{paired('maxcos_minor', fwd, un, '+.4f')} and the downstream MSE by {paired('mse', fwd, un, '+.4f')}; "
        f"one-shot hard pruning (same rate and start) by {paired('count_minor', hrd, un, '+.2f')}, "
        f"{paired('maxcos_minor', hrd, un, '+.4f')} and {paired('mse', hrd, un, '+.4f')}.",
        f"With L = {base.n_tokens} tokens under identity attention the flow, which treats tokens as unmixed, misses "
        "the mixing (each token keeps about 0.8 of itself, with noise about 0.8 sigma against the threshold's "
        f"sigma): median T1, T2, T3 of SGD {_fmt(st_tokens.measured_major)} vs flow {_fmt(st_tokens.predicted_major)}; "
        "the stage and pruning-descent claims are therefore checked with one token per input.",
        "Algorithm 1 against one-shot hard pruning with one token per input (paired, mean over eps_min and seeds): "
        f"the minority max cosine rises by {paired('maxcos_minor', one_fwd, one_un, '+.4f')} under Algorithm 1 and "
        f"by {paired('maxcos_minor', one_hrd, one_un, '+.4f')} under hard pruning; the population descent predicts "
        f"{cl.nan_reduce(np.nanmean, one_hrd['flow_delta_maxcos_minor']):+.4f} for both, because in the mean "
        "gradient a masked weight never re-enters the mask: Algorithm 1's extra effect comes from SGD's gradient "
        "noise on the masked weights.",
        "Theorem 3.2 in numbers: after Algorithm 1's pruning the minority coefficient over tau is "
        f"{', '.join(f'{r:.2f}' for r in theorem['ratio_to_tau_per_eps'])} at eps_min = "
        f"{', '.join(f'{e:g}' for e in conv['eps_min'])} (converged runs), fitted exponent in eps_min "
        f"{theorem.get('slope', float('nan')):+.2f} (95% CI {theorem.get('slope_ci95', [float('nan')] * 2)[0]:+.2f} "
        f"to {theorem.get('slope_ci95', [float('nan')] * 2)[1]:+.2f}): a weak dependence (rarer features end "
        "slightly larger, as they rarely sit among the negatives), and above the theorem's upper end tau (its "
        f"range (tau/Xi_2, tau) is not reproduced). Without pruning the exponent is "
        f"{theorem['unpruned_slope']['slope']:+.2f}, the same, not Theorem 3.1's 1: at convergence the minority "
        "coefficient hardly depends on eps_min with or without pruning; within a fixed horizon it does (exponent "
        f"{horizon_slope['slope']:+.2f}), because rarer features are learned later.",
        "Lemma 3.1's T1 = Theta(d1 log d / (eta log log d)) is not reproduced: T1's fitted exponent in d1 is "
        f"{sgd_exp['slope']:.2f} (SGD, 95% CI {sgd_exp['slope_ci95'][0]:.2f} to {sgd_exp['slope_ci95'][1]:.2f}) and "
        f"{flow_exp['slope']:.2f} (population flow), not 1: d1 enters only through the initial overlap of a neuron "
        "with a feature.",
        "Trained attention (the score matrix A = W_Q^T W_K learned jointly with the MLP, from the identity) on the "
        f"L-token run: A moved by {attention_check['relative_change_A']:.2%} (relative Frobenius norm) and the median "
        f"stage times changed by at most {attention_check['max_relative_change_T']:.1%}; the claims use fixed "
        "identity attention, as the paper does.",
    ]
    notes += [f"Sweep point failed (left out of the means and claims): {line}" for line in failures]
    return TheoryReport(theory=THEORY, title=TITLE, claims=claims, figures=figs, numbers=numbers,
                        parameters={"base": base.as_dict(), "stage_config": stage_cfg.as_dict(),
                                    "converged_config": conv_cfg.as_dict(), "seed": seed, "quick": quick,
                                    "n_seeds": n_seeds, "prune_rate": prune_rate, "mc_config": mc_cfg.as_dict()},
                        timings=timings, notes=notes)
