"""Every rule of docs/reports.md's User Profile Exhaust on a few hand-written rows."""

import pytest

from coursedash.manifest import Manifest, read_summary
from coursedash.packaging import write_csv
from jobs import night, userinfo_report
from schemas.reports import USERINFO_COLUMNS
from tests.lakefixtures import d, frame, ts

# The module's tests share built frames (module fixtures): one worker runs them all (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("userinfo_report")

COURSE = "do_c1"
BATCH = "b1"


def consent(user_id, status, when, course_id=COURSE):
    return dict(user_id=user_id, course_id=course_id, status=status, last_updated_on=ts(when) if when else None)


@pytest.fixture(scope="module")
def lake(spark):
    enrol = dict(course_id=COURSE, batch_id=BATCH, active=True, enrolled_on=ts("2026-01-05 10:00:00"))
    learner_ids = [
        "u_revoked",
        "u_reconsented",
        "u_silent",
        "u_unknown",
        "u_other_course",
        "u_tie",
        "u_names",
        "u_first",
        "u_last",
        "u_none",
        "9z",
        "=a",
        "B2",
    ]
    enrolments = [dict(enrol, user_id=u) for u in learner_ids] + [
        dict(enrol, user_id="u_reconsented", enrolled_on=ts("2026-01-06 10:00:00")),  # enrolled twice: one row
        dict(enrol, user_id="u_inactive", active=False),  # consented, but not active: not a learner at all
        dict(enrol, user_id="u_elsewhere", batch_id="b2"),  # another batch
    ]
    consents = [
        # ACTIVE then REVOKED: excluded
        consent("u_revoked", "ACTIVE", "2026-01-01 00:00:00"),
        consent("u_revoked", "REVOKED", "2026-01-02 00:00:00"),
        # REVOKED then ACTIVE: included, dated by the ACTIVE row; the undated row ranks last
        consent("u_reconsented", "REVOKED", "2026-01-01 00:00:00"),
        consent("u_reconsented", "ACTIVE", "2026-01-03 23:59:59"),
        consent("u_reconsented", "REVOKED", None),
        # u_silent: no consent row at all
        consent("u_unknown", "ACTIVE", "2026-01-04 00:00:00"),
        # consent for another course does not count
        consent("u_other_course", "ACTIVE", "2026-01-04 00:00:00", course_id="do_c2"),
        # ACTIVE and REVOKED at the same instant: not ACTIVE wins
        consent("u_tie", "ACTIVE", "2026-01-04 00:00:00"),
        consent("u_tie", "REVOKED", "2026-01-04 00:00:00"),
        consent("u_inactive", "ACTIVE", "2026-01-04 00:00:00"),
    ] + [
        consent(u, "ACTIVE", "2026-01-04 12:00:00")
        for u in ["u_names", "u_first", "u_last", "u_none", "9z", "=a", "B2"]
    ]
    users = [
        dict(
            user_id="u_reconsented",
            first_name="Asha",
            last_name="Rao",
            email="asha@example.org",
            phone="+919812345678",
            state="Kerala",
            district="-minus",
            block="Blk",
            cluster="Clu",
            school_id="S1",
            school_name='GHS, "North"',
            org_name="Org",
            user_type="student",
            user_sub_type="",
            board="CBSE",
            status=1,
        ),
        dict(user_id="u_reconsented", first_name="Asha", last_name="Rao", status=1),  # duplicate profile row
        dict(user_id="u_names", first_name="  Ravi ", last_name=" Kumar  ", email="@evil.example", phone="9876500000"),
        dict(user_id="u_first", first_name="Meena", last_name=None, email='=HYPERLINK("x")'),
        dict(user_id="u_last", first_name=None, last_name="=Rao"),
        dict(user_id="u_none", first_name=None, last_name="   "),
        dict(user_id="u_revoked", first_name="Gone", email="gone@example.org"),
        dict(user_id="9z", first_name="Nine"),
        dict(user_id="=a", first_name="Eq"),
        dict(user_id="B2", first_name="Bee"),
        dict(user_id="u_tie", first_name="Tie"),
    ]
    return dict(
        requests=spark.createDataFrame([("r1", COURSE, BATCH)], "request_id string, course_id string, batch_id string"),
        courses=frame(spark, "courses", [dict(course_id=COURSE, name="Maths, Part 1", user_consent_required=True)]),
        batches=frame(
            spark, "batches", [dict(batch_id=BATCH, course_id=COURSE, name="+Batch", start_date=d("2026-01-01"))]
        ),
        enrolments=frame(spark, "enrolments", enrolments),
        users=frame(spark, "users", users),
        consents=frame(spark, "user_consents", consents),
    )


