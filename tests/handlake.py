"""A small hand-written lake that exercises the progress rules, and its expected report."""

from tests.lakefixtures import d, ts

CREATOR, BATCH_CREATOR, MENTOR, MENTOR2, STRANGER = "u_creator", "u_batchcreator", "u_mentor", "u_mentor2", "u_stranger"

TABLES = {
    "courses": [
        dict(
            course_id="c1",
            name="Maths, Part 1",
            channel="org1",
            created_by=CREATOR,
            status="Live",
            user_consent_required=True,
            created_on=ts("2025-12-01 00:00:00"),
        ),
        dict(
            course_id="c2",
            name="Science",
            channel="org1",
            created_by=CREATOR,
            status="Live",
            user_consent_required=False,
        ),
    ],
    "batches": [
        dict(
            batch_id="b1",
            course_id="c1",
            name="Batch One",
            start_date=d("2026-01-01"),
            end_date=None,
            created_by=BATCH_CREATOR,
            mentors=[MENTOR],
        ),
        dict(
            batch_id="b2",
            course_id="c1",
            name="Batch Two",
            start_date=d("2026-01-01"),
            end_date=d("2026-03-01"),
            created_by=CREATOR,
            mentors=[MENTOR2],
        ),
        dict(
            batch_id="b9",
            course_id="c2",
            name="Science batch",
            start_date=d("2026-01-01"),
            created_by=CREATOR,
            mentors=[],
        ),
    ],
    "course_contents": [
        dict(
            course_id="c1",
            content_id="v1",
            name="Video",
            content_type="Video",
            is_assessment=False,
            is_optional=False,
            position=1,
        ),
        dict(
            course_id="c1",
            content_id="v2",
            name="Extra",
            content_type="Video",
            is_assessment=False,
            is_optional=True,
            position=4,
        ),
        dict(
            course_id="c1",
            content_id="q1",
            name="Quiz",
            content_type="QuestionSet",
            is_assessment=True,
            is_optional=False,
            position=2,
        ),
        dict(
            course_id="c1",
            content_id="q2",
            name='Test "A"',
            content_type="QuestionSet",
            is_assessment=True,
            is_optional=False,
            position=3,
        ),
    ],
    "enrolments": [
        dict(
            user_id="L1",
            course_id="c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-05 09:00:00"),
            active=True,
            completed_on=ts("2026-02-01 10:00:00"),
            content_status={"v1": 2, "q1": 2, "q2": 2},
            issued_certificates=["cert-L1"],
        ),
        dict(
            user_id="L2",
            course_id="c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-06 09:00:00"),
            active=True,
            content_status={"v1": 2, "v2": 2, "q1": 1},
            issued_certificates=[],
        ),
        dict(
            user_id="L2",
            course_id="c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-06 09:00:00"),
            active=True,
            content_status={"v1": 2, "v2": 2, "q1": 1},
            issued_certificates=[],
        ),
        dict(
            user_id="L3",
            course_id="c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-07 09:00:00"),
            active=True,
            content_status={"v1": 2, "q1": 2},
        ),
        dict(
            user_id="L4",
            course_id="c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-07 09:00:00"),
            active=False,
            content_status={"v1": 2},
        ),
        dict(user_id="L5", course_id="c1", batch_id="b_unknown", enrolled_on=ts("2026-01-07 09:00:00"), active=True),
    ],
    "assessment_attempts": [
        dict(
            user_id="L1",
            course_id="c1",
            batch_id="b1",
            content_id="q2",
            attempt_id="at1",
            last_attempted_on=ts("2026-01-20 11:00:00"),
            total_score=3.0,
            total_max_score=4.0,
        ),
        dict(
            user_id="L2",
            course_id="c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="at2",
            last_attempted_on=ts("2026-01-21 11:00:00"),
            total_score=4.0,
            total_max_score=6.0,
        ),
        dict(
            user_id="L2",
            course_id="c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="at3",
            last_attempted_on=ts("2026-01-22 11:00:00"),
            total_score=5.0,
            total_max_score=6.0,
        ),
    ],
    "users": [
        dict(
            user_id="L1",
            first_name="Asha",
            last_name="=Rao",
            email="asha@example.org",
            phone="+919812345678",
            state="Tamil Nadu",
            district="Chennai",
            block="Blk",
            cluster="Clu",
            school_id="S1",
            school_name='GHS, "North"\nCampus',
            org_name="Org",
            user_type="student",
            user_sub_type=None,
            board="CBSE",
            status=1,
        ),
        dict(
            user_id="L2",
            first_name="அருண்",
            last_name="குமார்",
            email="arun@example.org",
            phone="9876500000",
            state="Kerala",
            district="-minus",
            school_id="S2",
            school_name="School Two",
            org_name="Org",
            user_type="student",
            board="State",
            status=1,
        ),
    ],
}

