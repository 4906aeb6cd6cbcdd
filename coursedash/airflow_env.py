"""The environment Airflow commands run in for this project (embedded defaults)."""

import os

from coursedash.config import PROJECT_ROOT, var_dir


def airflow_env() -> dict[str, str]:
    """Airflow home under var/, this project's DAGs and plugins, no examples; set values win."""
    env = dict(os.environ)
    defaults = {
        "AIRFLOW_HOME": str(var_dir() / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env
