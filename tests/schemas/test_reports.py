from pathlib import Path

from schemas.reports import assessment_headers, guard


def test_assessment_headers_disambiguate_and_guard():
    assert assessment_headers([("q1", "Quiz"), ("q2", "+/- Quiz"), ("q3", "Quiz")]) == [
        "Quiz (q1) - Score",
        "'+/- Quiz - Score",
        "Quiz (q3) - Score",
    ]


def test_guard():
    assert [guard(t) for t in ["=1+1", "+91", "-x", "@a", "\tx", "\rx", "a=b", ""]] == [
        "'=1+1",
        "'+91",
        "'-x",
        "'@a",
        "'\tx",
        "'\rx",
        "a=b",
        "",
    ]


def test_the_readme_lists_every_data_note_reason():
    from schemas.notes import REASONS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code, (_one, many) in REASONS.items():
        assert f"| `{code}` | {many.replace('{n}', 'N')} |" in readme
