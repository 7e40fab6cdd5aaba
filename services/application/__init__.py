"""The use cases HTTP, MCP, the CLI and the declarative loader call."""
