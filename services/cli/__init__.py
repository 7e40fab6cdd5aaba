"""The ordinaut command line."""
