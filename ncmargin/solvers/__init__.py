"""ncmargin.solvers."""
