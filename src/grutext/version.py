"""The package version, in a module of its own so internal modules never import the top package."""

__version__ = "0.1.0"
