"""The lake's tables (docs/lake.md, "The tables"), as Spark schemas.

Every reader and writer of the lake takes its columns from here: the Spark jobs read
with these schemas, the generator writes Parquet with `arrow_schema()`, tests build
frames with them.
"""

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _schema(*columns: tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype, nullable=True) for name, dtype in columns])


S, TS = StringType(), TimestampType()

COURSES = _schema(
    ("course_id", S),
    ("name", S),
    ("channel", S),
    ("created_by", S),
    ("status", S),
    ("user_consent_required", BooleanType()),
    ("created_on", TS),
)

COURSE_CONTENTS = _schema(
    ("course_id", S),
    ("content_id", S),
    ("name", S),
    ("content_type", S),
    ("is_assessment", BooleanType()),
    ("is_optional", BooleanType()),
    ("position", IntegerType()),
)

BATCHES = _schema(
    ("batch_id", S),
    ("course_id", S),
    ("name", S),
    ("start_date", DateType()),
    ("end_date", DateType()),
    ("created_by", S),
    ("mentors", ArrayType(S)),
    ("created_on", TS),
)

ENROLMENTS = _schema(
    ("user_id", S),
    ("course_id", S),
    ("batch_id", S),
    ("enrolled_on", TS),
    ("active", BooleanType()),
    ("completed_on", TS),
    ("content_status", MapType(S, IntegerType())),
    ("issued_certificates", ArrayType(S)),
)

ASSESSMENT_ATTEMPTS = _schema(
    ("user_id", S),
    ("course_id", S),
    ("batch_id", S),
    ("content_id", S),
    ("attempt_id", S),
    ("last_attempted_on", TS),
    ("total_score", DoubleType()),
    ("total_max_score", DoubleType()),
)

QUESTION_RESPONSES = _schema(
    ("user_id", S),
    ("course_id", S),
    ("batch_id", S),
    ("content_id", S),
    ("attempt_id", S),
    ("question_id", S),
    ("question_type", S),
    ("question_title", S),
    ("question_description", S),
    ("duration_seconds", DoubleType()),
    ("score", DoubleType()),
    ("max_score", DoubleType()),
    ("options", S),
    ("response", S),
    ("assessed_on", TS),
)

USERS = _schema(
    ("user_id", S),
    ("first_name", S),
    ("last_name", S),
    ("email", S),
    ("phone", S),
    ("state", S),
    ("district", S),
    ("block", S),
    ("cluster", S),
    ("school_id", S),
    ("school_name", S),
    ("org_name", S),
    ("user_type", S),
    ("user_sub_type", S),
    ("board", S),
    ("status", IntegerType()),
)

USER_CONSENTS = _schema(
    ("user_id", S),
    ("course_id", S),
    ("status", S),
    ("last_updated_on", TS),
)

TABLES: dict[str, StructType] = {
    "courses": COURSES,
    "course_contents": COURSE_CONTENTS,
    "batches": BATCHES,
    "enrolments": ENROLMENTS,
    "assessment_attempts": ASSESSMENT_ATTEMPTS,
    "question_responses": QUESTION_RESPONSES,
    "users": USERS,
    "user_consents": USER_CONSENTS,
}

# Columns that never leave the system except in a userinfo report.
PII_COLUMNS = ("first_name", "last_name", "email", "phone")


def arrow_schema(table: str):
    """The same table as a pyarrow schema, for writers that do not run Spark."""
    import pyarrow as pa

    def to_arrow(dtype: DataType):
        if isinstance(dtype, StringType):
            return pa.string()
        if isinstance(dtype, BooleanType):
            return pa.bool_()
        if isinstance(dtype, IntegerType):
            return pa.int32()
        if isinstance(dtype, DoubleType):
            return pa.float64()
        if isinstance(dtype, DateType):
            return pa.date32()
        if isinstance(dtype, TimestampType):
            return pa.timestamp("us", tz="UTC")
        if isinstance(dtype, ArrayType):
            return pa.list_(to_arrow(dtype.elementType))
        if isinstance(dtype, MapType):
            return pa.map_(to_arrow(dtype.keyType), to_arrow(dtype.valueType))
        raise TypeError(f"no Arrow type for {dtype}")

    return pa.schema([pa.field(f.name, to_arrow(f.dataType)) for f in TABLES[table].fields])
