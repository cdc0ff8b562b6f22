"""Dataset helpers. Not imported by ``import mmdiff``: import the submodule you need."""
