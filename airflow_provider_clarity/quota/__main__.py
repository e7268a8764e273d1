"""``python -m airflow_provider_clarity.quota usage <conn_id | project_id>``."""

import sys

from airflow_provider_clarity.quota.cli import main

sys.exit(main())
