"""Airflow hooks and operators for Course Dashboard (a package name unique in plugins/)."""
