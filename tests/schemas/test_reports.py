from schemas.reports import assessment_headers, guard


def test_assessment_headers_disambiguate_and_guard():
    assert assessment_headers([("q1", "Quiz"), ("q2", "+/- Quiz"), ("q3", "Quiz")]) == [
        "Quiz (q1) - Score",
        "'+/- Quiz - Score",
        "Quiz (q3) - Score",
    ]


def test_guard():
    assert [guard(t) for t in ["=1+1", "+91", "-x", "@a", "\tx", "\rx", "a=b", ""]] == [
        "'=1+1", "'+91", "'-x", "'@a", "'\tx", "'\rx", "a=b", ""
    ]
