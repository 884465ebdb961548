"""likra: likelihood-ratio language models that learn from negative examples."""

__version__ = "0.1.0"
