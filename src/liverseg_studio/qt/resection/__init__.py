"""Virtual resection and the future liver remnant (issue 25)."""
