"""``manage.py hash --json PATH... --jobs N``: one JSON line per file, in input order, in parallel."""

import io
import json
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from .conftest import encode, landscape, shapes


def run(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("hash", "--json", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = []
    for i in range(6):
        path = tmp_path / f"photo-{i}.jpg"
        path.write_bytes(encode(landscape(300, 200, seed=i), "JPEG", quality=90))
        paths.append(str(path))
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    paths.insert(2, str(bad))
    paths.insert(4, str(tmp_path / "missing.png"))
    png = tmp_path / "shapes.png"
    png.write_bytes(encode(shapes(120, 90), "PNG"))
    paths.append(str(png))
    return paths


def test_parallel_jobs_print_the_same_lines_in_input_order(files):
    serial = run(*files)
    parallel = run("--jobs", "3", *files)
    assert parallel == serial
    assert [line["path"] for line in parallel] == files


def test_each_line_has_the_agreed_fields_or_an_error(files):
    lines = run("--jobs", "2", *files)
    by_path = {line["path"]: line for line in lines}
    assert set(by_path[files[0]]) == {"path", "pdq", "pdq_quality", "phash", "dhash", "md5", "sha256"}
    assert set(by_path[files[2]]) == {"path", "error"}
    assert "not an image we can read" in by_path[files[2]]["error"]
    assert by_path[files[4]]["error"] == "cannot read the file: No such file or directory"
    assert len({line.get("sha256") for line in lines if "sha256" in line}) == len(files) - 2


def test_it_shows_no_progress_bar_when_stderr_is_not_a_terminal(files, capsys):
    run("--jobs", "2", *files)
    assert capsys.readouterr().err == ""


def test_it_shows_a_progress_bar_on_a_terminal(files, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    lines = run(*files)
    assert len(lines) == len(files)
    assert f"{len(files)}/{len(files)}" in terminal.getvalue()


def test_it_refuses_fewer_than_one_job(files):
    with pytest.raises(CommandError, match="--jobs must be 1 or more"):
        run("--jobs", "0", *files)
