"""Shared helpers, shipped as a layer (python/ is on the runtime's sys.path)."""
