"""The ``nascli`` command line (Typer). The only place that prints to the terminal or exits."""
