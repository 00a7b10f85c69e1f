"""docs/outputs.md matches the contracts: one `### <dataset>` section per final dataset of the dictionary,
each with its owner, path, primary key and a `| column | type | meaning |` table listing exactly the
contract's columns, in contract order, with the contract's dtype, nullability and enum values, and the
contract's row order (sort_key) in its 'Rows sorted by' statement."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.core.contracts import dictionary, table_schema

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "outputs.md"
TABLE_HEADER = ["column", "type", "meaning"]
TYPE_CELL = re.compile(r"(?P<dtype>[a-z][a-z0-9]*)(?P<nullable> \(nullable\))?(?: enum\{(?P<enum>[^}]*)\})?")


@dataclass
class Section:
    name: str
    line: int
    text: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    tables: int = 0


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row; `\\|` is a literal pipe inside a cell."""
    body = line.strip().removeprefix("|").removesuffix("|")
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", body)]


def _parse(text: str) -> list[Section]:
    sections: list[Section] = []
    current: Section | None = None
    in_code = False
    in_table = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.startswith("#"):
            in_table = False
            current = None
            if line.startswith("### "):
                current = Section(line[4:].strip().strip("`"), n)
                sections.append(current)
            continue
        if current is None:
            continue
        if line.startswith("|"):
            cells = _cells(line)
            if not in_table:
                in_table = True
                current.tables += 1
                if cells == TABLE_HEADER:
                    continue
            if all(set(c) <= set(":-") and c for c in cells):
                continue  # the header's separator row
            current.rows.append(cells)
        else:
            in_table = False
            current.text.append(line)
    return sections


def _final() -> dict[str, dict[str, Any]]:
    return {name: entry for name, entry in dictionary().items() if entry.get("final")}


def _type_cell(spec: dict[str, Any]) -> str:
    cell = spec["dtype"] + (" (nullable)" if spec.get("nullable") else "")
    if "enum" in spec:
        cell += " enum{" + ", ".join(spec["enum"]) + "}"
    return cell


def _skeleton(name: str) -> str:
    """What the section's table must list, to paste into the doc when a contract changes."""
    columns = table_schema(_final()[name]["schema"]).columns
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{col}` | {_type_cell(spec)} | … |" for col, spec in columns.items()]
    return "\n".join(lines)


def _documented_order(prose: str, primary_key: tuple[str, ...]) -> tuple[str, ...]:
    """The row order a section promises: 'Rows sorted by it' (the primary key), by `col`, or by (`a`, `b`);
    () if it promises none."""
    stated = re.search(r"Rows sorted by\s+(it\b|`[^`]+`|\(([^)]*)\))", prose)
    if stated is None:
        return ()
    if stated[1] == "it":
        return primary_key
    return tuple(re.findall(r"`([^`]+)`", stated[2] if stated[2] is not None else stated[1]))


@pytest.fixture(scope="module")
def sections() -> dict[str, Section]:
    parsed = _parse(DOC.read_text())
    names = [s.name for s in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"docs/outputs.md documents these datasets twice: {dupes}"
    return {s.name: s for s in parsed}


def test_every_final_dataset_has_a_section(sections: dict[str, Section]) -> None:
    missing = [name for name in _final() if name not in sections]
    assert not missing, "final datasets without a `### <name>` section in docs/outputs.md:\n" + "\n\n".join(
        f"### {name}\n{_skeleton(name)}" for name in missing
    )


def test_no_section_documents_a_dataset_that_is_not_final(sections: dict[str, Section]) -> None:
    final = _final()
    known = dictionary()
    extra = {
        name: ("not final" if name in known else "not in contracts/dictionary.yaml")
        for name in sections
        if name not in final
    }
    assert not extra, f"docs/outputs.md has `###` sections for datasets users do not read: {extra}"


def test_sections_follow_segment_order(sections: dict[str, Section]) -> None:
    final = _final()
    segments = [final[name]["owner"].split(".")[0] for name in sections if name in final]
    assert segments == sorted(segments), f"sections are not in segment order: {segments}"


@pytest.mark.parametrize("name", sorted(_final()))
def test_section_matches_contract(name: str, sections: dict[str, Section]) -> None:
    if name not in sections:
        pytest.skip("no section (reported by test_every_final_dataset_has_a_section)")
    section = sections[name]
    entry = _final()[name]
    schema = table_schema(entry["schema"])
    where = f"docs/outputs.md:{section.line} ### {name}"

    assert section.tables == 1, (
        f"{where}: expected one `| column | type | meaning |` table, found {section.tables}"
    )
    assert all(len(row) == 3 for row in section.rows), f"{where}: every table row needs exactly 3 cells"
    documented = [row[0] for row in section.rows]
    expected = [f"`{col}`" for col in schema.columns]
    assert documented == expected, (
        f"{where}: the table's columns differ from {entry['schema']} (contract order, names in backticks);"
        f" the contract's table is:\n{_skeleton(name)}"
    )
    for (col, spec), row in zip(schema.columns.items(), section.rows, strict=True):
        match = TYPE_CELL.fullmatch(row[1])
        want = _type_cell(spec)
        assert match is not None, f"{where}: column {col}: type cell {row[1]!r} is not of the form {want!r}"
        assert match["dtype"] == spec["dtype"], (
            f"{where}: column {col}: type {match['dtype']} != {spec['dtype']}"
        )
        assert bool(match["nullable"]) == bool(spec.get("nullable")), (
            f"{where}: column {col}: nullability differs from the contract; write {want!r}"
        )
        enum = [v.strip() for v in match["enum"].split(",")] if match["enum"] is not None else None
        assert enum == spec.get("enum"), (
            f"{where}: column {col}: enum differs from the contract; write {want!r}"
        )
        assert row[2] and row[2] != "…", f"{where}: column {col} has no meaning"

    prose = "\n".join(section.text)
    key = re.search(r"Primary key: \(([^)]*)\)", prose)
    assert key is not None, f"{where}: no 'Primary key: (`a`, `b`)' line"
    assert re.findall(r"`([^`]+)`", key[1]) == list(schema.primary_key), (
        f"{where}: primary key differs from the contract's {list(schema.primary_key)}"
    )
    assert _documented_order(prose, schema.primary_key) == schema.sort_key, (
        f"{where}: the 'Rows sorted by' statement differs from the contract's sort_key "
        f"{list(schema.sort_key)}"
    )
    owner = re.search(r"Written by `([^`]+)`", prose)
    assert owner is not None and owner[1] == entry["owner"], f"{where}: write 'Written by `{entry['owner']}`'"
    path = re.search(r"Path: `([^`]+)`", prose)
    assert path is not None and path[1].rstrip("/") == entry["path"], (
        f"{where}: write 'Path: `{entry['path']}`'"
    )


def test_python_examples_parse() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    assert blocks, "docs/outputs.md should show how to read a dataset in Python"
    for block in blocks:
        ast.parse(block)
