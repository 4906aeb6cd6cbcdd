"""Spark applications, each runnable by spark-submit."""
