"""Why a report left a row out or showed it as it came, in words a course creator reads.

Real lakes are dirty (docs/lake.md, "Dirty rows"): a row that breaks an expectation is dropped or
passed through as the report's formulas say, and counted under one of these reasons.
The jobs count by code; a finished request carries `data_notes`, made here:
`[{"reason": sentence, "rows": n}]`, counts and reasons only, never a learner's identity.
"""

from __future__ import annotations

# code -> (sentence for one row, sentence for several); "{n}" is the count.
REASONS: dict[str, tuple[str, str]] = {
    # Found by the lake suites (schemas/expectations.py), within the request's batch or course.
    "courses.unknown_status": (
        "{n} row of the course table has a status other than Live, Retired or Draft; it was used as it is",
        "{n} rows of the course table have a status other than Live, Retired or Draft; they were used as they are",
    ),
    "courses.duplicate": (
        "{n} row of the course table repeats this course; the latest was used",
        "{n} rows of the course table describe this course; the latest was used",
    ),
    "batches.duplicate": (
        "{n} row of the batch table repeats this batch; the latest was used",
        "{n} rows of the batch table describe this batch; the latest was used",
    ),
    "contents.no_id": (
        "{n} course content without an id was left out",
        "{n} course contents without an id were left out",
    ),
    "contents.no_position": (
        "{n} course content has no position in the course; it was placed last",
        "{n} course contents have no position in the course; they were placed last",
    ),
    "contents.duplicate": (
        "{n} course content row repeats a content of this course; one of each was used",
        "{n} course content rows repeat a content of this course; one of each was used",
    ),
    "enrolments.no_learner": (
        "{n} enrolment without a learner was left out",
        "{n} enrolments without a learner were left out",
    ),
    "enrolments.no_active_flag": (
        "{n} enrolment is not marked active or inactive; it was left out",
        "{n} enrolments are not marked active or inactive; they were left out",
    ),
    "enrolments.duplicate": (
        "{n} enrolment row repeats a learner of this batch; the latest enrolment was used",
        "{n} enrolment rows repeat a learner of this batch; the latest enrolment of each was used",
    ),
    "enrolments.unknown_content_status": (
        "{n} enrolment has a content status other than not started, in progress or completed; "
        "such content counts as not completed",
        "{n} enrolments have a content status other than not started, in progress or completed; "
        "such content counts as not completed",
    ),
    "attempts.no_learner": (
        "{n} assessment attempt without a learner was left out",
        "{n} assessment attempts without a learner were left out",
    ),
    "attempts.no_content": (
        "{n} assessment attempt without an assessment id was left out",
        "{n} assessment attempts without an assessment id were left out",
    ),
    "attempts.no_id": (
        "{n} assessment attempt has no attempt id; its score counts all the same",
        "{n} assessment attempts have no attempt id; their scores count all the same",
    ),
    "attempts.above_max": (
        "{n} assessment attempt scored above its maximum; shown as computed",
        "{n} assessment attempts scored above their maximum; shown as computed",
    ),
    "attempts.negative_score": (
        "{n} assessment attempt has a negative score; shown as computed",
        "{n} assessment attempts have a negative score; shown as computed",
    ),
    "attempts.negative_max": (
        "{n} assessment attempt has a negative maximum score; shown as computed",
        "{n} assessment attempts have a negative maximum score; shown as computed",
    ),
    "attempts.zero_max": (
        "{n} assessment attempt has a maximum score of 0; its score cell is empty",
        "{n} assessment attempts have a maximum score of 0; their score cells are empty",
    ),
    "attempts.duplicate": (
        "{n} assessment attempt row repeats an attempt; the best score was used",
        "{n} assessment attempt rows repeat an attempt; the best score was used",
    ),
    "responses.no_learner": (
        "{n} question response without a learner was left out",
        "{n} question responses without a learner were left out",
    ),
    "responses.no_content": (
        "{n} question response has no assessment id; it is shown with that cell empty",
        "{n} question responses have no assessment id; they are shown with that cell empty",
    ),
    "responses.no_attempt": (
        "{n} question response has no attempt id; it is shown with that cell empty",
        "{n} question responses have no attempt id; they are shown with that cell empty",
    ),
    "responses.no_question": (
        "{n} question response has no question id; it is shown with that cell empty",
        "{n} question responses have no question id; they are shown with that cell empty",
    ),
    "responses.above_max": (
        "{n} question response scored above its maximum; shown as recorded",
        "{n} question responses scored above their maximum; shown as recorded",
    ),
    "responses.negative_max": (
        "{n} question response has a negative maximum score; shown as recorded",
        "{n} question responses have a negative maximum score; shown as recorded",
    ),
    "responses.duplicate": (
        "{n} question response row repeats an answer; the latest assessed was used",
        "{n} question response rows repeat an answer; the latest assessed of each was used",
    ),
    "users.unknown_status": (
        "{n} learner has a profile status other than active, inactive or deleted; their row is kept",
        "{n} learners have a profile status other than active, inactive or deleted; their rows are kept",
    ),
    "users.duplicate": (
        "{n} user profile row repeats a learner; one profile of each was used",
        "{n} user profile rows repeat a learner; one profile of each was used",
    ),
    "consents.unknown_status": (
        "{n} consent record has a status other than ACTIVE or REVOKED; it was not taken as consent",
        "{n} consent records have a status other than ACTIVE or REVOKED; they were not taken as consent",
    ),
    # Counted by the report jobs themselves: they span two tables, which no suite sees.
    "users.missing": (
        "{n} learner is missing from the user profile table; their profile cells are empty",
        "{n} learners are missing from the user profile table; their profile cells are empty",
    ),
    "consents.not_given": (
        "{n} learner has not consented to share their profile; left out",
        "{n} learners have not consented to share their profile; left out",
    ),
    "responses.not_enrolled": (
        "{n} question response is from a learner without an active enrolment in this batch; left out",
        "{n} question responses are from learners without an active enrolment in this batch; left out",
    ),
}


def data_notes(counts: dict[str, int]) -> list[dict]:
    """A request's notes from its counts by code, in REASONS order; zero counts say nothing."""
    notes = []
    for code, (one, many) in REASONS.items():
        n = counts.get(code, 0)
        if n:
            notes.append({"reason": (one if n == 1 else many).format(n=n), "rows": n})
    unknown = set(counts) - set(REASONS)
    if unknown:
        raise KeyError(f"no reason text for {sorted(unknown)}")
    return notes
