"""Analysis: degeneration, arithmetic probe, code-error taxonomy, tables and figures."""