PII_VALUES = ["Asha", "=Rao", "asha@example.org", "+919812345678", "அருண்", "குமார்", "arun@example.org", "9876500000"]

PROGRESS_HEADER = (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,State,District,Org Name,School Id,"
    "School Name,Block Name,Cluster Name,User Type,User Sub Type,Declared Board,Enrolment Date,"
    'Completion Date,Certificate Status,Progress,Total Score,Quiz - Score,"Test ""A"" - Score"\r\n'
)

# Written by hand from the rules: L1 completed (100), best of q2 3/4; L2 has v1 of
# v1, q1, q2 done (33), best q1 is 5/6; L3 is missing from users, v1 and q1 done (67).
B1_PROGRESS_CSV = (
    "\ufeff"
    + PROGRESS_HEADER
    + (
        'c1,"Maths, Part 1",b1,Batch One,L1,Tamil Nadu,Chennai,Org,S1,"GHS, ""North""\nCampus",Blk,Clu,student,,'
        "CBSE,05/01/2026,01/02/2026,Issued,100,75.00,,75.00\r\n"
        'c1,"Maths, Part 1",b1,Batch One,L2,Kerala,\'-minus,Org,S2,School Two,,,student,,State,06/01/2026,,,33,'
        "83.33,83.33,\r\n"
        'c1,"Maths, Part 1",b1,Batch One,L3,,,,,,,,,,,07/01/2026,,,67,,,\r\n'
    )
)
B2_PROGRESS_CSV = "\ufeff" + PROGRESS_HEADER

TABLES["user_consents"] = [
    dict(user_id="L1", course_id="c1", status="ACTIVE", last_updated_on=ts("2026-01-10 08:00:00")),
    dict(user_id="L2", course_id="c1", status="ACTIVE", last_updated_on=ts("2026-01-09 08:00:00")),
    dict(user_id="L2", course_id="c1", status="REVOKED", last_updated_on=ts("2026-01-12 08:00:00")),
    dict(user_id="L3", course_id="c1", status="ACTIVE", last_updated_on=ts("2026-01-11 08:00:00")),
]

