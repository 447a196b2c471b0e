"""ncmargin.theory."""
