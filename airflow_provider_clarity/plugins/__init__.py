"""Airflow plugins shipped by the provider: the "Clarity quota" page and its JSON endpoint."""
