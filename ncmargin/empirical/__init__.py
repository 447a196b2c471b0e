"""ncmargin.empirical."""
