"""Ordinaut as an MCP server: the API's commands and queries as tools, over HTTP and stdio."""