_response = dict(course_id="c1", batch_id="b1", options='["A","B"]')
TABLES["question_responses"] = [
    dict(
        _response,
        user_id="L1",
        content_id="q2",
        attempt_id="at1",
        question_id="qq1",
        question_type="mcq",
        question_title="Sum, of 2+2?",
        question_description="=1+1",
        duration_seconds=12.5,
        score=1.0,
        max_score=1.0,
        options='[{"a": "4"}]',
        response='["4"]',
        assessed_on=ts("2026-01-20 11:00:00"),
    ),
    dict(
        _response,
        user_id="L1",
        content_id="q2",
        attempt_id="at1",
        question_id="qq2",
        question_type="ftb",
        question_title='Say "hi"\nplease',
        question_description=None,
        duration_seconds=0.0001,
        score=0.0,
        max_score=2.0,
        options="[]",
        response="-",
        assessed_on=ts("2026-01-20 11:05:00"),
    ),
    # answered twice: the later one counts
    dict(
        _response,
        user_id="L2",
        content_id="q1",
        attempt_id="at3",
        question_id="qq1",
        question_type="mcq",
        question_title="Capital?",
        duration_seconds=3.0,
        score=0.0,
        max_score=1.0,
        response="A",
        assessed_on=ts("2026-01-22 11:00:00"),
    ),
    dict(
        _response,
        user_id="L2",
        content_id="q1",
        attempt_id="at3",
        question_id="qq1",
        question_type="mcq",
        question_title="Capital?",
        duration_seconds=3.0,
        score=1.0,
        max_score=1.0,
        response="B",
        assessed_on=ts("2026-01-22 12:00:00"),
    ),
    # an attempt missing from assessment_attempts
    dict(
        _response,
        user_id="L2",
        content_id="q1",
        attempt_id="at_missing",
        question_id="qq1",
        question_type="mcq",
        question_title="Capital?",
        duration_seconds=4.0,
        score=0.0,
        max_score=1.0,
        response="A",
        assessed_on=ts("2026-01-23 12:00:00"),
    ),
    # an inactive learner: not reported
    dict(
        _response,
        user_id="L4",
        content_id="q1",
        attempt_id="at9",
        question_id="qq1",
        question_type="mcq",
        question_title="Capital?",
        duration_seconds=4.0,
        score=0.0,
        max_score=1.0,
        response="A",
        assessed_on=ts("2026-01-23 12:00:00"),
    ),
]

# L1 consented; L2's latest consent is REVOKED; L3 consented but is missing from users.
B1_USERINFO_CSV = "\ufeff" + (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,User Name,User Type,User Sub Type,State,"
    "District,Block,Cluster,School Id,School Name,Org Name,Email ID,Mobile Number,Consent Provided,"
    "Consent Provided Date\r\n"
    'c1,"Maths, Part 1",b1,Batch One,L1,Asha =Rao,student,,Tamil Nadu,Chennai,Blk,Clu,S1,'
    '"GHS, ""North""\nCampus",Org,asha@example.org,\'+919812345678,Yes,10/01/2026\r\n'
    'c1,"Maths, Part 1",b1,Batch One,L3,,,,,,,,,,,,,Yes,11/01/2026\r\n'
)

B1_RESPONSE_CSV = "\ufeff" + (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,QuestionSet Id,QuestionSet Title,Attempt Id,"
    "Attempted On,Question Id,Question Type,Question Title,Question Description,Question Duration,"
    "Question Score,Question Max Score,Question Options,Question Response\r\n"
    'c1,"Maths, Part 1",b1,Batch One,L1,q2,"Test ""A""",at1,20/01/2026 11:00:00,qq1,mcq,"Sum, of 2+2?",'
    '\'=1+1,12.5,1,1,"[{""a"": ""4""}]","[""4""]"\r\n'
    'c1,"Maths, Part 1",b1,Batch One,L1,q2,"Test ""A""",at1,20/01/2026 11:00:00,qq2,ftb,"Say ""hi""\nplease",'
    ",0.0001,0,2,[],'-\r\n"
    'c1,"Maths, Part 1",b1,Batch One,L2,q1,Quiz,at3,22/01/2026 11:00:00,qq1,mcq,Capital?,,3,1,1,'
    '"[""A"",""B""]",B\r\n'
    'c1,"Maths, Part 1",b1,Batch One,L2,q1,Quiz,at_missing,,qq1,mcq,Capital?,,4,0,1,"[""A"",""B""]",A\r\n'
)


def store_catalogue() -> None:
    """The lake's courses and batches in the dashboard's database, as a sync stores them, without Spark."""
    from coursedash import db
    from coursedash.db import Batch, Course, utcnow

    now = utcnow()
    with db.session() as s:
        for c in TABLES["courses"]:
            s.add(
                Course(
                    course_id=c["course_id"],
                    name=c["name"],
                    created_by=c["created_by"],
                    user_consent_required=c["user_consent_required"],
                    synced_at=now,
                )
            )
        for b in TABLES["batches"]:
            s.add(
                Batch(
                    batch_id=b["batch_id"],
                    course_id=b["course_id"],
                    name=b["name"],
                    created_by=b["created_by"],
                    mentors=b["mentors"],
                    synced_at=now,
                )
            )
        s.commit()
