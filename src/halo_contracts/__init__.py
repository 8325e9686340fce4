"""halopsa-contracts-mcp: an MCP server for an MSP's HaloPSA contract book."""

__version__ = "0.1.0"
