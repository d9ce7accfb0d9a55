"""Workflows that span models or touch the outside world, one module per pipeline stage."""
