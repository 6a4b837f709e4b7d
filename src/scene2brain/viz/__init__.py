"""Figures (matplotlib) of encoding results; read-only users of results."""
