"""The hand lake with every kind of row-level dirt the suites know, all of it in batch b1 or course c1.

b2 (same course, no learners) sees only the course's dirt: each request's notes are its own.
"""

from tests import handlake
from tests.lakefixtures import ts

T = handlake.TABLES
L1_ENROLMENT, L2_ENROLMENT, _, L3_ENROLMENT = T["enrolments"][:4]


def tables() -> dict:
    return {
        **T,
        "courses": [*T["courses"], dict(T["courses"][0], status="live", created_on=None)],  # an older, odd copy
        "batches": [*T["batches"], T["batches"][0]],  # an exact copy
        "course_contents": [
            *T["course_contents"],
            dict(T["course_contents"][0], content_id=None, name="No id"),
            dict(T["course_contents"][2], content_id="q3", name="Final", position=None),  # placed last
        ],
        "enrolments": [
            L1_ENROLMENT,
            # the same enrolment again, differing only in its map and array: the complete order picks one
            dict(L1_ENROLMENT, content_status={"q2": 2, "q1": 2, "v1": 2}, issued_certificates=["cert-L1", "x"]),
            *T["enrolments"][1:3],  # L2 twice
            dict(L3_ENROLMENT, content_status={"v1": 2, "q1": 2, "v2": 5}),  # 5: no such status
            *T["enrolments"][4:],
            dict(L2_ENROLMENT, user_id=None),
            dict(L2_ENROLMENT, user_id="L6", active=None),
        ],
        "assessment_attempts": [
            *T["assessment_attempts"],
            dict(
                T["assessment_attempts"][0], content_id="q1", attempt_id="at4", total_score=18.0, total_max_score=15.0
            ),
            dict(T["assessment_attempts"][1], content_id="q2", attempt_id="at5", total_score=0.0, total_max_score=0.0),
            dict(
                T["assessment_attempts"][0],
                user_id="L3",
                content_id="q2",
                attempt_id="at6",
                total_score=2.0,
                total_max_score=-4.0,
            ),
        ],
        "users": [
            *T["users"][:1],
            dict(T["users"][0], district="Z"),  # a second profile of L1
            dict(T["users"][1], status=3),
        ],
        "user_consents": [
            *T["user_consents"],
            dict(user_id="L1", course_id="c1", status="PENDING", last_updated_on=ts("2026-01-13 08:00:00")),
        ],
        "question_responses": [
            *T["question_responses"],
            dict(T["question_responses"][0], user_id=None),
            dict(T["question_responses"][0], question_id=None, assessed_on=ts("2026-01-20 11:01:00")),
            dict(T["question_responses"][1], question_id="qq3", score=5.0),  # 5 of 2
        ],
    }


# What each b1 request counts, by note code; b2's progress request sees only the course's dirt.
COURSE_NOTES = {"courses.duplicate": 2, "courses.unknown_status": 1, "contents.no_id": 1, "contents.no_position": 1}
B1_BATCH_NOTES = {
    "batches.duplicate": 2,
    "enrolments.duplicate": 4,
    "enrolments.no_active_flag": 1,
    "enrolments.no_learner": 1,
    "enrolments.unknown_content_status": 1,
}
B1_NOTES = {
    "progress": {
        **COURSE_NOTES,
        **B1_BATCH_NOTES,
        "attempts.above_max": 2,
        "attempts.negative_max": 1,
        "attempts.zero_max": 1,
        "users.duplicate": 2,
        "users.missing": 1,
        "users.unknown_status": 1,
    },
    "userinfo": {
        **{k: v for k, v in COURSE_NOTES.items() if k.startswith("courses.")},
        **B1_BATCH_NOTES,
        "consents.not_given": 2,
        "consents.unknown_status": 1,
        "users.duplicate": 2,
        "users.missing": 1,
        "users.unknown_status": 1,
    },
    "response": {
        **COURSE_NOTES,
        **B1_BATCH_NOTES,
        "attempts.above_max": 2,
        "attempts.negative_max": 1,
        "attempts.zero_max": 1,
        "responses.above_max": 1,
        "responses.duplicate": 2,
        "responses.no_learner": 1,
        "responses.no_question": 1,
        "responses.not_enrolled": 1,
    },
}
B2_PROGRESS_NOTES = COURSE_NOTES
