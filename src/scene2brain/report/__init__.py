"""Figures and HTML reports (read-only users of results)."""
