"""Executing a task's pipeline: the runner a worker drives and a dry run fakes the tools of."""
