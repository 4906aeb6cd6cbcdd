"""A deterministic synthetic lake (docs/lake.md) for demos, tests and benchmarks.

`generate_lake()` writes every lake table as Parquet under `out_dir/<table>/`.

Every random value is a hash of (seed, what is drawn, learner index, ...) rather than
the next draw of one shared stream. So a learner's rows are the same whatever chunk
they fall in: the lake does not depend on `chunk_size`, and each chunk of learners is
generated with numpy, written and dropped, which keeps memory flat at any size.

The catalogue (courses, contents, batches, creators, mentors) is fixed, with dates
relative to `today`, so demos can rely on its ids whatever the seed. Benchmarks may
scale it (`courses`, `batches`): copies of the same courses and batches under new ids.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.lake import TABLES, arrow_schema

log = logging.getLogger("coursedash.lakegen")

DAY = 86_400

# ---------------------------------------------------------------------------------
# Randomness: counter-based, so a value depends only on its keys.
# ---------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection on uint64 that scatters every input bit."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Random:
    def __init__(self, seed: int):
        self._seed = np.array([seed % 2**64], dtype=np.uint64)

    def bits(self, what: str, *keys) -> np.ndarray:
        """64 random bits per element of the broadcast keys, one stream per `what`."""
        h = _mix(self._seed + np.array([zlib.crc32(what.encode())], dtype=np.uint64) * _GOLDEN)
        for key in keys:
            h = _mix(h ^ _mix(np.asarray(key).astype(np.uint64) + _GOLDEN))
        return h

    def uniform(self, what: str, *keys) -> np.ndarray:
        return (self.bits(what, *keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _choose(u: np.ndarray, weights) -> np.ndarray:
    """Index into `weights` picked by the uniforms `u`."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)


# ---------------------------------------------------------------------------------
# The fixed catalogue: courses, their contents and question sets, batches.
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Question:
    qtype: str
    title: str
    description: str | None
    options: str  # JSON
    answers: tuple[tuple[str, float], ...]  # (response JSON, score); the best first
    max_score: float
    difficulty: float


def _js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _mcq(title, description, options, correct, difficulty=0.0) -> _Question:
    answers = [(_js([{"index": correct, "text": options[correct]}]), 1.0)]
    answers += [(_js([{"index": i, "text": t}]), 0.0) for i, t in enumerate(options) if i != correct]
    answers.append(("[]", 0.0))  # skipped
    opts = [{"index": i, "text": t, "answer": i == correct} for i, t in enumerate(options)]
    return _Question("mcq", title, description, _js(opts), tuple(answers), 1.0, difficulty)


def _mmcq(title, description, options, correct, difficulty=0.1) -> _Question:
    chosen = lambda idx: _js([{"index": i, "text": options[i]} for i in idx])  # noqa: E731
    wrong = next(i for i in range(len(options)) if i not in correct)
    # Partial credit makes half marks, so totals are not always whole numbers.
    answers = [(chosen(correct), 1.0)] + [(chosen([i]), 0.5) for i in correct]
    answers += [(chosen([wrong]), 0.0), ("[]", 0.0)]
    opts = [{"index": i, "text": t, "answer": i in correct} for i, t in enumerate(options)]
    return _Question("mmcq", title, description, _js(opts), tuple(answers), 1.0, difficulty)


def _ftb(title, description, answer, wrongs, difficulty=0.1) -> _Question:
    answers = [(_js([{"text": answer}]), 1.0)] + [(_js([{"text": w}]), 0.0) for w in wrongs]
    answers.append(("[]", 0.0))
    return _Question("ftb", title, description, "[]", tuple(answers), 1.0, difficulty)


def _mtf(title, description, pairs, difficulty=0.2) -> _Question:
    left, right = [p[0] for p in pairs], [p[1] for p in pairs]
    matched = lambda n: _js([{"left": left[i], "right": right[i]} for i in range(n)])  # noqa: E731
    answers = ((matched(len(pairs)), 2.0), (matched(1), 1.0), (_js([{"left": left[0], "right": right[1]}]), 0.0))
    return _Question("mtf", title, description, _js({"left": left, "right": right}), answers, 2.0, difficulty)


# Titles, descriptions and answers include several scripts, commas, quotes, newlines,
# an empty and a null description, and text starting with "-", "=" or "@".
QUESTIONS: tuple[_Question, ...] = (
    _mcq("What is 7 + 5?", "Choose one answer.", ["10", "11", "12", "13"], 2),
    _mcq("-5 + 3 = ?", "Warm-up: negative numbers", ["-2", "2", "-8", "8"], 0, 0.15),
    _mmcq(
        "Which of these are even numbers?", 'Select all that apply, e.g. "2" and "4".', ["2", "3", "8", "11"], [0, 2]
    ),
    _ftb("The place value of 4 in 3,452 is ____.", "Write digits only, no commas.", "400", ["40", "4,00"]),
    _mcq(
        "किसी संख्या को 10 से गुणा करने पर क्या होता है?",
        "एक उत्तर चुनें।",
        ["अंत में एक शून्य जुड़ता है", "संख्या आधी हो जाती है", "कोई बदलाव नहीं"],
        0,
    ),
    _mcq("பத்து + ஐந்து = ?", "சரியான விடையைத் தேர்ந்தெடுக்கவும்.", ["பதினைந்து", "பதினான்கு", "பன்னிரண்டு"], 0),
    _mtf(
        "Match each strategy to its example",
        "Counting on: 8, 9, 10\nMaking ten: 8 + 2 + 3",
        [("Counting on", "8 → 9 → 10"), ("Making ten", "8 + 5 = 8 + 2 + 3"), ("Doubles", "6 + 6 = 12")],
    ),
    _mcq(
        'Complete the phrase: "Assessment ___ learning"',
        "Pick the best answer",
        ["for", "of", "as", "All of the above"],
        3,
        0.2,
    ),
    _mmcq(
        "Which of these are formative assessment tools?",
        "Select all that apply.",
        ["Exit tickets", "Board examination", "Quizzes, with peer review", "Annual report card"],
        [0, 2],
    ),
    _ftb("=SUM(A1:A3) adds up ____ cells.", "Spreadsheets", "3", ["1", "A3"]),
    _mcq(
        "A rubric is best described as:",
        "Think about criteria,\nnot marks.",
        ["A list of criteria with levels of quality", "A final exam", "A seating chart"],
        0,
    ),
    _mcq(
        "What does URL stand for?",
        None,
        ["Uniform Resource Locator", "Universal Routing Link", "Unified Resource Layer"],
        0,
    ),
    _mcq("@mentions in a group chat are used to…", "", ["notify a person", "delete a message", "block a user"], 0),
    _ftb("A strong password has at least ____ characters.", "Write a number.", "8", ["4", "six"]),
    _mcq(
        "डिजिटल साक्षरता का अर्थ क्या है?",
        "सही विकल्प चुनें।",
        ["डिजिटल उपकरणों का सुरक्षित और प्रभावी उपयोग", "केवल टाइपिंग", "कंप्यूटर खरीदना"],
        0,
    ),
    _mcq("শিশুর প্রথম শিক্ষক কে?", "একটি উত্তর বেছে নিন।", ["মা-বাবা", "বন্ধু", "টেলিভিশন"], 0),
    _mtf(
        "Match the age to the stage",
        "Ages in years",
        [("0–2", "Sensorimotor"), ("2–7", "Preoperational"), ("7–11", "Concrete operational")],
    ),
    _mcq("ఐదు × నాలుగు = ?", "ఒక సమాధానం ఎంచుకోండి.", ["ఇరవై", "పదిహేను", "పది"], 0),
)

