"""Sphinx configuration: the API reference from the numpydoc docstrings, the tutorials with MyST-NB.

Build (from the repository root): ``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``.
``-n`` (nitpicky) reports every cross-reference that does not resolve, ``-W`` makes that an error.
The tutorials are executed during the build unless ``THEORYKIT_DOCS_EXECUTE=off`` (the test suite runs
them separately, so its strict build turns execution off).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "theorykit" / "__init__.py").exists():  # document (and run the tutorials on) this checkout
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))  # the argparse-help directive
# a non-interactive backend set for scripts (MPLBACKEND=Agg) would keep the tutorials' figures out of the pages
os.environ.pop("MPLBACKEND", None)

import theorykit  # noqa: E402

project = "theorykit"
author = "the theorykit developers"
copyright = "the theorykit developers"
release = version = theorykit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",  # the docstrings' sections (Parameters, Returns, Attributes, ...)
    "sphinx.ext.mathjax",
    "myst_nb",  # Markdown pages and the notebooks in tutorials/
    "argparse_help",  # the command-line page, generated from the argument parser (_ext/argparse_help.py)
]
exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints", "images"]
nitpicky = True
# base classes from other packages: their documentation is not linked (no network access at build time)
nitpick_ignore_regex = [("py:class", r"(enum|sympy|matplotlib)\..*")]

# -- API reference -------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections give the types, with shapes
autodoc_preserve_defaults = True
numpydoc_show_class_members = False  # autodoc lists the members
numpydoc_xref_param_type = False  # types like "float64[n, n_states]" are prose, not references
add_module_names = False

# -- tutorials -----------------------------------------------------------------------------------------------
nb_execution_mode = os.environ.get("THEORYKIT_DOCS_EXECUTE", "force")
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a tutorial that fails breaks the build
myst_enable_extensions = ["dollarmath", "amsmath"]

# -- HTML ----------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"theorykit {version}"


# -- constants re-exported by a stage's __init__ -------------------------------------------------------------
def constant_docs(app, what, name, obj, options, lines):
    """A constant re-exported from a private module shows its ``#:`` comment there, not its type's docstring
    (autodoc reads comments only in the module it is asked about)."""
    if what != "data":
        return
    from sphinx.pycode import ModuleAnalyzer
    from sphinx.errors import PycodeError

    package, _, attr = name.rpartition(".")
    for module in sorted(m for m in sys.modules if m.startswith(package + "._")):
        try:
            comment = ModuleAnalyzer.for_module(module).find_attr_docs().get(("", attr))
        except PycodeError:
            continue
        if comment:
            lines[:] = list(comment)
            return
    if " ".join(lines).split() == (type(obj).__doc__ or "").split():
        lines.clear()  # e.g. "Built-in immutable sequence." says nothing about the constant


def setup(app):
    app.connect("autodoc-process-docstring", constant_docs, priority=400)  # before numpydoc rewrites the lines
