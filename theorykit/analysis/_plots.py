"""Figures of the analysis results: phase portraits, bifurcation diagrams, phase diagrams and basin maps.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, never through ``pyplot``'s
global state, so they work without a display and in threads. Every function returns the Figure and
saves it when given ``path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidParameterError
from ..solve._solve import guarded
from ._continuation import Branch
from ._curves import BifurcationCurve
from ._cycles import CycleBranch
from ._fixed_points import FixedPoint, find_fixed_points
from ._phase import BasinMap, PhaseDiagram

DPI = 110
_SPECIAL_STYLE = {"fold": ("s", "F"), "branch_point": ("D", "BP"), "hopf": ("*", "H"),
                  "fold_cycle": ("v", "LPC"), "period_doubling": ("^", "PD")}
#: markers and short labels of codimension-two points on curves
_CODIM2_STYLE = {"cusp": ("P", "CP"), "bogdanov_takens": ("X", "BT"), "generalized_hopf": ("h", "GH")}
#: line style of each curve kind (neutral-saddle stretches of Hopf curves are not drawn)
_CURVE_STYLE = {"fold": dict(color="k", lw=1.8, ls="-"), "hopf": dict(color="C3", lw=1.8, ls="--")}


def _new_axes(ax, figsize=(5.6, 4.4)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _finish(fig, path) -> Any:
    if path is not None:
        from .._io import atomic_path

        # huge but finite values (a parameter of 1e308) overflow in matplotlib's tick arithmetic: harmless there
        with atomic_path(path) as tmp, np.errstate(over="ignore", invalid="ignore"):
            fig.savefig(tmp, dpi=DPI, format=Path(path).suffix.lstrip(".") or "png")
    return fig


def _state_index(names: Sequence[str], state: str | int) -> int:
    if isinstance(state, (int, np.integer)):
        if not 0 <= int(state) < len(names):
            raise InvalidParameterError(f"state index must lie in [0, {len(names) - 1}], got {state}")
        return int(state)
    if state not in names:
        raise InvalidParameterError(f"unknown state {state!r}; states are {list(names)}")
    return list(names).index(state)


def _mark_fixed_points(ax, fps: Sequence[FixedPoint], i: int, j: int | None) -> None:
    for fp in fps:
        yv = fp.y[j] if j is not None else 0.0
        ax.plot(fp.y[i], yv, "o", ms=8, mec="k", mew=1.3, mfc="k" if fp.stable else "white", zorder=5)


def _window_from(fps: Sequence[FixedPoint], i: int, j: int | None) -> list[tuple[float, float]]:
    idx = [i] + ([j] if j is not None else [])
    out = []
    for k in idx:
        vals = [fp.y[k] for fp in fps] or [0.0]
        lo, hi = min(vals), max(vals)
        pad = max(0.5 * (hi - lo), 1.0)
        out.append((lo - pad, hi + pad))
    return out


def plot_phase_portrait(csys, params=None, *, states: Sequence[str | int] | None = None, window=None,
                        base_y=None, fixed_points: Sequence[FixedPoint] | None = None, n_arrows: int = 25,
                        n_grid: int = 201, trajectories: Sequence[np.ndarray] = (), ax=None, path=None,
                        title: str | None = None):
    """Phase portrait: vector field (streamplot), nullclines ``f_i = 0`` and fixed points.

    Stable fixed points are filled, unstable ones open. One-state systems are drawn as a phase line
    (``f(x)`` against ``x``).

    Parameters
    ----------
    csys : CompiledSystem
    params : mapping or float64[n_params]
    states : two state names or indices, optional
        The plane to draw (default the first two states); other states are held at ``base_y``.
    window : ((x_lo, x_hi), (y_lo, y_hi)), optional
        Default: around the fixed points.
    base_y : mapping or float64[n_states], optional
        Values of the states not drawn (default zeros).
    fixed_points : sequence of FixedPoint, optional
        Default: :func:`find_fixed_points` in the window.
    trajectories : sequence of float64[n_t, n_states]
        Solutions to overlay.
    path : str or Path, optional
        Save the figure there (PNG by the suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    names = csys.state_names
    n = csys.n_states
    p = csys.pack_params(params)
    base = np.zeros(n) if base_y is None else csys.pack_state(base_y)
    if n == 1:
        i, j = 0, None
    else:
        sel = tuple(states) if states is not None else (0, 1)
        if len(sel) != 2:
            raise InvalidParameterError(f"states must name two states, got {sel!r}")
        i, j = _state_index(names, sel[0]), _state_index(names, sel[1])
        if i == j:
            raise InvalidParameterError("states must be two different states")
    if fixed_points is None:
        box = np.tile([-3.0, 3.0], (n, 1))
        if window is not None:
            w = np.asarray(window, dtype=np.float64).reshape(-1, 2)
            box[i] = w[0]
            if j is not None:
                box[j] = w[1]
        fixed_points = find_fixed_points(csys, p, bounds=box, guesses=base[None, :])
        if n > 2:  # only equilibria in the drawn plane
            others = [k for k in range(n) if k not in (i, j)]
            fixed_points = tuple(fp for fp in fixed_points if np.allclose(fp.y[others], base[others], atol=1e-6))
    if window is None:
        window = _window_from(fixed_points, i, j)
    win = np.asarray(window, dtype=np.float64).reshape(-1, 2)
    if win.shape[0] != (1 if j is None else 2) or np.any(win[:, 0] >= win[:, 1]) or not np.all(np.isfinite(win)):
        raise InvalidParameterError(f"window must be ((lo, hi),{' (lo, hi)' if j is not None else ''}) with lo < hi, "
                                    f"got {np.asarray(window).tolist()}")
    fig, ax = _new_axes(ax)
    out = np.empty(n)
    y = base.copy()
    rhs_into = guarded(csys.rhs_into)  # bad arithmetic leaves nan (a gap in the drawing), never an exception

    def rhs(yv: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            rhs_into(0.0, yv, p, out)
        return np.where(np.isfinite(out), out, np.nan)

    if j is None:
        xs = np.linspace(win[0, 0], win[0, 1], n_grid)
        fx = np.empty_like(xs)
        for k, xv in enumerate(xs):
            y[0] = xv
            fx[k] = rhs(y)[0]
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.plot(xs, fx, color="C0", lw=1.8, label=f"d{names[0]}/dt")
        _mark_fixed_points(ax, fixed_points, 0, None)
        ax.set_xlabel(names[0])
        ax.set_ylabel(f"d{names[0]}/dt")
    else:
        xs = np.linspace(win[0, 0], win[0, 1], n_grid)
        ys = np.linspace(win[1, 0], win[1, 1], n_grid)
        U = np.empty((n_grid, n_grid))
        V = np.empty((n_grid, n_grid))
        for a, yv in enumerate(ys):
            y[j] = yv
            for b, xv in enumerate(xs):
                y[i] = xv
                U[a, b], V[a, b] = rhs(y)[[i, j]]
        step = max(1, n_grid // max(int(n_arrows), 2))
        Us, Vs = U[::step, ::step], V[::step, ::step]
        with np.errstate(invalid="ignore", over="ignore"):
            speed = np.hypot(Us, Vs)
        if np.any(np.isfinite(speed) & (speed > 0)):
            ax.streamplot(xs[::step], ys[::step], np.nan_to_num(Us), np.nan_to_num(Vs), color="0.55",
                          density=1.1, linewidth=0.8, arrowsize=0.9)
        ax.contour(xs, ys, U, levels=[0.0], colors="C0", linewidths=1.6)
        ax.contour(xs, ys, V, levels=[0.0], colors="C3", linewidths=1.6, linestyles="--")
        for traj in trajectories:
            tr = np.asarray(traj, dtype=np.float64)
            ax.plot(tr[:, i], tr[:, j], color="C2", lw=1.2)
        _mark_fixed_points(ax, fixed_points, i, j)
        ax.set_xlim(*win[0])
        ax.set_ylim(*win[1])
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j])
        handles = [Line2D([], [], color="C0", lw=1.6, label=f"d{names[i]}/dt = 0"),
                   Line2D([], [], color="C3", lw=1.6, ls="--", label=f"d{names[j]}/dt = 0")]
        handles += [Line2D([], [], ls="", marker="o", mec="k", mfc="k", label="stable"),
                    Line2D([], [], ls="", marker="o", mec="k", mfc="white", label="unstable")]
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    ax.set_title(title or f"{csys.system.name}: phase portrait")
    return _finish(fig, path)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of equal values in ``mask``."""
    if mask.size == 0:
        return []
    cut = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    edges = np.r_[0, cut, mask.size]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _stability_lines(ax, x: np.ndarray, yv: np.ndarray, stable: np.ndarray, color: str, lw: float = 2.0) -> None:
    """``yv`` against ``x``, solid where stable and dashed where unstable.

    A segment is solid when either end is stable: a change of stability happens at a special
    (non-hyperbolic) point, so stable pieces reach it solid and unstable pieces leave it dashed.
    """
    seg = stable[:-1] | stable[1:]
    for a, b in _runs(seg):
        ax.plot(x[a:b + 1], yv[a:b + 1], color=color, lw=lw, ls="-" if seg[a] else "--")
    if x.size == 1:
        ax.plot(x, yv, "o", color=color, ms=3)


def plot_bifurcation(branches: Branch | Sequence[Branch], state: str | int = 0, *,
                     cycles: CycleBranch | Sequence[CycleBranch] = (), ax=None, path=None,
                     title: str | None = None, annotate: bool = True):
    """Bifurcation diagram: a state against the continuation parameter, solid where stable, dashed where
    unstable, with folds (F), branch points (BP) and Hopf points (H) marked and labelled.

    Parameters
    ----------
    branches : Branch or sequence of Branch
        Branches of equilibria (may be empty when ``cycles`` are given).
    state : str or int
        The state on the vertical axis.
    cycles : CycleBranch or sequence of CycleBranch
        Limit-cycle families, drawn as the maximum and minimum of ``state`` over each cycle (thinner lines,
        solid where the cycle is stable), with folds of cycles (LPC) and period doublings (PD) marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    branches = [branches] if isinstance(branches, Branch) else list(branches)
    cycles = [cycles] if isinstance(cycles, CycleBranch) else list(cycles)
    if not branches and not cycles:
        raise InvalidParameterError("plot_bifurcation needs at least one branch or cycle branch")
    first = branches[0] if branches else cycles[0]
    n_states = first.states.shape[1] if branches else first.profiles.shape[2]
    names = first.state_names or tuple(f"y{k}" for k in range(n_states))
    k = _state_index(names, state)
    fig, ax = _new_axes(ax)
    seen: set[str] = set()
    drawn: set[tuple] = set()

    def mark(kind: str, x: float, yv: float) -> None:
        marker, short = _SPECIAL_STYLE.get(kind, ("o", kind))
        key = (kind, round(x, 6), round(float(yv), 6))
        if key in drawn:  # two branches through one branch point: mark it once
            return
        drawn.add(key)
        ax.plot(x, yv, marker, color="k", ms=8, zorder=5)
        seen.add(kind)
        if annotate:
            ax.annotate(f"{short} {x:.4g}", (x, yv), xytext=(6, 6), textcoords="offset points", fontsize=8)

    for b_i, br in enumerate(branches):
        _stability_lines(ax, br.param_values, br.states[:, k], br.stable, f"C{b_i % 10}")
        for sp in br.special_points:
            mark(sp.kind, sp.param_value, sp.y[k])
    for c_i, cb in enumerate(cycles):
        color = f"C{(len(branches) + c_i) % 10}"
        for ext in (cb.max_states, cb.min_states):
            _stability_lines(ax, cb.param_values, ext[:, k], cb.stable, color, lw=1.3)
        for sp in cb.special_points:
            mark(sp.kind, sp.param_value, cb.max_states[sp.index, k])
    handles = [Line2D([], [], color="k", lw=2, label="stable"),
               Line2D([], [], color="k", lw=2, ls="--", label="unstable")]
    if cycles:
        handles.append(Line2D([], [], color="k", lw=1.3, label=f"cycles: max / min of {names[k]}"))
    handles += [Line2D([], [], ls="", marker=_SPECIAL_STYLE[s][0], color="k", label=s.replace("_", " "))
                for s in _SPECIAL_STYLE if s in seen]
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    ax.set_xlabel(first.param)
    ax.set_ylabel(names[k])
    ax.set_title(title or f"bifurcation diagram in {first.param}")
    return _finish(fig, path)


def _draw_curves(ax, curves: Sequence[BifurcationCurve], axes: tuple[str, str], annotate: bool = True) -> list:
    """Draw fold / Hopf curves in the plane of the parameters ``axes`` (x, y); returns legend handles."""
    from matplotlib.lines import Line2D

    handles, kinds, codim2 = [], set(), set()
    for cv in curves:
        if set(cv.free) != set(axes):
            raise InvalidParameterError(f"a {cv.kind} curve in {list(cv.free)} cannot be drawn in the plane of "
                                        f"{list(axes)}")
        x, yv = cv.param_of(axes[0]), cv.param_of(axes[1])
        mask = cv.hopf_mask
        for a, b in _runs(mask):
            if mask[a]:
                ax.plot(x[a:b], yv[a:b], **_CURVE_STYLE[cv.kind])
        kinds.add(cv.kind)
        for sp in cv.special_points:
            marker, short = _CODIM2_STYLE.get(sp.kind, ("o", sp.kind))
            px, py = sp.params[axes[0]], sp.params[axes[1]]
            ax.plot(px, py, marker, color="k", mfc="w", ms=9, mew=1.5, zorder=6)
            codim2.add(sp.kind)
            if annotate:
                ax.annotate(short, (px, py), xytext=(6, 6), textcoords="offset points", fontsize=9)
    handles += [Line2D([], [], label=f"{k} curve", **_CURVE_STYLE[k]) for k in ("fold", "hopf") if k in kinds]
    handles += [Line2D([], [], ls="", marker=_CODIM2_STYLE[k][0], color="k", mfc="w", mew=1.5,
                       label=k.replace("_", "-")) for k in _CODIM2_STYLE if k in codim2]
    return handles


def plot_curves(curves: BifurcationCurve | Sequence[BifurcationCurve], *, ax=None, path=None,
                title: str | None = None, annotate: bool = True):
    """Two-parameter bifurcation diagram: fold curves (solid) and Hopf curves (dashed) in the plane of their
    free parameters, with cusp (CP), Bogdanov–Takens (BT) and generalized Hopf (GH) points marked.

    Parameters
    ----------
    curves : BifurcationCurve or sequence of BifurcationCurve
        All in the same two free parameters (``curves[0].free`` gives the axes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curves = [curves] if isinstance(curves, BifurcationCurve) else list(curves)
    if not curves:
        raise InvalidParameterError("plot_curves needs at least one curve")
    axes = curves[0].free
    fig, ax = _new_axes(ax)
    handles = _draw_curves(ax, curves, axes, annotate)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title or f"bifurcation curves in ({axes[0]}, {axes[1]})")
    return _finish(fig, path)


def _label_image(ax, x: np.ndarray, y: np.ndarray, labels: np.ndarray, names: Sequence[str], xlabel: str,
                 ylabel: str, extra: dict[str, str] | None = None) -> None:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    colors = [f"C{k % 10}" for k in range(len(names))]
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(-0.5, len(names) + 0.5), cmap.N)
    ax.pcolormesh(x, y, labels.T, cmap=cmap, norm=norm, shading="nearest")
    present = np.unique(labels)
    handles = [Patch(color=colors[k], label=names[k] + ((" " + extra[names[k]]) if extra else "")) for k in present]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_phase_diagram(pd: PhaseDiagram, *, curves: BifurcationCurve | Sequence[BifurcationCurve] = (), ax=None,
                       path=None, title: str | None = None):
    """The labels of a :class:`PhaseDiagram` as coloured regions with a legend, optionally with the exact
    boundary curves (fold / Hopf curves from :func:`continue_fold` / :func:`continue_hopf`) drawn over them.

    Parameters
    ----------
    pd : PhaseDiagram
    curves : BifurcationCurve or sequence of BifurcationCurve
        Curves whose free parameters are the diagram's two axes (in either order).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curves = [curves] if isinstance(curves, BifurcationCurve) else list(curves)
    fig, ax = _new_axes(ax, figsize=(6.4, 4.4))
    _label_image(ax, pd.x, pd.y, pd.labels, pd.label_names, pd.axes[0], pd.axes[1])
    if curves:
        handles = _draw_curves(ax, curves, pd.axes)
        ax.set_xlim(float(np.min(pd.x)), float(np.max(pd.x)))
        ax.set_ylim(float(np.min(pd.y)), float(np.max(pd.y)))
        ax.add_artist(ax.get_legend())
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8, borderaxespad=0)
    ax.set_title(title or f"phase diagram (t = {pd.t_final:g})")
    return _finish(fig, path)


