"""The Airflow hook: ``ClarityHook`` and the pieces it owns (HTTP, retries, error words)."""
