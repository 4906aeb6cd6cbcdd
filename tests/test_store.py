"""The request lifecycle of docs/lifecycle.md against both databases."""

import datetime as dt

import pytest
from sqlalchemy import text, update

from coursedash import db, passwords, store
from coursedash.db import Batch, Course, ReportRequest, utcnow
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, MENTOR2, STRANGER

GOOD = "Secret123"


@pytest.fixture
def s(app_env):
    now = utcnow()
    with db.session() as session:
        session.add_all(
            [
                Course(course_id="c1", name="Maths", created_by=CREATOR, user_consent_required=True, synced_at=now),
                Course(course_id="c2", name="Science", created_by=CREATOR, user_consent_required=False, synced_at=now),
                Batch(batch_id="b1", course_id="c1", created_by=BATCH_CREATOR, mentors=[MENTOR], synced_at=now),
                Batch(batch_id="b2", course_id="c1", created_by=CREATOR, mentors=[MENTOR2], synced_at=now),
                Batch(batch_id="b9", course_id="c2", created_by=CREATOR, mentors=[MENTOR], synced_at=now),
            ]
        )
        session.commit()
        yield session


def test_submit_stores_the_password_encrypted(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    assert r.status == "SUBMITTED" and r.attempts == 0
    raw = s.execute(text("SELECT password_token FROM report_requests")).scalar_one()
    assert GOOD not in raw
    assert passwords.decrypt(raw) == GOOD


def test_one_open_request_per_requester_batch_and_type(s):
    first = store.submit(s, MENTOR, "c1", "b1", "progress")
    with pytest.raises(store.OpenRequestExists) as refused:
        store.submit(s, MENTOR, "c1", "b1", "progress")
    assert refused.value.status == 409
    assert refused.value.extra["request_id"] == first.request_id
    assert first.request_id in refused.value.message
    # Others, other types and other batches are not blocked.
    store.submit(s, CREATOR, "c1", "b1", "progress")
    store.submit(s, MENTOR, "c1", "b1", "response")
    # Once it ends, the same report can be requested again.
    [claimed] = [r for r in store.claim(s, "run-1") if r.request_id == first.request_id]
    store.complete(s, claimed.request_id, "run-1", rows=1, size=1, key="k", report_date=dt.date(2026, 1, 1))
    assert store.submit(s, MENTOR, "c1", "b1", "progress").status == "SUBMITTED"


@pytest.mark.parametrize(
    "user, course, batch, report_type, error",
    [
        (STRANGER, "c1", "b1", "progress", store.NotFound),  # no role: 404, as for a missing batch
        (STRANGER, "c1", "nope", "progress", store.NotFound),
        (MENTOR, "c2", "b1", "progress", store.NotFound),  # batch of another course
        (MENTOR, "c1", "b1", "userinfo", store.Forbidden),  # mentors never get PII
        (MENTOR2, "c1", "b1", "progress", store.NotFound),  # mentor of another batch
        (CREATOR, "c2", "b9", "userinfo", store.NotRequestable),  # course asks no consent
        (CREATOR, "c1", "b1", "grades", store.BadRequest),
    ],
)
def test_refusals(s, user, course, batch, report_type, error):
    with pytest.raises(error) as refused:
        store.submit(s, user, course, batch, report_type, GOOD)
    assert refused.value.message
    assert s.query(ReportRequest).count() == 0


def test_who_may_request_what(s):
    assert store.submit(s, BATCH_CREATOR, "c1", "b1", "userinfo", GOOD).status == "SUBMITTED"
    assert store.submit(s, CREATOR, "c1", "b1", "userinfo", GOOD).status == "SUBMITTED"
    assert store.submit(s, MENTOR, "c1", "b1", "response").status == "SUBMITTED"


@pytest.mark.parametrize(
    "password, reason",
    [
        ("Ab1", "3 characters"),
        ("abcdefgh", "no digit"),
        ("12345678", "no letter"),
        ("Secret123 ", "space"),
        (" Secret123", "space"),
        ("Sécret1234", "printable ASCII"),
        ("A1" * 33, "66 characters"),
    ],
)
def test_password_policy_is_named_in_the_refusal(s, password, reason):
    with pytest.raises(store.BadRequest) as refused:
        store.submit(s, CREATOR, "c1", "b1", "progress", password)
    assert reason in refused.value.message
    assert passwords.POLICY in refused.value.message
    assert password not in refused.value.message


def test_userinfo_needs_a_password(s):
    with pytest.raises(store.BadRequest, match="mandatory"):
        store.submit(s, CREATOR, "c1", "b1", "userinfo", None)
    assert store.submit(s, CREATOR, "c1", "b1", "progress", None).password_token is None
    assert store.submit(s, CREATOR, "c1", "b2", "progress", "").password_token is None


def test_claim_is_exclusive_until_stale(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress")
    assert [x.request_id for x in store.claim(s, "run-1")] == [r.request_id]
    assert store.claim(s, "run-2") == []  # run-1 is still working on it
    # The same run claiming again (a task retry) keeps it, without counting an attempt.
    [again] = store.claim(s, "run-1")
    assert again.attempts == 1
    # Hours later run-1 is presumed crashed: the next run takes it.
    s.execute(update(ReportRequest).values(claimed_at=utcnow() - dt.timedelta(days=1)))
    s.commit()
    [taken] = store.claim(s, "run-3")
    assert taken.claimed_by_run == "run-3" and taken.attempts == 2
    # The crashed run waking up late cannot record an outcome any more.
    assert not store.complete(s, r.request_id, "run-1", rows=1, size=1, key="k", report_date=dt.date(2026, 1, 1))
    assert store.complete(s, r.request_id, "run-3", rows=1, size=1, key="k", report_date=dt.date(2026, 1, 1))
    s.refresh(taken)
    assert taken.status == "SUCCESS" and taken.row_count == 1


def test_transient_failures_are_retried_three_times_then_final(s):
    r = store.submit(s, CREATOR, "c1", "b1", "userinfo", GOOD)
    for attempt in (1, 2, 3):
        [claimed] = store.claim(s, f"run-{attempt}")
        assert claimed.attempts == attempt
        assert store.password_of(claimed) == GOOD  # kept while a retry is due
        store.fail(s, r.request_id, f"run-{attempt}", "the learner data could not be read", transient=True)
        s.refresh(r)
        if attempt < 3:
            assert store.will_retry(r)
            assert r.error == (
                "The learner data could not be read. "
                f"It will be retried in the next nightly run (attempt {attempt + 1} of 3)."
            )
    assert store.claim(s, "run-4") == []
    s.refresh(r)
    assert r.status == "FAILED" and r.password_token is None and not store.will_retry(r)
    assert r.error == (
        "The learner data could not be read. It will not be retried: all 3 attempts failed. "
        "Request the report again later."
    )


def test_a_request_whose_runs_keep_dying_is_given_up_saying_why(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress")
    for attempt in (1, 2, 3):
        store.claim(s, f"run-{attempt}")
        s.execute(update(ReportRequest).values(claimed_at=utcnow() - dt.timedelta(days=1)))  # the run died
        s.commit()
    assert store.claim(s, "run-4") == []
    s.refresh(r)
    assert (r.status, r.attempts, store.will_retry(r)) == ("FAILED", 3, False)
    assert r.error == (
        "The nightly run building this report stopped before it finished, 3 times. "
        "It will not be retried: all 3 attempts failed. Request the report again later."
    )


def test_whether_a_zip_has_a_password_outlives_the_password(s):
    from coursedash.reports import as_json

    locked = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    plain = store.submit(s, CREATOR, "c1", "b2", "progress")
    store.claim(s, "run-1")
    for r in (locked, plain):
        assert store.complete(s, r.request_id, "run-1", rows=1, size=1, key="k", report_date=dt.date(2026, 1, 1))
        s.refresh(r)
    assert locked.password_token is None  # erased at SUCCESS ...
    assert (as_json(locked)["password_protected"], as_json(plain)["password_protected"]) == (True, False)  # ... known


def test_permanent_failure_is_not_retried_and_erases_the_password(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    store.claim(s, "run-1")
    store.fail(s, r.request_id, "run-1", "batch is gone", transient=False)
    assert store.claim(s, "run-2") == []
    s.refresh(r)
    assert r.password_token is None and r.error == "Batch is gone. It will not be retried."


def test_a_new_request_replaces_a_pending_retry(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    store.claim(s, "run-1")
    store.fail(s, r.request_id, "run-1", "transient", transient=True)
    newer = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    assert [x.request_id for x in store.claim(s, "run-2")] == [newer.request_id]
    s.refresh(r)
    assert r.password_token is None


def test_a_request_whose_runs_keep_dying_is_given_up(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    for attempt in (1, 2, 3):
        [claimed] = store.claim(s, f"run-{attempt}")
        assert claimed.attempts == attempt
        s.execute(update(ReportRequest).values(claimed_at=utcnow() - dt.timedelta(days=1)))  # the run died
        s.commit()
    assert store.claim(s, "run-4") == []
    s.refresh(r)
    assert r.status == "FAILED" and not r.error_transient and r.password_token is None
    assert "3 attempts" in r.error


def test_a_retry_superseded_after_it_was_selected_is_not_claimed(s, monkeypatch):
    """The race: a new submit lands between claim's SELECT and its UPDATE."""
    old = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    store.claim(s, "run-1")
    store.fail(s, old.request_id, "run-1", "transient", transient=True)
    real_execute = s.execute
    raced = []

    def execute_after_a_new_submit(statement, *args, **kwargs):
        if not raced and getattr(statement, "is_update", False):
            raced.append(None)
            raced[0] = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(s, "execute", execute_after_a_new_submit)
    assert store.claim(s, "run-2") == []  # the old one is superseded; the new one came too late
    monkeypatch.undo()
    s.refresh(old)
    assert old.status == "FAILED" and old.password_token is None
    assert [r.request_id for r in store.claim(s, "run-3")] == [raced[0].request_id]


# --- cancel, and its race with the nightly claim -------------------------------------


def _retry_pending(s, user=CREATOR) -> ReportRequest:
    r = store.submit(s, user, "c1", "b1", "progress", GOOD)
    store.claim(s, "run-0")
    store.fail(s, r.request_id, "run-0", "the report could not be built tonight; it will be retried", transient=True)
    s.refresh(r)
    assert store.will_retry(r)
    return r


def test_cancel_first_then_claim_finds_nothing(s):
    submitted = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    assert store.cancel(s, CREATOR, submitted.request_id).status == "CANCELLED"
    retrying = _retry_pending(s, MENTOR)
    store.cancel(s, MENTOR, retrying.request_id)
    assert store.claim(s, "run-1") == []
    for r in (submitted, retrying):
        s.refresh(r)
        assert (r.status, r.password_token, r.error) == ("CANCELLED", None, None)


def test_claim_first_then_cancel_is_refused(s):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD)
    [claimed] = store.claim(s, "run-1")
    with pytest.raises(store.NotCancellable) as refused:
        store.cancel(s, CREATOR, r.request_id)
    assert refused.value.status == 409
    s.refresh(claimed)
    assert claimed.status == "PROCESSING" and store.password_of(claimed) == GOOD  # the build still needs it


def _before_first_update(s, monkeypatch, action):
    """Runs `action` (in another session) just before `s` sends its first UPDATE; once."""
    real_execute = s.execute
    done = []

    def execute(statement, *args, **kwargs):
        if not done and getattr(statement, "is_update", False):
            done.append(True)
            with db.session() as other:
                action(other)
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(s, "execute", execute)


@pytest.mark.parametrize("start", ["submitted", "retry pending"])
def test_a_cancel_landing_inside_the_claim_wins_and_the_claim_takes_nothing(s, monkeypatch, start):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD) if start == "submitted" else _retry_pending(s)
    _before_first_update(s, monkeypatch, lambda other: store.cancel(other, CREATOR, r.request_id))
    assert store.claim(s, "run-1") == []
    s.refresh(r)
    assert r.status == "CANCELLED" and r.claimed_by_run != "run-1"


@pytest.mark.parametrize("start", ["submitted", "retry pending"])
def test_a_claim_landing_inside_the_cancel_wins_and_the_cancel_is_refused(s, monkeypatch, start):
    r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD) if start == "submitted" else _retry_pending(s)
    _before_first_update(s, monkeypatch, lambda other: store.claim(other, "run-1"))
    with pytest.raises(store.NotCancellable):
        store.cancel(s, CREATOR, r.request_id)
    s.refresh(r)
    assert (r.status, r.claimed_by_run) == ("PROCESSING", "run-1") and store.password_of(r) == GOOD


def test_a_simultaneous_cancel_and_claim_settle_on_exactly_one(s):
    import threading

    for round_ in range(8):
        s.execute(text("DELETE FROM report_requests"))
        s.commit()
        r = store.submit(s, CREATOR, "c1", "b1", "progress", GOOD) if round_ % 2 else _retry_pending(s)
        barrier = threading.Barrier(2)
        outcome: dict[str, bool] = {}

        # Each round's values are passed in, not read from the loop's variables: a thread still running
        # after its join timed out would otherwise race the next round with that round's request.
        def cancel(request_id: str, barrier: threading.Barrier, outcome: dict) -> None:
            with db.session() as own:
                barrier.wait()
                try:
                    outcome["cancelled"] = store.cancel(own, CREATOR, request_id).status == "CANCELLED"
                except store.NotCancellable:
                    outcome["cancelled"] = False

        def claim(request_id: str, run_id: str, barrier: threading.Barrier, outcome: dict) -> None:
            with db.session() as own:
                barrier.wait()
                outcome["claimed"] = [x.request_id for x in store.claim(own, run_id)] == [request_id]

        threads = [
            threading.Thread(target=cancel, args=(r.request_id, barrier, outcome)),
            threading.Thread(target=claim, args=(r.request_id, f"run-{round_ + 1}", barrier, outcome)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
            assert not t.is_alive(), f"round {round_}: a thread is still running after a minute"
        s.refresh(r)
        assert outcome["cancelled"] != outcome["claimed"], (round_, outcome)
        assert r.status == ("CANCELLED" if outcome["cancelled"] else "PROCESSING")
