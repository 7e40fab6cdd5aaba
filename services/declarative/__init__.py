"""Declarative tasks: `ordinaut apply -f tasks.yaml` and `ordinaut up --tasks-file`."""
