"""Example third-party plugin (filled in by the foundation work)."""
