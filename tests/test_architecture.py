"""docs/architecture.md's import rules, held against the code: what each folder imports, and no import circles."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

# What jobs/ may use of coursedash/: its Spark session, the manifests and the lake listing, which import no more.
JOB_HELPERS = {"coursedash.spark", "coursedash.manifest", "coursedash.lakefiles", "coursedash.config"}
# What the scheduler may import when it parses the DAG file, every few seconds.
DAG_TOP_LEVEL = {"airflow", "pendulum", "coursedash.stop", "coursedash_airflow"}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, top_level: bool = False) -> set[str]:
    """The modules a file imports when it runs (`top_level`: when it is imported), `from a import b` as a and a.b."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return  # never run
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        if not (top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)):
            for child in ast.iter_child_nodes(node):
                visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def module_name(path: Path) -> str:
    root = ROOT / "plugins" if path.is_relative_to(ROOT / "plugins") else ROOT
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


def within(names: set[str], *prefixes: str) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}


@pytest.mark.parametrize("path", files("schemas"), ids=lambda p: p.name)
def test_schemas_import_nothing_of_the_project_but_schemas(path):
    assert not within(imports(path), "coursedash", "jobs", "coursedash_airflow", "airflow")


@pytest.mark.parametrize("path", files("jobs"), ids=lambda p: p.name)
def test_jobs_are_spark_only_with_the_spark_helpers_of_coursedash(path):
    used = imports(path)
    of_coursedash = within(used, "coursedash")
    assert of_coursedash <= within(of_coursedash, *JOB_HELPERS) | {"coursedash"}
    assert not within(used, "airflow", "coursedash_airflow", "sqlalchemy", "boto3", "fastapi")


@pytest.mark.parametrize("path", files("coursedash"), ids=lambda p: p.name)
def test_coursedash_never_imports_the_jobs_or_airflow(path):
    # It runs jobs/night.py with spark-submit and `airflow` as a command: never in its own process.
    assert not within(imports(path), "jobs", "airflow", "coursedash_airflow")


@pytest.mark.parametrize("path", files("plugins") + files("dags"), ids=lambda p: p.name)
def test_dags_and_plugins_import_only_airflow_when_parsed(path):
    parsed = imports(path, top_level=True)
    assert not within(parsed, "pyspark", "great_expectations", "sqlalchemy", "boto3", "pyarrow")
    project = within(parsed, "coursedash", "coursedash_airflow", "jobs", "schemas")
    assert project <= within(project, *DAG_TOP_LEVEL)


def test_no_import_circles():
    modules = {module_name(p): p for folder in ("coursedash", "jobs", "schemas", "plugins") for p in files(folder)}
    graph = {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as e:
        pytest.fail(f"an import circle: {' -> '.join(e.args[1])}")
