"""The kept answer: Clarity's raw snapshot, the deployment-wide index, and reuse."""
