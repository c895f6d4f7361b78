"""Brain AI engine: learns text into memories and a concept graph, and searches both."""

__version__ = "0.1.0"