@pytest.fixture(scope="module")
def transformed(lake):
    return userinfo_report.transform(**lake).orderBy("user_id").collect()


@pytest.fixture(scope="module")
def rows(transformed):
    return {r["user_id"]: r for r in transformed if r["dropped"] is None}


def cell(row, column):
    return row["cells"][USERINFO_COLUMNS.index(column)]


def test_only_learners_whose_latest_consent_is_active(rows):
    assert sorted(rows) == ["9z", "=a", "B2", "u_first", "u_last", "u_names", "u_none", "u_reconsented", "u_unknown"]


def test_learners_without_consent_are_flagged_with_no_cells(transformed):
    dropped = {r["user_id"]: r for r in transformed if r["dropped"] is not None}
    assert sorted(dropped) == ["u_other_course", "u_revoked", "u_silent", "u_tie"]
    assert {r["dropped"] for r in dropped.values()} == {"consents.not_given"}
    assert all(r["cells"] is None for r in dropped.values())  # their PII is never staged


def test_consent_cells_come_from_the_latest_active_row(rows):
    assert cell(rows["u_reconsented"], "Consent Provided") == "Yes"
    assert cell(rows["u_reconsented"], "Consent Provided Date") == "03/01/2026"


def test_missing_user_keeps_the_row_with_empty_profile(rows):
    row = rows["u_unknown"]
    assert row["missing_user"] is True
    assert row["cells"] == ["do_c1", "Maths, Part 1", "b1", "'+Batch", "u_unknown"] + [None] * 12 + [
        "Yes",
        "04/01/2026",
    ]
    assert rows["u_names"]["missing_user"] is False


def test_user_name_is_trimmed_and_skips_missing_parts(rows):
    assert cell(rows["u_reconsented"], "User Name") == "Asha Rao"
    assert cell(rows["u_names"], "User Name") == "Ravi Kumar"
    assert cell(rows["u_first"], "User Name") == "Meena"
    assert cell(rows["u_last"], "User Name") == "'=Rao"
    assert cell(rows["u_none"], "User Name") is None


def test_text_cells_are_guarded(rows):
    assert cell(rows["u_reconsented"], "Mobile Number") == "'+919812345678"
    assert cell(rows["u_names"], "Mobile Number") == "9876500000"
    assert cell(rows["u_names"], "Email ID") == "'@evil.example"
    assert cell(rows["u_first"], "Email ID") == '\'=HYPERLINK("x")'
    assert cell(rows["u_reconsented"], "District") == "'-minus"
    assert cell(rows["=a"], "User UUID") == "'=a"
    assert cell(rows["u_reconsented"], "User Sub Type") == ""


EXPECTED_CSV = "\ufeff" + (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,User Name,User Type,User Sub Type,State,"
    "District,Block,Cluster,School Id,School Name,Org Name,Email ID,Mobile Number,Consent Provided,"
    "Consent Provided Date\r\n"
    # byte order of the raw ids: "9" < "=" < "B" < "u" (the guarded "'=a" would sort first)
    'do_c1,"Maths, Part 1",b1,\'+Batch,9z,Nine,,,,,,,,,,,,Yes,04/01/2026\r\n'
    "do_c1,\"Maths, Part 1\",b1,'+Batch,'=a,Eq,,,,,,,,,,,,Yes,04/01/2026\r\n"
    'do_c1,"Maths, Part 1",b1,\'+Batch,B2,Bee,,,,,,,,,,,,Yes,04/01/2026\r\n'
    'do_c1,"Maths, Part 1",b1,\'+Batch,u_first,Meena,,,,,,,,,,"\'=HYPERLINK(""x"")",,Yes,04/01/2026\r\n'
    "do_c1,\"Maths, Part 1\",b1,'+Batch,u_last,'=Rao,,,,,,,,,,,,Yes,04/01/2026\r\n"
    "do_c1,\"Maths, Part 1\",b1,'+Batch,u_names,Ravi Kumar,,,,,,,,,,'@evil.example,9876500000,Yes,04/01/2026\r\n"
    'do_c1,"Maths, Part 1",b1,\'+Batch,u_none,,,,,,,,,,,,,Yes,04/01/2026\r\n'
    "do_c1,\"Maths, Part 1\",b1,'+Batch,u_reconsented,Asha Rao,student,,Kerala,'-minus,Blk,Clu,S1,"
    '"GHS, ""North""",Org,asha@example.org,\'+919812345678,Yes,03/01/2026\r\n'
    'do_c1,"Maths, Part 1",b1,\'+Batch,u_unknown,,,,,,,,,,,,,Yes,04/01/2026\r\n'
)


