"""The ``nascli`` command line (Typer). The only place that prints to the terminal or exits."""

#: The help of every command's optional experiment-id argument.
ID_HELP = "Experiment id (a unique prefix is enough); the latest experiment when omitted."
