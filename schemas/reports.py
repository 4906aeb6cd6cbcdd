"""The reports' columns (docs/reports.md), in file order, and their cell rules."""

import re

PROGRESS_COLUMNS = (
    "Collection Id",
    "Collection Name",
    "Batch Id",
    "Batch Name",
    "User UUID",
    "State",
    "District",
    "Org Name",
    "School Id",
    "School Name",
    "Block Name",
    "Cluster Name",
    "User Type",
    "User Sub Type",
    "Declared Board",
    "Enrolment Date",
    "Completion Date",
    "Certificate Status",
    "Progress",
    "Total Score",
)  # then one "<assessment name> - Score" column per assessment, in position order

USERINFO_COLUMNS = (
    "Collection Id",
    "Collection Name",
    "Batch Id",
    "Batch Name",
    "User UUID",
    "User Name",
    "User Type",
    "User Sub Type",
    "State",
    "District",
    "Block",
    "Cluster",
    "School Id",
    "School Name",
    "Org Name",
    "Email ID",
    "Mobile Number",
    "Consent Provided",
    "Consent Provided Date",
)

RESPONSE_COLUMNS = (
    "Collection Id",
    "Collection Name",
    "Batch Id",
    "Batch Name",
    "User UUID",
    "QuestionSet Id",
    "QuestionSet Title",
    "Attempt Id",
    "Attempted On",
    "Question Id",
    "Question Type",
    "Question Title",
    "Question Description",
    "Question Duration",
    "Question Score",
    "Question Max Score",
    "Question Options",
    "Question Response",
)

# A cell starting with one of these is a formula to a spreadsheet program (docs/reports.md, "The file");
# the regex serves Spark (Java) and Python alike.
FORMULA_START_RE = r"^[=+\-@\t\r]"


def guard(text: str) -> str:
    """Author- or user-supplied text made safe to open in a spreadsheet."""
    return "'" + text if re.match(FORMULA_START_RE, text) else text


COLUMNS = {"progress": PROGRESS_COLUMNS, "userinfo": USERINFO_COLUMNS, "response": RESPONSE_COLUMNS}


def assessment_headers(assessments: list[tuple[str, str]]) -> list[str]:
    """Score column headers for (content_id, name) pairs in position order.

    Two assessments sharing a name are told apart by their content id. The names are
    authors' text, so a header is guarded like any other cell.
    """
    names = [name for _, name in assessments]
    return [
        guard(f"{name} ({content_id}) - Score" if names.count(name) > 1 else f"{name} - Score")
        for content_id, name in assessments
    ]
