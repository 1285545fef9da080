"""Exception hierarchy: every error theorykit raises on purpose derives from :class:`TheorykitError`."""


class TheorykitError(Exception):
    """Base class of all theorykit errors."""


class InvalidParameterError(TheorykitError, ValueError):
    """A user-supplied value is outside its allowed range (the message names parameter and range)."""


class IncompleteSystemError(TheorykitError, ValueError):
    """An ODE system has stray symbols, inconsistent shapes or unresolved expectations."""


class CompileError(TheorykitError):
    """Code generation or JIT compilation of a system failed."""


class SolveError(TheorykitError):
    """An integration did not finish successfully (the message carries the status and a fix-it hint)."""


class StiffnessWarning(UserWarning):
    """An explicit integrator's step size was limited by stability (the problem is stiff there)."""


class CacheWarning(UserWarning):
    """A cached or stored file could not be used (unsafe folder, edited, corrupt, stale or foreign
    content); theorykit recomputes instead of trusting it."""