# Mean seconds spent on a question, by type.
_DURATION = {"mcq": 20.0, "mmcq": 35.0, "ftb": 30.0, "mtf": 60.0}


@dataclass(frozen=True)
class _Content:
    name: str
    content_type: str
    questions: tuple[int, ...] = ()  # indexes into QUESTIONS; an assessment has some
    is_optional: bool = False


@dataclass(frozen=True)
class _Course:
    course_id: str
    name: str
    channel: str
    created_by: str
    status: str
    user_consent_required: bool
    created_days_ago: int
    weight: float  # share of enrolments
    contents: tuple[_Content, ...]


@dataclass(frozen=True)
class _Batch:
    batch_id: str
    course: int  # index into the catalogue's courses
    name: str
    start: int  # days from today
    end: int | None  # days from today; None: open-ended
    created_by: str
    mentors: tuple[str, ...]
    weight: float  # share of the course's enrolments


COURSES: tuple[_Course, ...] = (
    _Course(
        "do_course_0001",
        "Foundations of Numeracy",
        "channel_scert_tn",
        "user_creator_01",
        "Live",
        True,
        420,
        0.35,
        (
            _Content("Introduction to the Course", "Resource"),
            _Content("Counting and Place Value", "Resource"),
            _Content("Place Value Check", "SelfAssess", (0, 3, 4)),
            _Content("Addition Strategies", "Resource"),
            _Content("Number Games (extra reading)", "Resource", is_optional=True),
            _Content("+/- Quiz: Addition & Subtraction", "SelfAssess", (1, 5, 6, 2)),
            _Content("Final Assessment", "QuestionSet", (0, 1, 2, 3, 5, 17)),
        ),
    ),
    # Two assessments named "Module Quiz": the progress report must tell them apart.
    _Course(
        "do_course_0002",
        "Classroom Assessment Practices",
        "channel_ncert",
        "user_creator_02",
        "Live",
        False,
        400,
        0.30,
        (
            _Content("Why Assess?", "Resource"),
            _Content("Module Quiz", "SelfAssess", (7, 10, 8)),
            _Content("Rubrics, Checklists and Portfolios", "Resource"),
            _Content("Module Quiz", "SelfAssess", (8, 10, 7, 1)),
            _Content('Case Study: "A Rural School"', "Resource", is_optional=True),
            _Content("Reflection Journal", "Resource", is_optional=True),
        ),
    ),
    _Course(
        "do_course_0003",
        "डिजिटल साक्षरता - Digital Literacy for Teachers",
        "channel_scert_up",
        "user_creator_01",
        "Live",
        True,
        150,
        0.25,
        (
            _Content("इंटरनेट का परिचय", "Resource"),
            _Content("Browsers, Links and URLs", "Resource"),
            _Content("Safe Online Practice", "SelfAssess", (11, 12, 13)),
            _Content("Spreadsheet Practice", "Resource", is_optional=True),
            _Content("डिजिटल साक्षरता मूल्यांकन", "QuestionSet", (14, 9, 13, 11, 12)),
        ),
    ),
    _Course(
        "do_course_0004",
        "Early Childhood Care and Education, 2019",
        "channel_ncert",
        "user_creator_03",
        "Retired",
        False,
        1000,
        0.10,
        (
            _Content("Stages of Development", "Resource"),
            _Content("Play-based Learning", "Resource"),
            _Content("ECCE Check", "SelfAssess", (15, 16, 0)),
        ),
    ),
)

BATCHES: tuple[_Batch, ...] = (
    _Batch(
        "batch_0001", 0, "Numeracy - Live Cohort", -45, 45, "user_creator_01", ("user_mentor_01", "user_mentor_02"), 0.5
    ),
    _Batch("batch_0002", 0, "Numeracy - Earlier Cohort", -240, -120, "user_batchcreator_01", ("user_mentor_03",), 0.4),
    _Batch("batch_0003", 0, "Numeracy - Next Cohort", 10, 100, "user_batchcreator_01", (), 0.1),
    _Batch(
        "batch_0004",
        1,
        'Assessment Practices, "Open" batch',
        -90,
        None,
        "user_batchcreator_02",
        ("user_mentor_01",),
        0.55,
    ),
    _Batch(
        "batch_0005",
        1,
        "Assessment Practices - Pilot",
        -300,
        -200,
        "user_creator_02",
        ("user_mentor_02", "user_mentor_04"),
        0.35,
    ),
    _Batch("batch_0006", 1, "Assessment Practices - Upcoming", 30, 120, "user_creator_02", ("user_mentor_04",), 0.1),
    _Batch(
        "batch_0007",
        2,
        "डिजिटल साक्षरता बैच 1",
        -20,
        70,
        "user_batchcreator_01",
        ("user_mentor_03", "user_mentor_05"),
        0.5,
    ),
    _Batch("batch_0008", 2, "Digital Literacy - Ended Yesterday", -100, -1, "user_creator_01", (), 0.4),
    _Batch(
        "batch_0009", 2, "Digital Literacy - Starts Tomorrow", 1, 60, "user_batchcreator_02", ("user_mentor_05",), 0.1
    ),
    _Batch("batch_0010", 3, "ECCE 2019 Batch", -900, -700, "user_creator_03", ("user_mentor_06",), 0.5),
    _Batch(
        "batch_0011",
        3,
        "ECCE 2020 Batch",
        -600,
        -400,
        "user_batchcreator_01",
        ("user_mentor_06", "user_mentor_01"),
        0.35,
    ),
    _Batch("batch_0012", 3, "ECCE Final Batch (ends today)", -60, 0, "user_creator_03", (), 0.15),
)

# Enrolments pointing at batches that `batches` does not know.
UNKNOWN_BATCH_IDS = ("batch_9001", "batch_9002")


def scaled_catalogue(n_courses: int = len(COURSES), n_batches: int = len(BATCHES)):
    """(courses, batches): the fixed catalogue, or as many copies of it as asked for.

    Benchmarks need many batches (100 requests on 100 different batches) without a
    new catalogue to maintain. Course i is a copy of COURSES[i % 4] under its own id;
    batches go to courses in runs, batch j to course j * n_courses // n_batches, and the
    k-th batch of a course copies the k-th (mod 3) batch of its template course. The
    defaults (4 courses, 12 batches) give the fixed catalogue itself, so lakes
    generated without these options stay byte for byte what they were.
    """
    if not 1 <= n_courses <= n_batches:
        raise ValueError("courses must be >= 1 and batches >= courses (every course needs a batch)")
    if n_batches > 9000:  # batch_9001 and up are the enrolments' unknown batches
        raise ValueError("batches must be at most 9000")
    per_template = len(BATCHES) // len(COURSES)
    courses = tuple(
        COURSES[i]
        if i < len(COURSES)
        else replace(
            COURSES[i % len(COURSES)],
            course_id=f"do_course_{i + 1:04d}",
            name=f"{COURSES[i % len(COURSES)].name} ({i // len(COURSES) + 1})",
        )
        for i in range(n_courses)
    )
    batches: list[_Batch] = []
    seen: Counter[int] = Counter()
    for j in range(n_batches):
        course = j * n_courses // n_batches
        k, seen[course] = seen[course], seen[course] + 1
        template = BATCHES[(course % len(COURSES)) * per_template + k % per_template]
        original = course < len(COURSES) and k < per_template  # the template itself keeps its name
        batches.append(
            replace(
                template,
                batch_id=f"batch_{j + 1:04d}",
                course=course,
                name=template.name if original else f"{template.name} ({j + 1})",
            )
        )
    return courses, tuple(batches)