def plot_basins(bm: BasinMap, *, ax=None, path=None, title: str | None = None, max_points: int = 20000):
    """Basins of attraction: coloured regions (grid) or coloured initial conditions (sampled), with each
    label's share ± standard error in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    fig, ax = _new_axes(ax, figsize=(6.4, 4.4))
    extra = {nm: f"{f:.3f} ± {s:.3f}" for nm, f, s in zip(bm.label_names, bm.fractions, bm.stderr)}
    if bm.axes:
        _label_image(ax, bm.grid[0], bm.grid[1], bm.labels, bm.label_names, bm.axes[0], bm.axes[1], extra)
    else:
        lab = bm.labels.reshape(-1)
        take = np.arange(lab.size)
        if lab.size > max_points:
            take = np.random.default_rng(0).choice(lab.size, max_points, replace=False)
        names = bm.state_names or tuple(f"y{k}" for k in range(bm.y0s.shape[1]))
        j = 1 if bm.y0s.shape[1] > 1 else 0
        yy = bm.y0s[take, j] if j else np.zeros(take.size)
        ax.scatter(bm.y0s[take, 0], yy, c=[f"C{k % 10}" for k in lab[take]], s=4, lw=0)
        handles = [Line2D([], [], ls="", marker="o", color=f"C{k % 10}", label=f"{bm.label_names[k]} {extra[bm.label_names[k]]}")
                   for k in np.unique(lab)]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[j] if j else "")
    ax.set_title(title or f"basins of attraction (t = {bm.t_final:g})")
    return _finish(fig, path)


__all__ = ["plot_phase_portrait", "plot_bifurcation", "plot_phase_diagram", "plot_basins", "plot_curves"]
