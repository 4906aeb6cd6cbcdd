"""The rules the night's frames share: the dashboard counts the learners the reports keep."""

from pyspark.sql import functions as F

from jobs.frames import active_enrolments, active_learner_counts
from tests.lakefixtures import frame, ts


def test_active_learner_counts_agree_with_the_enrolments_the_reports_keep(spark):
    e1, e2, c = ts("2026-01-01 00:00:00"), ts("2026-02-01 00:00:00"), ts("2026-03-01 00:00:00")
    rows = [
        # u1: the latest enrolment has no completion, an older one has: not completed.
        dict(batch_id="b1", user_id="u1", active=True, enrolled_on=e1, completed_on=c),
        dict(batch_id="b1", user_id="u1", active=True, enrolled_on=e2),
        # u2: two rows of the same enrolment date, one completed: the completed one is kept.
        dict(batch_id="b1", user_id="u2", active=True, enrolled_on=e1),
        dict(batch_id="b1", user_id="u2", active=True, enrolled_on=e1, completed_on=c),
        # u3: a row without an enrolment date loses to one with a date, completed or not.
        dict(batch_id="b1", user_id="u3", active=True, completed_on=c),
        dict(batch_id="b1", user_id="u3", active=True, enrolled_on=e1),
        # u4: no dates at all; completed.
        dict(batch_id="b1", user_id="u4", active=True, completed_on=c),
        # Not counted: inactive, unknown active flag, no learner.
        dict(batch_id="b1", user_id="u5", active=False, enrolled_on=e2, completed_on=c),
        dict(batch_id="b1", user_id="u6", enrolled_on=e2),
        dict(batch_id="b1", user_id=None, active=True, enrolled_on=e2),
        # u1 again, in another batch: counted there.
        dict(batch_id="b2", user_id="u1", active=True, enrolled_on=e2, completed_on=c),
    ]
    enrolments = frame(spark, "enrolments", rows)
    counted = {r.batch_id: (r.enrolment_count, r.completed_count) for r in active_learner_counts(enrolments).collect()}
    kept = active_enrolments(enrolments).groupBy("batch_id").agg(
        F.count(F.lit(1)).alias("n"), F.count("completed_on").alias("completed"))
    assert counted == {"b1": (4, 2), "b2": (1, 1)}  # u2 and u4 completed
    assert counted == {r.batch_id: (r.n, r.completed) for r in kept.collect()}
