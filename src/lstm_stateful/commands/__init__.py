"""The commands: each a plain function from a validated config to a result object.

The CLI turns flags into these configs, calls one, and prints what it returns; a notebook
or a script calls them the same way (``lstm_stateful.run_command`` and friends).
"""
