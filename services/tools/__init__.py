"""Calling tools: the http and mcp transports, the builtins they serve, and the invoker."""
