"""Running processes and adapters."""
