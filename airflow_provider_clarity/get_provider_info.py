"""What Airflow discovers about this provider (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_clarity import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow's ProvidersManager reads at runtime."""
    return {
        "package-name": "airflow-provider-clarity",
        "name": "Microsoft Clarity",
        "description": "Export Microsoft Clarity dashboard data, within its 10-calls-a-day quota.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Microsoft Clarity",
                "external-doc-url": "https://learn.microsoft.com/en-us/clarity/setup-and-installation/clarity-data-export-api",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Microsoft Clarity",
                "python-modules": ["airflow_provider_clarity.hooks.clarity"],
            }
        ],
        "operators": [
            {
                "integration-name": "Microsoft Clarity",
                "python-modules": [
                    "airflow_provider_clarity.operators.export",
                    "airflow_provider_clarity.operators.derive",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Microsoft Clarity",
                "python-modules": ["airflow_provider_clarity.sensors.quota"],
            }
        ],
        "config": {
            "clarity": {
                "description": "Settings of the Clarity provider that are not per connection.",
                "options": {
                    "ledger_lock_dir": {
                        "description": (
                            "Directory of the quota ledgers' lock files. Every process that "
                            "calls Clarity takes a project's lock before counting a call in its "
                            "ledger. Default: $AIRFLOW_HOME/clarity-ledger-locks, which "
                            "serialises the processes of one host. With tasks on several hosts "
                            "(Celery, Kubernetes...), set it to a directory every worker mounts "
                            "(NFS or another file system that honours flock): then the "
                            "clarity_api pool may have many slots and different projects call "
                            "in parallel. Without it, only tasks in the clarity_api pool "
                            "(1 slot) may call there."
                        ),
                        "version_added": None,
                        "type": "string",
                        "example": "/mnt/airflow-shared/clarity-ledger-locks",
                        "default": "",
                    },
                },
            },
        },
        "plugins": [
            {
                "name": "clarity_quota",
                "plugin-class": "airflow_provider_clarity.plugins.quota_plugin.ClarityQuotaPlugin",
            }
        ],
        "cli": ["airflow_provider_clarity.airflow_commands.get_clarity_cli_commands"],
        "connection-types": [
            {
                "connection-type": "clarity",
                "hook-class-name": "airflow_provider_clarity.hooks.clarity.ClarityHook",
                "hook-name": "Microsoft Clarity",
                "conn-fields": {
                    "project_id": {
                        "label": "Project ID",
                        "description": (
                            "The Clarity project this token belongs to (Settings > Overview). "
                            "Connections with the same Project ID share one daily quota ledger; "
                            "when empty, the project the API token names is used."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "daily_limit": {
                        "label": "Daily limit",
                        "description": (
                            "Calls Clarity allows this project per day. Clarity's limit is 10."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 10, "minimum": 1},
                    },
                    "reserve": {
                        "label": "Reserved calls",
                        "description": (
                            "Calls per day that Airflow leaves unspent for people and tools "
                            "outside Airflow."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 0, "minimum": 0},
                    },
                    "quota_window": {
                        "label": "Quota window",
                        "description": (
                            "UTC day: the count resets at 00:00 UTC (Clarity's behaviour as far "
                            "as is known). Rolling: calls count for the number of seconds below."
                        ),
                        "schema": {
                            "type": ["string", "null"],
                            "default": "utc_day",
                            "enum": ["utc_day", "rolling"],
                            "values_display": {
                                "utc_day": "UTC day (resets at 00:00 UTC)",
                                "rolling": "Rolling window (seconds below)",
                            },
                        },
                    },
                    "rolling_window_seconds": {
                        "label": "Rolling window (seconds)",
                        "description": "Length of a rolling quota window. Default one day.",
                        "schema": {"type": ["integer", "null"], "default": 86400, "minimum": 1},
                    },
                    "timeout": {
                        "label": "Read timeout (seconds)",
                        "description": (
                            "How long to wait for Clarity's answer. A task's "
                            "hook_params={'timeout': ...} overrides it."
                        ),
                        "schema": {"type": ["number", "null"], "default": 60, "minimum": 1},
                    },
                    "degraded_cooldown_seconds": {
                        "label": "Outage cool-down (seconds)",
                        "description": (
                            "After Clarity fails every attempt of a call with a 5xx, other tasks "
                            "wait this long instead of spending their attempts; then one probe "
                            "call checks. 0 turns this off."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 1800, "minimum": 0},
                    },
                    "max_snapshot_age_seconds": {
                        "label": "Share snapshots younger than (seconds)",
                        "description": (
                            "A task asking what another task asked less than this long ago "
                            "reuses that answer (kept on object storage or a shared raw "
                            "location) instead of spending a call. 0 turns sharing off."
                        ),
                        "schema": {"type": ["integer", "null"], "default": 3600, "minimum": 0},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"password": "API token"},
                    "placeholders": {
                        "host": "https://www.clarity.ms",
                        "password": "Clarity > Settings > Data Export > Generate new API token",
                    },
                },
            }
        ],
    }
