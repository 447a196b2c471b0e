"""ncmargin.figures."""