def _content_id(course: int, position: int) -> str:
    return f"do_content_{course + 1:02d}{position:02d}"


def _batch_status(b: _Batch) -> str:
    if b.start > 0:
        return "upcoming"
    return "live" if b.end is None or b.end >= 0 else "expired"


# ---------------------------------------------------------------------------------
# People and places.
# ---------------------------------------------------------------------------------

# (name in its script, Latin spelling for the e-mail address)
NAMES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "latin": (
        [
            (n, n)
            for n in (
                "Priya",
                "Arun",
                "Rahul",
                "Anjali",
                "Mohammed",
                "Fatima",
                "Joseph",
                "Gurpreet",
                "Lakshmi",
                "Sneha",
                "Vikram",
                "Ayesha",
            )
        ],
        [
            (n, n.replace("'", ""))
            for n in (
                "Sharma",
                "Patel",
                "Khan",
                "Singh",
                "Iyer",
                "Reddy",
                "Das",
                "Fernandes",
                "Nair",
                "Mukherjee",
                "D'Souza",
            )
        ],
    ),
    "devanagari": (
        [
            ("प्रिया", "Priya"),
            ("राहुल", "Rahul"),
            ("अंजलि", "Anjali"),
            ("सुनीता", "Sunita"),
            ("अमित", "Amit"),
            ("पूजा", "Pooja"),
            ("विकास", "Vikas"),
            ("नेहा", "Neha"),
        ],
        [
            ("शर्मा", "Sharma"),
            ("वर्मा", "Verma"),
            ("यादव", "Yadav"),
            ("मिश्रा", "Mishra"),
            ("पाटील", "Patil"),
            ("गुप्ता", "Gupta"),
        ],
    ),
    "tamil": (
        [
            ("அருண்", "Arun"),
            ("கவிதா", "Kavitha"),
            ("முருகன்", "Murugan"),
            ("லக்ஷ்மி", "Lakshmi"),
            ("செல்வி", "Selvi"),
            ("கார்த்திக்", "Karthik"),
            ("பிரியா", "Priya"),
            ("சுரேஷ்", "Suresh"),
        ],
        [("ராஜா", "Raja"), ("குமார்", "Kumar"), ("சுப்பிரமணியன்", "Subramanian"), ("வேலு", "Velu"), ("பாண்டியன்", "Pandian")],
    ),
    "bengali": (
        [
            ("সুমিত", "Sumit"),
            ("অনিতা", "Anita"),
            ("রাহুল", "Rahul"),
            ("দেবাশিস", "Debashis"),
            ("মৌমিতা", "Moumita"),
            ("অর্পিতা", "Arpita"),
        ],
        [("দাস", "Das"), ("বসু", "Basu"), ("চট্টোপাধ্যায়", "Chattopadhyay"), ("ঘোষ", "Ghosh"), ("সেন", "Sen")],
    ),
    "telugu": (
        [
            ("శ్రీనివాస్", "Srinivas"),
            ("లక్ష్మి", "Lakshmi"),
            ("రవి", "Ravi"),
            ("సాయి", "Sai"),
            ("పద్మ", "Padma"),
            ("వెంకటేష్", "Venkatesh"),
        ],
        [("రెడ్డి", "Reddy"), ("రావు", "Rao"), ("నాయుడు", "Naidu"), ("వర్మ", "Varma")],
    ),
}
SCRIPTS = tuple(NAMES)


@dataclass(frozen=True)
class _State:
    name: str
    udise: int  # state code, the first two digits of a school's UDISE code
    weight: float
    script: str  # script of most local names
    native_share: float  # share of names in that script rather than Latin
    board: str
    org_name: str
    districts: tuple[str, str, str, str]


STATES: tuple[_State, ...] = (
    _State(
        "Tamil Nadu",
        33,
        0.22,
        "tamil",
        0.55,
        "State (Tamil Nadu)",
        "Tamil Nadu State Council of Educational Research and Training",
        ("Chennai", "Madurai", "Coimbatore", "Tiruchirappalli"),
    ),
    _State(
        "Uttar Pradesh",
        9,
        0.24,
        "devanagari",
        0.6,
        "State (Uttar Pradesh)",
        "Basic Shiksha Parishad, Uttar Pradesh",
        ("Lucknow", "Varanasi", "Prayagraj", "Agra"),
    ),
    _State(
        "West Bengal",
        19,
        0.14,
        "bengali",
        0.5,
        "State (West Bengal)",
        "West Bengal Board of Primary Education",
        ("Kolkata", "Howrah", "Darjeeling", "Bankura"),
    ),
    _State(
        "Telangana",
        36,
        0.14,
        "telugu",
        0.5,
        "State (Telangana)",
        "Telangana School Education Department",
        ("Hyderabad", "Warangal", "Karimnagar", "Nizamabad"),
    ),
    _State(
        "Maharashtra",
        27,
        0.18,
        "devanagari",
        0.4,
        "State (Maharashtra)",
        "Maharashtra Prathamik Shikshan Parishad",
        ("Pune", "Nagpur", "Nashik", "Mumbai Suburban"),
    ),
    # Its state code 01 makes school ids with a leading zero.
    _State(
        "Jammu and Kashmir",
        1,
        0.08,
        "latin",
        1.0,
        "JKBOSE",
        "Directorate of School Education, Kashmir",
        ("Srinagar", "Jammu", "Anantnag", "Baramulla"),
    ),
)
_BLOCK_SUFFIXES = ("East", "West", "Rural")
_CLUSTERS_PER_BLOCK = 3
_SCHOOLS_PER_CLUSTER = 3
_SCHOOL_NAMES = (
    "Government Higher Secondary School, {place}",
    "Panchayat Union Middle School {place}",
    'Govt. Primary School "{place}"',
    "Kendriya Vidyalaya {place}",
    "Zilla Parishad Upper Primary School, {place}",
    "St. Joseph's High School, {place}",
)
_OTHER_ORGS = ("Akshara Learning Trust", "Sarvodaya Vidya Samiti")
_EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.in")
# (user_type, user_sub_type, weight)
_USER_TYPES = (
    ("teacher", None, 0.55),
    ("student", None, 0.15),
    ("administrator", "hm", 0.08),
    ("administrator", "crp", 0.06),
    ("administrator", "deo", 0.03),
    ("parent", None, 0.06),
    ("other", None, 0.07),
)
# Profile values that a CSV writer must quote or defuse; each kind overrides a few
# columns of a user's row.
_ODD_PROFILES: dict[str, dict[str, str | None]] = {
    "users_text_formula": {"school_name": '=HYPERLINK("http://example.com","click")', "cluster": "-"},
    "users_text_quotes": {"last_name": 'D\'Souza, "Tony"', "block": "Ward 7\nSector 2"},
    "users_text_symbols": {"first_name": "@nil", "org_name": "+Plus Foundation, Pune"},
    "users_text_spaces": {"first_name": "  Meena ", "last_name": None, "phone": "9876543210"},
}


