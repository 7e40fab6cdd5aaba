"""What the adapters (HTTP, MCP) share of how they answer: the problem document."""
