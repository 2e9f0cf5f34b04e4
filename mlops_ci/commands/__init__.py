"""Commands: one module per CLI command, the only layer that composes the steps of the flow."""
