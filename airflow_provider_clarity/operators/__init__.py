"""The Airflow operators: export a Clarity snapshot, derive coarser tables from a kept one."""
