"""The destination: a normalised table encoded as files, and the lineage of what was written."""
