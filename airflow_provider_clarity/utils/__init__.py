"""Small helpers shared across the flow: whole numbers and atomic writes to any storage."""
