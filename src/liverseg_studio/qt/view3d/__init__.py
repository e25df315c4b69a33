"""3D view of the liver and its lesions (issue 25)."""
