"""The course library: one import surface for every chapter's public code.

Later chapters write ``from shared import GPTModel`` instead of copying code.
Chapter names are resolved lazily (PEP 562 ``__getattr__``): importing
``shared`` loads no chapter, so a chapter module may itself import from
``shared`` without creating an import cycle.

The surface is derived, not kept by hand: every name in a generated chapter module's
``__all__`` (see ``shared/export.py``) plus the plumbing names listed below.
"""

from importlib import import_module

from shared.export import generated_modules

# The plumbing's public names (modules that import no chapter), written by hand.
_PLUMBING = {
    "settings": "shared.config",
    "Settings": "shared.config",
    "PROFILES": "shared.config",
    "get_device": "shared.runtime",
    "set_seed": "shared.runtime",
    "fetch": "shared.data",
    "REGISTRY": "shared.data",
    "DataFile": "shared.data",
    "ChecksumError": "shared.data",
    "FetchError": "shared.data",
    "gpt2_encoding": "shared.data",
    "END_OF_TEXT": "shared.data",
    "END_OF_TEXT_ID": "shared.data",
    "sha256_of": "shared.data",
    "atomic_write": "shared.files",
}

# Public names of a chapter module that stay off the surface: reach them through their module.
# Every entry says why; a test fails when an entry no longer names something in that __all__.
_NOT_ON_SURFACE: dict[str, set[str]] = {}


def _public_names() -> dict[str, str]:
    """Public name -> defining module: the plumbing, then every chapter module's ``__all__``.

    The chapter part is read from the generated modules' text, so nothing is imported.
    When two modules make the same name public, the earlier chapter's wins (a test
    requires each such clash to be listed in ``_NOT_ON_SURFACE``)."""
    names = dict(_PLUMBING)
    for module, public in generated_modules().items():
        for name in public:
            if name not in _NOT_ON_SURFACE.get(module, ()):
                names.setdefault(name, module)
    return names


_EXPORTS = _public_names()  # public name -> module that defines it

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shared' has no attribute {name!r}")
    value = getattr(import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return __all__
