"""Shulian (数链) node: the daemon and its library."""

__all__ = ["__version__"]

__version__ = "0.1.0"
