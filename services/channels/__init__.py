"""The Redis streams processes talk through (AsyncAPI's channels): names and both ends' code."""