# ---------------------------------------------------------------------------------
# Lookup arrays built from the catalogue.
# ---------------------------------------------------------------------------------


class _Catalogue:
    """The catalogue (the fixed one, or scaled) as Arrow strings and numpy index arrays, for vectorised lookups."""

    def __init__(self, today: dt.date, n_courses: int = len(COURSES), n_batches: int = len(BATCHES)):
        self.today = today
        self.courses, self.batches = courses, batches = scaled_catalogue(n_courses, n_batches)
        midnight = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC)
        self.today_s = int(midnight.timestamp())  # events happen before today starts

        # Courses and contents; content k is global, positions are 1-based per course.
        self.course_ids = pa.array([c.course_id for c in courses])
        self.course_weight = np.array([c.weight for c in courses])
        self.consent = np.array([c.user_consent_required for c in courses])
        contents = [(ci, pos, ct) for ci, c in enumerate(courses) for pos, ct in enumerate(c.contents, 1)]
        self.content_ids = pa.array([_content_id(ci, pos) for ci, pos, _ in contents])
        self.content_rows = contents
        cmax = max(len(c.contents) for c in courses)
        self.n_contents = np.array([len(c.contents) for c in courses])
        self.contents = np.full((len(courses), cmax), -1)  # course × position-1 -> content
        self.optional = np.zeros((len(courses), cmax), dtype=bool)
        for k, (ci, pos, ct) in enumerate(contents):
            self.contents[ci, pos - 1] = k
            self.optional[ci, pos - 1] = ct.is_optional
        amax = max(sum(bool(ct.questions) for ct in c.contents) for c in courses)
        self.assessments = np.full((len(courses), amax), -1)  # course × a -> position-1
        for ci, c in enumerate(courses):
            positions = [p for p, ct in enumerate(c.contents) if ct.questions]
            self.assessments[ci, : len(positions)] = positions

        # Questions: one per (assessment, slot), each an instance of a QUESTIONS entry.
        qmax = max(len(ct.questions) for c in courses for ct in c.contents)
        self.questions = np.full((len(contents), qmax), -1)  # content × slot -> question
        qids: list[str] = []
        templates: list[int] = []
        for k, (ci, pos, ct) in enumerate(contents):
            for slot, t in enumerate(ct.questions):
                self.questions[k, slot] = len(qids)
                qids.append(f"do_question_{ci + 1:02d}{pos:02d}_{slot + 1:02d}")
                templates.append(t)
        self.question_ids = pa.array(qids)
        self.template = np.array(templates)
        self.q_type = pa.array([q.qtype for q in QUESTIONS])
        self.q_title = pa.array([q.title for q in QUESTIONS])
        self.q_description = pa.array([q.description for q in QUESTIONS], pa.string())
        self.q_options = pa.array([q.options for q in QUESTIONS])
        self.q_max = np.array([q.max_score for q in QUESTIONS])
        self.q_difficulty = np.array([q.difficulty for q in QUESTIONS])
        self.q_duration = np.array([_DURATION[q.qtype] for q in QUESTIONS])
        self.n_answers = np.array([len(q.answers) for q in QUESTIONS])
        self.answer_offset = np.concatenate([[0], np.cumsum(self.n_answers)[:-1]])
        self.answers = pa.array([a for q in QUESTIONS for a, _ in q.answers])
        self.answer_score = np.array([s for q in QUESTIONS for _, s in q.answers])

        # Batches (unknown ones last), with their dates as seconds.
        self.batch_ids = pa.array([b.batch_id for b in batches] + list(UNKNOWN_BATCH_IDS))
        self.batch_course = np.array([b.course for b in batches])
        self.batch_status = np.array([_batch_status(b) for b in batches])
        self.batch_start = np.array([self.today_s + b.start * DAY for b in batches])
        # Last second of activity: the end of the end date, or now, whichever is first.
        ends = [self.today_s if b.end is None else self.today_s + (b.end + 1) * DAY for b in batches]
        self.batch_last = np.minimum(self.today_s, np.array(ends)) - 1
        # Enrolment opens two weeks before the start (and before today for upcoming ones).
        self.batch_open = np.minimum(self.batch_start, self.today_s) - 14 * DAY
        bmax = max(sum(b.course == ci for b in batches) for ci in range(len(courses)))
        self.course_batches = np.full((len(courses), bmax), -1)
        self.course_batch_cum = np.full((len(courses), bmax), 2.0)  # past 1: never chosen
        for ci in range(len(courses)):
            idx = [bi for bi, b in enumerate(batches) if b.course == ci]
            w = np.array([batches[bi].weight for bi in idx])
            self.course_batches[ci, : len(idx)] = idx
            self.course_batch_cum[ci, : len(idx)] = np.cumsum(w) / w.sum()

        # Places: every school of every cluster of every block of every district.
        schools = [
            (s, d, b, c, k)
            for s, st in enumerate(STATES)
            for d in range(len(st.districts))
            for b in range(len(_BLOCK_SUFFIXES))
            for c in range(_CLUSTERS_PER_BLOCK)
            for k in range(_SCHOOLS_PER_CLUSTER)
        ]
        block = lambda s, d, b: f"{STATES[s].districts[d]} {_BLOCK_SUFFIXES[b]}"  # noqa: E731
        school_ids = [f"{STATES[s].udise:02d}{d + 1:02d}{b + 1:02d}{c + 1:03d}{k + 1:02d}" for s, d, b, c, k in schools]
        self.school_ids = pa.array(school_ids)
        self.school_names = pa.array(
            [
                _SCHOOL_NAMES[zlib.crc32(sid.encode()) % len(_SCHOOL_NAMES)].format(place=block(s, d, b))
                for sid, (s, d, b, c, k) in zip(school_ids, schools, strict=True)
            ]
        )
        self.states = pa.array([s.name for s in STATES])
        self.districts = pa.array([STATES[s].districts[d] for s, d, *_ in schools])
        self.blocks = pa.array([block(s, d, b) for s, d, b, *_ in schools])
        self.clusters = pa.array([f"{block(s, d, b)} - CRC {c + 1}" for s, d, b, c, _ in schools])
        self.state_weight = np.array([s.weight for s in STATES])
        self.schools_per_state = len(schools) // len(STATES)
        self.boards = pa.array([s.board for s in STATES] + ["CBSE"])
        self.orgs = pa.array([s.org_name for s in STATES] + list(_OTHER_ORGS))

        # Names: one flat list, each script a slice of it.
        self.script_native = np.array([SCRIPTS.index(s.script) for s in STATES])
        self.native_share = np.array([s.native_share for s in STATES])
        self.first_names, self.first_latin, self.first_slices = self._names(0)
        self.last_names, self.last_latin, self.last_slices = self._names(1)

    @staticmethod
    def _names(part: int):
        names: list[tuple[str, str]] = []
        offsets: list[int] = []
        sizes: list[int] = []
        for script in SCRIPTS:
            pool = NAMES[script][part]
            offsets.append(len(names))
            sizes.append(len(pool))
            names += pool
        return (
            pa.array([n for n, _ in names]),
            pa.array([lat for _, lat in names]),
            (np.array(offsets), np.array(sizes)),
        )


