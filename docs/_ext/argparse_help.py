"""A Sphinx directive that prints a command line's help, one section per subcommand, from its parser.

    .. argparse-help:: package.module:function_returning_an_ArgumentParser

The text is ``PROG --help`` and ``PROG COMMAND --help`` as argparse formats them when the documentation is
built, so the page cannot drift from the code. (sphinx-argparse would render the options as tables, but
the terminal's help text is what users compare against, and it needs no further dependency.)
"""

from __future__ import annotations

import argparse
import importlib
import os

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: the help is wrapped at this many columns, whatever the terminal that builds the documentation
COLUMNS = 100


def formatted_help(parser: argparse.ArgumentParser) -> str:
    """``parser``'s ``--help`` text, wrapped at :data:`COLUMNS`."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(COLUMNS)  # argparse reads the width from the environment
    try:
        return parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser`` in the order ``--help`` lists them (none: empty)."""
    for action in parser._actions:  # argparse has no public accessor for its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class ArgparseHelp(SphinxDirective):
    """``.. argparse-help:: module:function``: the help of the parser ``function()`` returns."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module, _, function = self.arguments[0].partition(":")
        parser = getattr(importlib.import_module(module), function)()
        lines = []
        for title, sub in [(f"{parser.prog}", parser),
                           *((f"{parser.prog} {name}", p) for name, p in subcommands(parser).items())]:
            lines += [f"``{title}``", "-" * (len(title) + 4), "", ".. code-block:: text", ""]
            lines += [f"   {line}" if line.strip() else "" for line in formatted_help(sub).splitlines()]
            lines.append("")
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=self.arguments[0]), container)
        return container.children


def setup(app):
    app.add_directive("argparse-help", ArgparseHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
