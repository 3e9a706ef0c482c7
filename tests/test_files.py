from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from infra.files import (
    JsonlAppender,
    RecordError,
    atomic_directory,
    atomic_write_text,
    load_jsonl,
    read_jsonl,
    repair_and_scan,
)
from infra.manifest import Manifest, is_complete
from infra.paths import REPO_ROOT


def test_reader_names_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\n{"id": 3\n{"id": 4}\n')
    records = read_jsonl(path)
    assert next(records) == {"id": 1}
    assert next(records) == {"id": 2}
    with pytest.raises(RecordError, match=r"r\.jsonl:4: not valid JSON"):
        next(records)
    path.write_text("[1, 2]\n")
    with pytest.raises(RecordError, match=r"r\.jsonl:1: expected a JSON object"):
        load_jsonl(path)


def test_resume_drops_truncated_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlAppender(path) as out:
        out.write({"id": "a", "sample": 0})
        out.write({"id": "b", "sample": 0})
    with open(path, "a") as handle:
        handle.write('{"id": "c", "sam')  # a crash mid-record
    assert repair_and_scan(path, ("id", "sample")) == {("a", 0), ("b", 0)}
    assert path.read_text().endswith('"sample": 0}\n')
    with JsonlAppender(path) as out:
        out.write({"id": "c", "sample": 0})
    assert [r["id"] for r in load_jsonl(path)] == ["a", "b", "c"]


def test_resume_rejects_corruption_before_the_end(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(RecordError, match=r"out\.jsonl:2"):
        repair_and_scan(path)
    assert path.read_text() == '{"id": "a"}\nnot json\n{"id": "b"}\n'  # untouched


def test_reader_can_tolerate_truncated_tail(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\n{"id"')
    assert list(read_jsonl(path, allow_truncated_tail=True)) == [{"id": 1}]
    with pytest.raises(RecordError, match=":2:"):
        list(read_jsonl(path))


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_text(path, "old")

    with pytest.raises(TypeError):
        atomic_write_text(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_directory_killed_midway_leaves_nothing_finished(tmp_path):
    final = tmp_path / "model"
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from infra.files import atomic_directory
        with atomic_directory({str(final)!r}) as tmp:
            (tmp / "config.json").write_text("{{}}")
            print("written", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "written"
    process.kill()
    process.wait()
    assert not final.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(".model.tmp-") for name in leftovers)


def test_atomic_directory_success_and_error(tmp_path):
    final = tmp_path / "out"
    with atomic_directory(final) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_directory(final):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(final, overwrite=True) as tmp:
            (tmp / "b.txt").write_text("2")
            raise RuntimeError("stage failed")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_manifest_records_provenance(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("{}\n")
    manifest = Manifest("test.stage", config={"n": 8}, seeds={"seed": 3}, argv=["-m", "x", "--n=8"])
    manifest.add_input("data", data)
    assert not is_complete(tmp_path)
    manifest.write(tmp_path)
    assert is_complete(tmp_path)
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["config"] == {"n": 8}
    assert written["seeds"] == {"seed": 3}
    assert written["inputs"] == {"data": str(data.resolve())}
    assert written["command"].endswith("-m x --n=8")
    assert written["packages"]["torch"] and written["packages"]["transformers"]
    assert written["started"] <= written["finished"]
    assert "git_commit" in written