# ---------------------------------------------------------------------------------
# Dirt.
# ---------------------------------------------------------------------------------


@dataclass
class _Dirt:
    """Which rows get which kind of dirt, and how many of each were injected.

    Each kind hits about `rate` of the eligible rows; besides, the first still-clean
    eligible row of the whole lake takes each kind not placed that way yet, so that a
    20-learner lake has every kind too. Rows are visited in learner order, so neither
    choice depends on chunk_size. A row gets at most one kind from one call.
    """

    counts: Counter = field(default_factory=Counter)
    forced: set = field(default_factory=set)

    def pick(self, u: np.ndarray, rates: dict[str, float], eligible: np.ndarray | None = None) -> dict[str, np.ndarray]:
        eligible = np.ones(u.shape, dtype=bool) if eligible is None else eligible
        clean = eligible.copy()
        masks, low = {}, 0.0
        for kind, rate in rates.items():
            masks[kind] = eligible & (u >= low) & (u < low + rate)
            clean &= ~masks[kind]
            low += rate
        for kind in rates:
            if kind not in self.forced and clean.any():
                first = int(np.argmax(clean))
                masks[kind][first], clean[first] = True, False
                self.forced.add(kind)
        for kind, mask in masks.items():
            self.counts[kind] += int(mask.sum())
        return masks


# ---------------------------------------------------------------------------------
# Arrow helpers.
# ---------------------------------------------------------------------------------

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(*parts) -> pa.StringArray:
    """Strings joined from literal bytes and (uint64 array, n) parts, the latter
    written as their last n hex digits."""
    n = next(len(p[0]) for p in parts if isinstance(p, tuple))
    columns = []
    for p in parts:
        if isinstance(p, tuple):
            values, digits = p
            shifts = np.arange(4 * (digits - 1), -1, -4, dtype=np.uint64)
            columns.append(_HEX[(values[:, None] >> shifts) & np.uint64(15)])
        else:
            columns.append(np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (n, len(p))))
    matrix = np.ascontiguousarray(np.concatenate(columns, axis=1))
    return pa.array(matrix.view(f"S{matrix.shape[1]}").ravel()).cast(pa.string())


def _uuids(hi: np.ndarray, lo: np.ndarray) -> pa.StringArray:
    """Version-4 UUID strings from 128 random bits."""
    hi = (hi & ~np.uint64(0xF000)) | np.uint64(0x4000)
    lo = (lo & ~np.uint64(0xC << 60)) | np.uint64(0x8 << 60)
    return _hex_ids(
        (hi >> np.uint64(32), 8),
        b"-",
        (hi >> np.uint64(16), 4),
        b"-",
        (hi, 4),
        b"-",
        (lo >> np.uint64(48), 4),
        b"-",
        (lo, 12),
    )


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows that each become `counts[i]` rows: each new row's parent and its number 0, 1, ..."""
    parent = np.repeat(np.arange(len(counts)), counts)
    return parent, np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)


def _timestamps(seconds: np.ndarray, null: np.ndarray | None = None):
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, pa.timestamp("us", tz="UTC"), mask=null)


def _take(values, idx: np.ndarray, null: np.ndarray | None = None):
    return values.take(pa.array(idx, pa.int64(), mask=null))


def _set(values, mask: np.ndarray, value):
    """`values` with `value` (None for null) where `mask` holds."""
    if not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(value, values.type), values)


def _table(name: str, columns: dict):
    schema = arrow_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


# ---------------------------------------------------------------------------------
# One chunk of learners.
# ---------------------------------------------------------------------------------


@dataclass
class _Learners:
    index: np.ndarray  # global learner numbers
    user_ids: object  # Arrow strings, one per learner
    missing: np.ndarray  # learners left out of `users`


@dataclass
class _Enrolments:
    learner: np.ndarray  # position in the chunk
    slot: np.ndarray
    course: np.ndarray
    batch: np.ndarray  # index into cat.batch_ids (unknown batches after the known)
    enrolled: np.ndarray
    last: np.ndarray  # last second of activity
    status: np.ndarray  # enrolment × position-1 -> 0, 1, 2


def _users(rnd: _Random, cat: _Catalogue, lo: int, hi: int, dirt: _Dirt):
    learner = np.arange(lo, hi, dtype=np.int64)
    user_ids = _uuids(rnd.bits("user.id.hi", learner), rnd.bits("user.id.lo", learner))
    gone = dirt.pick(rnd.uniform("user.dirt", learner), {"users_missing": 0.015, "users_duplicated": 0.015})
    missing = gone["users_missing"]

    state = _choose(rnd.uniform("user.state", learner), cat.state_weight)
    school = state * cat.schools_per_state + (rnd.uniform("user.school", learner) * cat.schools_per_state).astype(
        np.int64
    )
    no_school = rnd.uniform("user.no_school", learner) < 0.08

    native = rnd.uniform("user.script", learner) < cat.native_share[state]
    script = np.where(native, cat.script_native[state], SCRIPTS.index("latin"))

    def name(slices, what):
        offset, size = slices
        return offset[script] + (rnd.uniform(what, learner) * size[script]).astype(np.int64)

    first = name(cat.first_slices, "user.first")
    last = name(cat.last_slices, "user.last")
    number = pc.cast(pa.array((rnd.uniform("user.email_no", learner) * 100).astype(np.int64)), pa.string())
    domain = _take(pa.array(_EMAIL_DOMAINS), _choose(rnd.uniform("user.domain", learner), [3, 2, 1]))
    email = pc.utf8_lower(
        pc.binary_join_element_wise(
            _take(cat.first_latin, first), ".", _take(cat.last_latin, last), number, "@", domain, ""
        )
    )
    mobile = (6 + (rnd.uniform("user.phone1", learner) * 4).astype(np.int64)) * 10**9 + (
        rnd.uniform("user.phone2", learner) * 10**9
    ).astype(np.int64)
    phone = pc.binary_join_element_wise("+91", pc.cast(pa.array(mobile), pa.string()), "")

    kind = _choose(rnd.uniform("user.type", learner), [w for *_, w in _USER_TYPES])
    board = np.where(rnd.uniform("user.board", learner) < 0.2, len(STATES), state)
    org = np.where(
        rnd.uniform("user.org", learner) < 0.1,
        len(STATES) + (rnd.uniform("user.org2", learner) * len(_OTHER_ORGS)).astype(np.int64),
        state,
    )
    u_status = rnd.uniform("user.status", learner)

    columns = {
        "user_id": user_ids,
        "first_name": _take(cat.first_names, first),
        "last_name": _take(cat.last_names, last),
        "email": _set(email, rnd.uniform("user.no_email", learner) < 0.3, None),
        "phone": _set(phone, rnd.uniform("user.no_phone", learner) < 0.2, None),
        "state": _take(cat.states, state),
        "district": _take(cat.districts, school, rnd.uniform("user.no_district", learner) < 0.02),
        "block": _take(cat.blocks, school, rnd.uniform("user.no_block", learner) < 0.05),
        "cluster": _take(cat.clusters, school, rnd.uniform("user.no_cluster", learner) < 0.08),
        "school_id": _take(cat.school_ids, school, no_school),
        "school_name": _take(cat.school_names, school, no_school),
        "org_name": _take(cat.orgs, org),
        "user_type": _take(pa.array([t for t, _, _ in _USER_TYPES]), kind),
        "user_sub_type": _take(pa.array([s for _, s, _ in _USER_TYPES], pa.string()), kind),
        "board": _take(cat.boards, board, rnd.uniform("user.no_board", learner) < 0.1),
        "status": pa.array(np.where(u_status < 0.95, 1, np.where(u_status < 0.98, 0, 2)), pa.int32()),
    }
    odd = dirt.pick(rnd.uniform("user.odd", learner), {k: 0.004 for k in _ODD_PROFILES}, eligible=~missing)
    for kind_name, values in _ODD_PROFILES.items():
        for column, value in values.items():
            columns[column] = _set(columns[column], odd[kind_name], value)

    users = _table("users", columns)
    keep = np.flatnonzero(~missing)
    order = keep.repeat(1 + gone["users_duplicated"][keep].astype(np.int64))
    return _Learners(learner, user_ids, missing), users.take(pa.array(order))