def test_csv_of_one_request_as_written(lake, tmp_path):
    rows = (
        userinfo_report.transform(**lake).filter("request_id = 'r1' AND dropped IS NULL").orderBy("user_id").collect()
    )
    path = tmp_path / "r1.csv"
    write_csv(path, USERINFO_COLUMNS, (r["cells"] for r in rows))
    assert path.read_bytes().decode("utf-8") == EXPECTED_CSV


def test_the_night_stages_sorted_rows_and_the_summary(spark, tmp_path):
    import pyarrow.parquet as pq

    from tests.lakefixtures import write_lake

    enrol = dict(course_id=COURSE, active=True, enrolled_on=ts("2026-01-05 10:00:00"))
    write_lake(
        tmp_path / "lake",
        {
            "courses": [dict(course_id=COURSE, name="Maths", user_consent_required=True)],
            "batches": [
                dict(batch_id="b1", course_id=COURSE, name="One"),
                dict(batch_id="b2", course_id=COURSE, name="Two"),
            ],
            "enrolments": [dict(enrol, batch_id="b1", user_id=u) for u in ("L3", "L2", "L1", "0a")]
            + [dict(enrol, batch_id="b2", user_id="L4")],
            "user_consents": [consent(u, "ACTIVE", "2026-01-04 00:00:00") for u in ("L1", "L2", "0a")]
            + [consent("L4", "REVOKED", "2026-01-04 00:00:00")],
            "users": [
                dict(user_id="L1", first_name="Asha", last_name="Rao", email="asha@example.org", phone="+919812345678"),
                dict(user_id="0a", first_name="Zero", state="Goa"),
                dict(user_id="L4", first_name="Revoked", phone="+910000000000"),
            ],
        },
    )
    manifest = tmp_path / "userinfo.manifest.json"
    Manifest(
        "userinfo",
        "2026-02-01",
        str(tmp_path / "lake"),
        [
            {"request_id": "r1", "course_id": COURSE, "batch_id": "b1"},
            {"request_id": "r2", "course_id": COURSE, "batch_id": "b2"},
            {"request_id": "r_gone", "course_id": COURSE, "batch_id": "b_gone"},
        ],
    ).save(manifest)
    out = tmp_path / "out"

    night.build(spark, [(Manifest.load(manifest), str(out))])  # the DAG's tests run it with spark-submit

    header = list(USERINFO_COLUMNS)
    summary = read_summary(out)
    # The files of the tables it read, as listed before reading: publishing checks them unchanged.
    assert sorted(summary.pop("lake")["files"]) == ["batches", "courses", "enrolments", "user_consents", "users"]
    assert summary == {
        "report_type": "userinfo",
        "requests": {
            "r1": {"header": header, "rows": 3, "left_out": {"consents.not_given": 1, "users.missing": 1}},
            "r2": {"header": header, "rows": 0, "left_out": {"consents.not_given": 1}},
            "r_gone": {
                "error": "batch b_gone is no longer in the learner data, so no report can be built",
                "transient": False,
            },
        },
    }
    [staged] = (out / "rows" / "request_id=r1").glob("*.parquet")
    head = [COURSE, "Maths", "b1", "One"]
    consent_cells = ["Yes", "04/01/2026"]
    assert pq.read_table(staged).column("cells").to_pylist() == [
        head + ["0a", "Zero", None, None, "Goa"] + [None] * 8 + consent_cells,
        head + ["L1", "Asha Rao"] + [None] * 9 + ["asha@example.org", "'+919812345678"] + consent_cells,
        head + ["L2"] + [None] * 12 + consent_cells,
    ]
    assert not (out / "rows" / "request_id=r2").exists()
