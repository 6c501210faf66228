"""The bounded YAML reader: size, encoding, aliases, nesting, refused fast with a ProtocolError naming the file."""

from __future__ import annotations

import time

import pytest
import yaml

from alliance import yaml_input as bounded_yaml
from alliance.protocol import ProtocolError, default_protocol, load_protocol
from alliance.protocol.yaml_input import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, read_yaml

# Each test runs with libyaml's loader and with the pure-Python one (the fallback).
LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])
SECONDS = 2.0  # a refusal is a single pass over a few kilobytes: far below this


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.__name__, autouse=True)
def loader(request, monkeypatch):
    monkeypatch.setattr(bounded_yaml, "SAFE_LOADER", request.param)
    return request.param


def refused(document, origin="trial.yaml") -> tuple:
    start = time.perf_counter()
    with pytest.raises(ProtocolError) as caught:
        read_yaml(document, origin)
    elapsed = time.perf_counter() - start
    (problem,) = caught.value.problems
    assert problem.file == origin
    assert elapsed < SECONDS, f"took {elapsed:.2f} s"
    return problem


def billion_laughs(layers: int = 9, width: int = 10) -> str:
    """The classic alias bomb: ``layers`` levels of ``width`` aliases to the level below (width**layers laughs)."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, layers + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_the_levin_protocol_reads_as_plain_safe_load_does():
    text = default_protocol().to_yaml()
    assert read_yaml(text.encode(), "p.yaml") == yaml.safe_load(text)


def test_an_alias_bomb_is_refused_fast():
    # The classic bomb (10**10 strings in 9 lines), padded with more aliases to 4.6 KB.
    bomb = billion_laughs() + "".join(f"x{i}: *lol0\n" for i in range(4_000 // 12))
    assert 4_000 < len(bomb) < 5_000
    problem = refused(bomb)
    assert "100,000" in problem.allowed and problem.row is not None


def test_more_alias_uses_than_the_limit_are_refused():
    document = "base: &base {a: 1}\n" + "".join(f"k{i}: *base\n" for i in range(MAX_ALIASES + 1))
    problem = refused(document)
    assert problem.allowed == f"at most {MAX_ALIASES} alias uses in a document"
    assert problem.row == MAX_ALIASES + 2  # the first alias over the limit, on its own line


def test_a_few_aliases_are_read():
    document = "base: &base {window_days: [1, 2]}\n" + "".join(f"k{i}: *base\n" for i in range(MAX_ALIASES))
    assert read_yaml(document, "t.yaml")["k99"] == {"window_days": [1, 2]}


def test_an_alias_inside_the_node_it_names_is_refused():
    assert "inside the node it names" in refused("a: &loop [1, *loop]\n").reason


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused_without_recursion_error(style):
    depth = 500
    if style == "flow":
        document = "x: " + "[" * depth + "]" * depth + "\n"
    else:
        document = "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "1\n"
    problem = refused(document)
    assert f"at most {MAX_DEPTH} levels" in problem.allowed


def test_nesting_through_aliases_counts():
    # 30 levels, aliased inside 30 more: 60 levels once expanded.
    inner = "[" * 30 + "]" * 30
    document = f"a: &deep {inner}\nb: " + "[" * 30 + "*deep" + "]" * 30 + "\n"
    assert f"at most {MAX_DEPTH} levels" in refused(document).allowed


def test_nesting_at_the_limit_is_read():
    document = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert read_yaml(document, "t.yaml") is not None


def test_a_document_over_the_size_limit_is_refused():
    document = b"a: " + b"x" * MAX_BYTES + b"\n"
    assert "1,048,576 bytes" in refused(document).allowed


def test_utf8_with_or_without_bom_is_read_and_other_encodings_are_refused():
    assert read_yaml("name: Lévin\n".encode(), "t.yaml") == {"name": "Lévin"}
    assert read_yaml("\ufeffname: Lévin\n".encode(), "t.yaml") == {"name": "Lévin"}
    problem = refused("id: x\nname: Lévin\n".encode("latin-1"))
    assert problem.row == 2 and "not UTF-8" in problem.reason and "UTF-8" in problem.allowed
    assert "UTF-8" in refused("name: x\n".encode("utf-16")).allowed


def test_invalid_yaml_names_the_file_and_line():
    problem = refused("id: x\narms: [unclosed\n")
    assert "is not valid YAML" in problem.reason and problem.row is not None


def test_load_protocol_uses_the_bounded_reader(tmp_path):
    path = tmp_path / "protocol.yaml"
    path.write_bytes(billion_laughs().encode())
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert caught.value.problems[0].file == str(path)
    path.write_bytes(b"a: " + b"x" * (MAX_BYTES + 1))
    with pytest.raises(ProtocolError, match="1,048,576 bytes"):
        load_protocol(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ProtocolError, match="not UTF-8"):
        load_protocol(path)
