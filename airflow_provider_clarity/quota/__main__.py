"""``python -m airflow_provider_clarity.quota usage <id>``: the usage command from a shell."""

import sys

from airflow_provider_clarity.quota.cli import main

sys.exit(main())
