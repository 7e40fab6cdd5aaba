"""Application operations: the commands and queries behind both the HTTP routes and MCP tools."""
