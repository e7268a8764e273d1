"""What a Clarity connection says, read offline: the token's claims and the quota settings."""
