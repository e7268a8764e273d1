"""Time rules: the clock, UTC formats, a snapshot's window, partition days, history gaps."""
