"""The package's constants, in a module of their own so that every layer can read them without
importing the package face (``likra/__init__.py``), which sits on top: it exposes ``likra.train``."""

__version__ = "0.1.0"
DEFAULT_MODEL = "smollm2-135m"  # the embedded model every command uses unless told otherwise