def _enrolments(rnd: _Random, cat: _Catalogue, people: _Learners, dirt: _Dirt):
    learner = people.index
    # 1-3 distinct courses per learner (no more than there are): weighted sampling
    # without replacement by sorting exponential keys (Efraimidis-Spirakis).
    count = np.minimum(1 + _choose(rnd.uniform("enrol.count", learner), [0.55, 0.3, 0.15]), len(cat.courses))
    keys = -np.log1p(-rnd.uniform("enrol.course", learner[:, None], np.arange(len(cat.courses))[None, :]))
    courses = np.argsort(keys / cat.course_weight, axis=1, kind="stable")
    local, slot = _expand(count)
    who = learner[local]
    course = courses[local, slot]

    u_batch = rnd.uniform("enrol.batch", who, slot)
    batch = cat.course_batches[course, (u_batch[:, None] >= cat.course_batch_cum[course]).sum(axis=1)]
    status = cat.batch_status[batch]
    opened, last = cat.batch_open[batch], cat.batch_last[batch]
    enrolled = opened + (rnd.uniform("enrol.on", who, slot) * (last - opened)).astype(np.int64)

    p_complete = np.select([status == "expired", status == "live"], [0.45, 0.25], 0.0)
    completed = rnd.uniform("enrol.completed", who, slot) < p_complete
    completed_on = enrolled + (rnd.uniform("enrol.completed_on", who, slot) * (last - enrolled)).astype(np.int64)
    last = np.where(completed, completed_on, last)

    # Progress per content: engaged learners finish more; completers finished every
    # required content; nobody has started an upcoming batch.
    pos = np.arange(cat.contents.shape[1])[None, :]
    valid = pos < cat.n_contents[course][:, None]
    engagement = rnd.uniform("enrol.engagement", who, slot)[:, None]
    r = rnd.uniform("enrol.content", who[:, None], slot[:, None], pos)
    progress = np.where(r < 0.8 * engagement, 2, np.where(r < 0.8 * engagement + 0.15, 1, 0))
    optional = cat.optional[course]
    progress = np.where(completed[:, None], np.where(optional & (r < 0.5), 0, 2), progress)
    progress = np.where((status == "upcoming")[:, None] | ~valid, 0, progress)
    # Half the maps leave out what was never opened, as the platform does.
    sparse = rnd.uniform("enrol.sparse", who, slot) < 0.5
    listed = valid & ((progress > 0) | ~sparse[:, None])
    offsets = np.concatenate([[0], np.cumsum(listed.sum(axis=1))]).astype(np.int32)
    content_status = pa.MapArray.from_arrays(
        pa.array(offsets), _take(cat.content_ids, cat.contents[course][listed]), pa.array(progress[listed], pa.int32())
    )

    # Certificates: most completers have one, a few were re-issued a second.
    u_cert = rnd.uniform("enrol.cert", who, slot)
    n_cert = np.where(completed & (u_cert < 0.85), 1 + (u_cert < 0.05), 0)
    cert_row, cert_no = _expand(n_cert)
    cert_hi = rnd.bits("cert.id.hi", who[cert_row], slot[cert_row], cert_no)
    cert_lo = rnd.bits("cert.id.lo", who[cert_row], slot[cert_row], cert_no)
    certs = _uuids(cert_hi, cert_lo)
    no_list = (n_cert == 0) & (rnd.uniform("enrol.cert_null", who, slot) < 0.5)
    issued = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(n_cert)]).astype(np.int32)), certs, mask=pa.array(no_list)
    )

    bad = dirt.pick(
        rnd.uniform("enrol.dirt", who, slot),
        {
            "enrolments_duplicated": 0.015,
            "enrolments_unknown_batch": 0.01,
            "enrolments_null_course_id": 0.005,
            "enrolments_null_enrolled_on": 0.005,
        },
    )
    unknown = len(cat.batches) + (rnd.uniform("enrol.unknown", who, slot) * len(UNKNOWN_BATCH_IDS)).astype(np.int64)
    shown_batch = np.where(bad["enrolments_unknown_batch"], unknown, batch)
    table = _table(
        "enrolments",
        {
            "user_id": _take(people.user_ids, local),
            "course_id": _take(cat.course_ids, course, bad["enrolments_null_course_id"]),
            "batch_id": _take(cat.batch_ids, shown_batch),
            "enrolled_on": _timestamps(enrolled, bad["enrolments_null_enrolled_on"]),
            "active": pa.array(rnd.uniform("enrol.inactive", who, slot) >= 0.03),
            "completed_on": _timestamps(completed_on, ~completed),
            "content_status": content_status,
            "issued_certificates": issued,
        },
    )
    order = np.repeat(np.arange(len(who)), 1 + bad["enrolments_duplicated"])
    dirt.counts["enrolments_user_missing"] += int(people.missing[local[order]].sum())
    enrol = _Enrolments(local, slot, course, shown_batch, enrolled, last, progress)
    return enrol, table.take(pa.array(order))


