# One image for every role in docker-compose.yaml: Airflow, the Spark master and
# workers (pyspark ships Spark itself) and the dashboard.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps p7zip-full \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/coursedash
COPY requirements.txt pyproject.toml ./
COPY coursedash ./coursedash
COPY schemas ./schemas
RUN pip install --no-cache-dir -r requirements.txt -e .
COPY . .
# Spark's classes, parsed once for the Spark drivers and executors the image starts (coursedash/classarchive.py).
RUN python -m coursedash.classarchive

ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/coursedash/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/coursedash/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PYTHONPATH=/opt/coursedash
