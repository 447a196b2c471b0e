"""Subcommand implementations of the `ncmargin` CLI; one module per subcommand (add_arguments, run)."""
