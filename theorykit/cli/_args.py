"""Argument types and checks shared by the commands: every bad value is rejected before any work starts,
in one line naming the flag the user typed."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import InvalidParameterError


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def int_at_least(low: int):
    """argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def parse_assignments(items: Iterable[str] | None, flag: str) -> dict[str, float]:
    """``["eta=0.1", "sigma2=0.5"]`` -> ``{"eta": 0.1, "sigma2": 0.5}``; repeated or comma-separated."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InvalidParameterError(f"{flag} expects NAME=VALUE, got {part!r}")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise InvalidParameterError(f"{flag} {name.strip()}: {value!r} is not a number") from None
            if not math.isfinite(out[name.strip()]):
                raise InvalidParameterError(f"{flag} {name.strip()}: {value!r} is not a finite number")
    return out


def writable_folder(path: str | os.PathLike, flag: str) -> Path:
    """``path`` if it is (or can be created as) a folder this process may write in; checked before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"{flag}: {path} exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidParameterError(f"{flag}: {existing} is not a folder, so {path} cannot be created")
    try:  # the only reliable test (permissions, read-only or virtual file systems): make a folder there
        os.rmdir(tempfile.mkdtemp(prefix=".theorykit-check-", dir=existing))
    except OSError as exc:
        raise InvalidParameterError(f"{flag}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path


def select_names(only: Iterable[str] | None, known: Iterable[str], flag: str = "--only") -> list[str]:
    """The names chosen with a repeatable, comma-separated ``flag`` (all of ``known`` if none), in ``known``'s
    order."""
    known = list(known)
    if not only:
        return known
    chosen = [o.strip() for item in only for o in item.split(",") if o.strip()]
    unknown = [o for o in chosen if o not in known]
    if unknown:
        raise InvalidParameterError(f"{flag}: unknown theory {unknown}; choose from {', '.join(known)}")
    return [k for k in known if k in chosen]


def tolerance_overrides(items: Iterable[str] | None, claims: Mapping[str, Iterable[str]],
                        flag: str = "--tolerance") -> dict[str, float]:
    """``THEORY.CLAIM=VALUE`` or ``CLAIM=VALUE`` items checked against the claims the selected theories declare
    (``claims``: theory -> claim names); values must be >= 0."""
    overrides = parse_assignments(items, flag)
    declared = {theory: set(names) for theory, names in claims.items()}
    for key, value in overrides.items():
        theory, dot, claim = key.rpartition(".")
        if dot:
            if theory not in declared:
                raise InvalidParameterError(f"{flag} {key}: {theory!r} is not a selected theory "
                                            f"({', '.join(declared)})")
            if claim not in declared[theory]:
                raise InvalidParameterError(f"{flag} {key}: {theory} has no claim {claim!r}; its claims are "
                                            f"{', '.join(sorted(declared[theory]))}")
        elif not any(key in names for names in declared.values()):
            raise InvalidParameterError(f"{flag} {key}: no selected theory has a claim {key!r} "
                                        f"(write THEORY.CLAIM; 'theorykit reproduce --help' shows an example)")
        if value < 0:
            raise InvalidParameterError(f"{flag} {key}: a tolerance must be >= 0, got {value:g}")
    return overrides
