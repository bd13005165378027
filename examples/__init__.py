"""Runnable examples. The README's Python snippets, run from the repository root, import the digits
module and data from here (``from examples.digits import DigitsClassifier, DigitsDataModule``)."""
