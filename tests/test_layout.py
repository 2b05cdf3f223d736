"""The folders are the architecture: the pipeline (metrics/) never imports the screens
(dashboard/), and the upstream client (metrics/acr/) is free of Django."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a file imports, at any depth (a function-level import counts too), with
    relative imports resolved against the file's package."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parts[:-1])


def offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(folder)
        for module in sorted(imported_modules(path.read_text(encoding="utf-8"), package_of(path)))
        if module.split(".")[0] in forbidden
    ]


def test_the_pipeline_imports_no_screen():
    assert sources("metrics"), "metrics/ has no Python files"
    assert offending("metrics", ("dashboard",)) == []


def test_the_upstream_client_is_free_of_django():
    assert offending("metrics/acr", ("django", "channels", "celery", "dashboard")) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from dashboard import access\n", "dashboard.access"),
        ("def f():\n    import dashboard.boards\n", "dashboard.boards"),
        ("from ...dashboard import urls\n", "dashboard.urls"),
    ],
)
def test_the_import_walk_sees_every_form(source, expected):
    # A check that cannot see a late or relative import would pass on a broken layout.
    assert expected in imported_modules(source, "metrics.acr")
