"""Apache Airflow provider for the Microsoft Clarity Data Export API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
