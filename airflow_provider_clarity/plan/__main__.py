"""``python -m airflow_provider_clarity.plan [DAGS_FOLDER]``."""

import sys

from airflow_provider_clarity.plan.cli import main

sys.exit(main())