def _attempts_and_responses(rnd: _Random, cat: _Catalogue, people: _Learners, enrol: _Enrolments, dirt: _Dirt):
    who = people.index[enrol.learner]
    # 0-2 attempts per assessment: none unless started, more often when finished.
    amax = cat.assessments.shape[1]
    a_pos = cat.assessments[enrol.course]  # enrolment × a -> position-1
    progress = np.take_along_axis(enrol.status, np.maximum(a_pos, 0), axis=1)
    u = rnd.uniform("attempt.count", who[:, None], enrol.slot[:, None], np.arange(amax)[None, :])
    n_att = np.where(progress == 2, 1 + (u < 0.3), np.where(progress == 1, (u < 0.5).astype(np.int64), 0))
    cell, attempt_no = _expand(np.where(a_pos >= 0, n_att, 0).ravel())
    e, a = cell // amax, cell % amax
    content = cat.contents[enrol.course[e], a_pos[e, a]]
    w, s = who[e], enrol.slot[e]

    # The first attempt falls in the enrolment's active window; a retake after it.
    start, last = enrol.enrolled[e], enrol.last[e]
    first = start + (rnd.uniform("attempt.first", w, s, a) * (last - start)).astype(np.int64)
    retake = first + (rnd.uniform("attempt.retake", w, s, a) * (last - first)).astype(np.int64)
    attempted = np.where(attempt_no == 0, first, retake)
    attempt_ids = _hex_ids(
        (rnd.bits("attempt.id.hi", w, s, a, attempt_no), 16), (rnd.bits("attempt.id.lo", w, s, a, attempt_no), 16)
    )

    # One response per question of the assessment.
    qmat = cat.questions[content]
    per_attempt = (qmat >= 0).sum(axis=1)
    att, qslot = _expand(per_attempt)
    question = qmat[att, qslot]
    t = cat.template[question]
    key = (w[att], s[att], a[att], attempt_no[att], qslot)  # what identifies a response
    # Better learners, and second attempts, answer right more often.
    skill = rnd.uniform("learner.skill", w[att])
    p_right = np.clip(0.25 + 0.6 * skill + 0.1 * attempt_no[att] - cat.q_difficulty[t], 0.05, 0.95)
    wrong = 1 + (rnd.uniform("response.wrong", *key) * (cat.n_answers[t] - 1)).astype(np.int64)
    answer = np.where(rnd.uniform("response.right", *key) < p_right, 0, wrong)
    score = cat.answer_score[cat.answer_offset[t] + answer]
    duration = np.round(3 + cat.q_duration[t] * -np.log1p(-rnd.uniform("response.duration", *key)), 3)
    assessed = attempted[att] - (per_attempt[att] - 1 - qslot) * 40

    total_score = np.bincount(att, score, minlength=len(cell))
    total_max = np.bincount(att, cat.q_max[t], minlength=len(cell))

    # --- assessment_attempts
    bad = dirt.pick(
        rnd.uniform("attempt.dirt", w, s, a, attempt_no),
        {"attempts_duplicated": 0.015, "attempts_zero_max_score": 0.005, "attempts_missing": 0.01},
    )
    zero = bad["attempts_zero_max_score"]
    keep = np.flatnonzero(~bad["attempts_missing"])
    row = keep.repeat(1 + bad["attempts_duplicated"][keep].astype(np.int64))
    attempts = _table(
        "assessment_attempts",
        {
            "user_id": _take(people.user_ids, enrol.learner[e[row]]),
            "course_id": _take(cat.course_ids, enrol.course[e[row]]),
            "batch_id": _take(cat.batch_ids, enrol.batch[e[row]]),
            "content_id": _take(cat.content_ids, content[row]),
            "attempt_id": _take(attempt_ids, row),
            "last_attempted_on": _timestamps(attempted[row]),
            "total_score": pa.array(np.where(zero, 0.0, total_score)[row]),
            "total_max_score": pa.array(np.where(zero, 0.0, total_max)[row]),
        },
    )

    # --- question_responses
    bad = dirt.pick(
        rnd.uniform("response.dirt", *key),
        {"responses_duplicated": 0.015, "responses_reassessed": 0.01, "responses_extreme_duration": 0.002},
    )
    extreme = bad["responses_extreme_duration"]
    # Far too long (a tab left open for months) or far too short: numbers that a
    # careless writer prints with an exponent.
    duration = np.where(extreme, np.where(rnd.uniform("response.extreme", *key) < 0.5, 12_960_000.5, 0.0004), duration)
    # A re-assessed response has an older row with another answer; the later one counts.
    stale = np.flatnonzero(bad["responses_reassessed"])
    stale_key = tuple(k[stale] for k in key)
    n_answers = cat.n_answers[t[stale]]
    other = (
        answer[stale] + 1 + (rnd.uniform("response.stale", *stale_key) * (n_answers - 1)).astype(np.int64)
    ) % n_answers
    earlier = 60 + (rnd.uniform("response.stale_on", *stale_key) * 3600).astype(np.int64)
    # Row order: each stale row just before the row that replaced it, duplicates adjacent.
    copies = 1 + bad["responses_duplicated"].astype(np.int64) + bad["responses_reassessed"]
    order = np.repeat(np.arange(len(att)), copies)
    order[(np.cumsum(copies) - copies)[stale]] = len(att) + np.arange(len(stale))
    rows = np.concatenate([np.arange(len(att)), stale])[order]
    answer = np.concatenate([answer, other])[order]
    assessed = np.concatenate([assessed, assessed[stale] - earlier])[order]
    rt = t[rows]
    responses = _table(
        "question_responses",
        {
            "user_id": _take(people.user_ids, enrol.learner[e[att[rows]]]),
            "course_id": _take(cat.course_ids, enrol.course[e[att[rows]]]),
            "batch_id": _take(cat.batch_ids, enrol.batch[e[att[rows]]]),
            "content_id": _take(cat.content_ids, content[att[rows]]),
            "attempt_id": _take(attempt_ids, att[rows]),
            "question_id": _take(cat.question_ids, question[rows]),
            "question_type": _take(cat.q_type, rt),
            "question_title": _take(cat.q_title, rt),
            "question_description": _take(cat.q_description, rt),
            "duration_seconds": pa.array(duration[rows]),
            "score": pa.array(cat.answer_score[cat.answer_offset[rt] + answer]),
            "max_score": pa.array(cat.q_max[rt]),
            "options": _take(cat.q_options, rt),
            "response": _take(cat.answers, cat.answer_offset[rt] + answer),
            "assessed_on": _timestamps(assessed),
        },
    )
    return attempts, responses


