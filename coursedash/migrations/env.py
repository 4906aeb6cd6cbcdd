"""Alembic environment: the engine comes from coursedash.db.migrate()."""

from alembic import context

from coursedash.db import Base

# Airflow keeps its own alembic_version; ours must not collide when both share a database.
VERSION_TABLE = "coursedash_alembic_version"

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
