"""Core CLI commands: list and print systems, solve one, reproduce the theories' results."""

from __future__ import annotations

import argparse

from .errors import InvalidParameterError


def parse_assignments(items: list[str] | None, what: str) -> dict[str, float]:
    """``["eta=0.1", "sigma2=0.5"]`` -> ``{"eta": 0.1, "sigma2": 0.5}`` with a clear error on bad items."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InvalidParameterError(f"{what} expects NAME=VALUE, got {part!r}")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise InvalidParameterError(f"{what} {name.strip()}: {value!r} is not a number") from None
    return out


def resolve_system(name: str):
    """The :class:`~theorykit.theories.BuiltinSystem` called ``name`` (clear error listing the choices)."""
    from .theories import builtin_systems

    systems = builtin_systems()
    if name not in systems:
        matches = [k for k in systems if k.endswith("." + name)]
        if len(matches) == 1:
            return systems[matches[0]]
        raise InvalidParameterError(f"unknown system {name!r}; choose one of: {', '.join(systems)}")
    return systems[name]


def add_system_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments every command acting on one built-in system takes."""
    p.add_argument("system", help="built-in system, e.g. reference.eigenmode_cubic (see 'theorykit systems')")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="override a parameter (repeatable, or comma-separated)")
    p.add_argument("--backend", choices=("numba", "numpy"), default="numba", help="compiled backend")


def system_and_params(args) -> tuple:
    """(builtin, compiled system, params dict) from parsed :func:`add_system_arguments` arguments."""
    from .compile import compile_system

    builtin = resolve_system(args.system)
    params = {**builtin.params, **parse_assignments(args.param, "--param")}
    csys = compile_system(builtin.build(), backend=args.backend)
    unknown = sorted(set(params) - set(csys.param_names))
    if unknown:
        raise InvalidParameterError(f"--param: {unknown} are not parameters of {args.system}; "
                                    f"its parameters are {list(csys.param_names)}")
    return builtin, csys, params


def _cmd_systems(args) -> int:
    from .theories import builtin_systems

    for key, b in builtin_systems().items():
        print(f"{key:40s} {b.description}")
    return 0


def _cmd_derive(args) -> int:
    builtin = resolve_system(args.system)
    system = builtin.build()
    print(system.to_latex() if args.format == "latex" else system.to_markdown())
    return 0


def register(sub) -> None:
    p = sub.add_parser("systems", help="list the built-in ODE systems")
    p.set_defaults(func=_cmd_systems)

    p = sub.add_parser("derive", help="print the equations of a built-in system (LaTeX or Markdown)")
    p.add_argument("system", help="built-in system name (see 'theorykit systems')")
    p.add_argument("--format", choices=("markdown", "latex"), default="markdown")
    p.set_defaults(func=_cmd_derive)
