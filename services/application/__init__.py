"""The application layer: the use cases HTTP, MCP, the CLI and the declarative loader all call."""
