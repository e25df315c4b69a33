"""Helpers shared by several test packages (import as ``from helpers.tiny_model import ...``)."""