def _consents(rnd: _Random, cat: _Catalogue, people: _Learners, enrol: _Enrolments, patterns: _Dirt):
    # One story per learner × consent-required course (a learner takes a course once);
    # the usual one, a single ACTIVE row, is whatever no pattern picked.
    pick = np.flatnonzero(cat.consent[enrol.course])
    who, course = people.index[enrol.learner[pick]], enrol.course[pick]
    kinds = patterns.pick(
        rnd.uniform("consent.kind", who, course),
        {"revoked": 0.06, "active_then_revoked": 0.05, "revoked_then_active": 0.04, "none": 0.04},
    )
    two = kinds["active_then_revoked"] | kinds["revoked_then_active"]
    n_rows = np.where(kinds["none"], 0, 1 + two)
    patterns.counts["active"] += int(((n_rows == 1) & ~kinds["revoked"]).sum())

    # Given at enrolment (or soon after); a change of mind later, before today.
    enrolled = enrol.enrolled[pick]
    room = np.maximum(0, cat.today_s - 2 - enrolled)
    given = enrolled + (rnd.uniform("consent.given", who, course) * np.minimum(3 * DAY, room // 2)).astype(np.int64)
    later = np.maximum(0, cat.today_s - 2 - given)
    changed = given + 1 + (rnd.uniform("consent.changed", who, course) * later).astype(np.int64)

    row, nth = _expand(n_rows)
    # Files are not in time order: sometimes the latest row comes first.
    latest_first = rnd.uniform("consent.order", who, course)[row] < 0.5
    is_later = two[row] & ((nth == 1) != latest_first)
    revoked = np.where(
        is_later, kinds["active_then_revoked"][row], kinds["revoked"][row] | kinds["revoked_then_active"][row]
    )
    return _table(
        "user_consents",
        {
            "user_id": _take(people.user_ids, enrol.learner[pick[row]]),
            "course_id": _take(cat.course_ids, course[row]),
            "status": _take(pa.array(["ACTIVE", "REVOKED"]), revoked.astype(np.int64)),
            "last_updated_on": _timestamps(np.where(is_later, changed[row], given[row])),
        },
    )


# ---------------------------------------------------------------------------------
# The small tables.
# ---------------------------------------------------------------------------------


def _catalogue_tables(cat: _Catalogue) -> dict:
    today = cat.today_s
    courses = _table(
        "courses",
        {
            "course_id": cat.course_ids,
            "name": pa.array([c.name for c in cat.courses]),
            "channel": pa.array([c.channel for c in cat.courses]),
            "created_by": pa.array([c.created_by for c in cat.courses]),
            "status": pa.array([c.status for c in cat.courses]),
            "user_consent_required": pa.array(cat.consent),
            "created_on": _timestamps(np.array([today - c.created_days_ago * DAY + 10 * 3600 for c in cat.courses])),
        },
    )
    rows = cat.content_rows
    contents = _table(
        "course_contents",
        {
            "course_id": _take(cat.course_ids, np.array([ci for ci, _, _ in rows])),
            "content_id": cat.content_ids,
            "name": pa.array([ct.name for *_, ct in rows]),
            "content_type": pa.array([ct.content_type for *_, ct in rows]),
            "is_assessment": pa.array([bool(ct.questions) for *_, ct in rows]),
            "is_optional": pa.array([ct.is_optional for *_, ct in rows]),
            "position": pa.array([pos for _, pos, _ in rows], pa.int32()),
        },
    )
    base = cat.today
    batches = _table(
        "batches",
        {
            "batch_id": cat.batch_ids[: len(cat.batches)],
            "course_id": _take(cat.course_ids, cat.batch_course),
            "name": pa.array([b.name for b in cat.batches]),
            "start_date": pa.array([base + dt.timedelta(days=b.start) for b in cat.batches], pa.date32()),
            "end_date": pa.array(
                [None if b.end is None else base + dt.timedelta(days=b.end) for b in cat.batches], pa.date32()
            ),
            "created_by": pa.array([b.created_by for b in cat.batches]),
            "mentors": pa.array([list(b.mentors) for b in cat.batches], pa.list_(pa.string())),
            "created_on": _timestamps(cat.batch_open - 6 * DAY + 9 * 3600),
        },
    )
    return {"courses": courses, "course_contents": contents, "batches": batches}


def _describe(cat: _Catalogue) -> tuple[list, list]:
    """The catalogue as plain data, for the summary: what a demo may rely on."""
    base = cat.today
    courses = [
        {
            "course_id": c.course_id,
            "name": c.name,
            "status": c.status,
            "created_by": c.created_by,
            "user_consent_required": c.user_consent_required,
            "assessments": [
                {"content_id": _content_id(ci, pos), "name": ct.name, "position": pos}
                for pos, ct in enumerate(c.contents, 1)
                if ct.questions
            ],
        }
        for ci, c in enumerate(cat.courses)
    ]
    batches = [
        {
            "batch_id": b.batch_id,
            "course_id": cat.courses[b.course].course_id,
            "name": b.name,
            "status": _batch_status(b),
            "start_date": (base + dt.timedelta(days=b.start)).isoformat(),
            "end_date": None if b.end is None else (base + dt.timedelta(days=b.end)).isoformat(),
            "created_by": b.created_by,
            "mentors": list(b.mentors),
            "course_created_by": cat.courses[b.course].created_by,
            "user_consent_required": cat.courses[b.course].user_consent_required,
        }
        for b in cat.batches
    ]
    return courses, batches


# ---------------------------------------------------------------------------------
# The entry point.
# ---------------------------------------------------------------------------------


def generate_lake(
    out_dir: str | Path,
    learners: int = 200,
    seed: int = 7,
    today: dt.date | None = None,
    chunk_size: int = 50_000,
    courses: int = len(COURSES),
    batches: int = len(BATCHES),
) -> dict:
    """Write every lake table under out_dir/<table>/part-NNNNN.parquet; return a summary dict.

    The same (learners, seed, today, courses, batches) always give the same data,
    whatever chunk_size. `courses` and `batches` scale the catalogue (see
    `scaled_catalogue`); the enrolments spread over them. Each table's folder is
    replaced, so a rerun leaves no file of an earlier run.
    """
    if learners < 0 or chunk_size < 1:
        raise ValueError("learners must be >= 0 and chunk_size >= 1")
    cat = _Catalogue(today or dt.date.today(), courses, batches)  # checks courses and batches first
    today = cat.today
    out = Path(out_dir)
    for table in TABLES:
        shutil.rmtree(out / table, ignore_errors=True)
        (out / table).mkdir(parents=True)

    rnd, dirt, consents = _Random(seed), _Dirt(), _Dirt()
    rows: Counter[str] = Counter()

    def write(table: str, data, part: int) -> None:
        pq.write_table(data, out / table / f"part-{part:05d}.parquet")
        rows[table] += data.num_rows

    for table, data in _catalogue_tables(cat).items():
        write(table, data, 0)

    n_chunks = max(1, -(-learners // chunk_size))
    for part in range(n_chunks):
        lo, hi = part * chunk_size, min(learners, (part + 1) * chunk_size)
        people, users = _users(rnd, cat, lo, hi, dirt)
        enrol, enrolments = _enrolments(rnd, cat, people, dirt)
        attempts, responses = _attempts_and_responses(rnd, cat, people, enrol, dirt)
        write("users", users, part)
        write("enrolments", enrolments, part)
        write("assessment_attempts", attempts, part)
        write("question_responses", responses, part)
        write("user_consents", _consents(rnd, cat, people, enrol, consents), part)
        log.info(
            "chunk %d/%d: learners %d-%d, %d enrolments, %d attempts, %d responses",
            part + 1,
            n_chunks,
            lo,
            hi,
            enrolments.num_rows,
            attempts.num_rows,
            responses.num_rows,
        )

    course_list, batch_list = _describe(cat)
    return {
        "out_dir": str(out),
        "learners": learners,
        "seed": seed,
        "today": today.isoformat(),
        "chunks": n_chunks,
        "rows": {t: rows[t] for t in TABLES},
        "dirt": dict(sorted(dirt.counts.items())),
        "consents": dict(sorted(consents.counts.items())),
        "courses": course_list,
        "batches": batch_list,
        "unknown_batch_ids": list(UNKNOWN_BATCH_IDS),
    }
