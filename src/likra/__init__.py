"""likra: likelihood-ratio language models that learn from negative examples."""

__version__ = "0.1.0"
DEFAULT_MODEL = "smollm2-135m"  # the embedded model every command uses unless told otherwise
