"""Who may see, request and download what (docs/reports.md): one place for the API, CLI and page."""

from coursedash.db import Batch, Course

# Report type -> roles that may request and download it.
ALLOWED_ROLES = {
    "progress": {"course_creator", "batch_creator", "mentor"},
    "userinfo": {"course_creator", "batch_creator"},
    "response": {"course_creator", "batch_creator", "mentor"},
}
PASSWORD_REQUIRED = {"progress": False, "userinfo": True, "response": False}


def roles(user_id: str, course: Course, batch: Batch | None = None) -> set[str]:
    """The caller's roles on a course, or on one of its batches."""
    found = set()
    if course.created_by == user_id:
        found.add("course_creator")
    if batch is not None:
        if batch.created_by == user_id:
            found.add("batch_creator")
        if user_id in (batch.mentors or []):
            found.add("mentor")
    return found


def can_see_batch(user_id: str, course: Course, batch: Batch) -> bool:
    return bool(roles(user_id, course, batch))


def may_request(user_id: str, course: Course, batch: Batch, report_type: str) -> bool:
    return bool(roles(user_id, course, batch) & ALLOWED_ROLES[report_type])


def report_types_for(user_id: str, course: Course, batch: Batch) -> list[str]:
    """The report types this user may request for this batch, in dashboard order."""
    mine = roles(user_id, course, batch)
    return [t for t, allowed in ALLOWED_ROLES.items() if mine & allowed]
