"""The Airflow sensor: wait until a Clarity project has calls left."""
