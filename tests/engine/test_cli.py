"""The ``brain-ai-engine`` CLI on real files and a real data dir: resumable learn, search, concepts."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from brainai_common.engine_config import load_config
from brainai_engine import cli
from brainai_engine.engine import ingest
from brainai_engine.engine.facade import Engine
from brainai_engine.engine.ingest import Checkpoints, iter_pieces
from brainai_engine.tools.server_process import ServerProcess
from tests.engine.engine_helpers import write_config

PARAGRAPH = (
    "Machine learning systems learn patterns from data. Neural networks are machine learning models.\n"
    "Knowledge graphs connect concepts with relationships.\n"
)


def make_corpus(path: Path, paragraphs: int, tag: str = "") -> Path:
    blocks = [
        f"{PARAGRAPH}Paragraph {tag}{i} mentions topic{i % 7} and idea{i % 5}.\n" for i in range(paragraphs)
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def memory_count(config_path: Path) -> int:
    engine = Engine.open(load_config(config_path))
    try:
        return engine.stats().memories
    finally:
        engine.close()


def test_pieces_have_exact_offsets(tmp_path: Path) -> None:
    data = "first para line\nstill first\n\nsecond ünïcödé para\n\n\n" + "x" * 5000 + "\nlast"
    path = tmp_path / "t.txt"
    path.write_bytes(data.encode("utf-8"))
    with path.open("rb") as fh:
        pieces = [p for p in iter_pieces(fh, 0, text_bytes=1000)]
    assert pieces[-1].end == path.stat().st_size
    assert [p.end for p in pieces] == sorted(p.end for p in pieces)
    texts = [p.text for p in pieces if p.text]
    assert texts[0] == "first para line\nstill first"
    assert texts[1] == "second ünïcödé para"
    assert all(len(t.encode()) <= 1000 for t in texts)
    # resuming from any piece boundary yields exactly the remaining pieces
    cut = pieces[2].end
    with path.open("rb") as fh:
        fh.seek(cut)
        rest = list(iter_pieces(fh, cut, text_bytes=1000))
    assert [p.end for p in rest] == [p.end for p in pieces[3:]]


def test_learn_is_resumable_after_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path / "corpus.txt", 40)
    resumed_cfg = write_config(tmp_path / "a.toml", tmp_path / "a")
    clean_cfg = write_config(tmp_path / "b.toml", tmp_path / "b")

    # Crash after the third acknowledged batch: the exception escapes just like a kill would stop the run.
    real_save = Checkpoints.save
    saves = {"n": 0}

    def crashing_save(self: Checkpoints, path: Path, offset: int) -> None:
        real_save(self, path, offset)
        saves["n"] += 1
        if saves["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ingest.Checkpoints, "save", crashing_save)
    code, _ = run_cli(
        capsys, "learn", str(corpus), "--config", str(resumed_cfg), "--batch-size", "4", "--quiet"
    )
    assert code == 130
    partial = memory_count(resumed_cfg)
    assert partial > 0
    monkeypatch.setattr(ingest.Checkpoints, "save", real_save)

    code, out = run_cli(
        capsys, "learn", str(corpus), "--config", str(resumed_cfg), "--batch-size", "4", "--quiet", "--json"
    )
    assert code == 0
    summary = json.loads(out)
    assert summary["per_file"][0]["status"] == "resumed"
    assert 0 < summary["per_file"][0]["from"] < corpus.stat().st_size

    code, _ = run_cli(
        capsys, "learn", str(corpus), "--config", str(clean_cfg), "--batch-size", "4", "--quiet"
    )
    assert code == 0
    # the interrupted-then-resumed run stored exactly what one uninterrupted run stores
    assert memory_count(resumed_cfg) == memory_count(clean_cfg)

    code, out = run_cli(capsys, "learn", str(corpus), "--config", str(resumed_cfg), "--quiet")
    assert code == 0
    assert "already done" in out
    assert memory_count(resumed_cfg) == memory_count(clean_cfg)


def test_appended_file_only_ingests_the_new_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path / "grow.txt", 5)
    config = write_config(tmp_path / "c.toml", tmp_path / "c")
    run_cli(capsys, "learn", str(corpus), "--config", str(config), "--quiet")
    before = memory_count(config)
    size = corpus.stat().st_size
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write("\nA new paragraph arrives about quantum computing.\n")
    code, out = run_cli(capsys, "learn", str(corpus), "--config", str(config), "--quiet", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["per_file"][0]["from"] == size
    assert memory_count(config) == before + 1

    # a replaced file (different head) is learned again from the start
    make_corpus(corpus, 3, tag="new")
    code, out = run_cli(capsys, "learn", str(corpus), "--config", str(config), "--quiet", "--json")
    assert json.loads(out)["per_file"][0]["status"] == "ingested"


def test_learn_a_folder_skips_what_is_not_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".git").mkdir()
    make_corpus(docs / "guide.txt", 3)
    make_corpus(docs / "sub" / "more.md", 2, tag="more")
    (docs / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "changelog.gz").write_bytes(gzip.compress(PARAGRAPH.encode()))
    (docs / "tool").write_bytes(Path(sys.executable).resolve().read_bytes()[:20000])  # an ELF binary
    (docs / "latin1.bin").write_bytes(bytes(range(128, 256)) * 40)
    config = write_config(tmp_path / "f.toml", tmp_path / "f")

    code, out = run_cli(capsys, "learn", str(docs), "--config", str(config), "--quiet", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["files"] == 6 and summary["files_skipped"] == 4
    assert summary["skipped"] == {"binary": 2, "compressed (gzip)": 1, "empty": 1}
    status = {Path(f["path"]).name: f["status"] for f in summary["per_file"]}
    assert status["guide.txt"] == status["more.md"] == "ingested" and status["empty.txt"] == "empty"
    assert "HEAD" not in status  # hidden directories are not walked

    code, out = run_cli(capsys, "learn", str(docs), "--config", str(config), "--quiet")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2  # one screen whatever the file count; --files lists them
    assert "from 0 of 6 input(s)" in lines[0]
    assert lines[1] == "skipped 6: 2 already done, 2 binary, 1 compressed (gzip), 1 empty"
    _, out = run_cli(capsys, "learn", str(docs), "--config", str(config), "--quiet", "--files")
    assert len(out.strip().splitlines()) == 2 + 6


def test_search_and_concepts_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path / "corpus.txt", 6)
    config = str(write_config(tmp_path / "d.toml", tmp_path / "d"))
    assert run_cli(capsys, "learn", str(corpus), "--config", config, "--quiet")[0] == 0

    code, out = run_cli(capsys, "search", "machine learning", "--config", config, "--limit", "3")
    assert code == 0
    assert "memories for 'machine learning'" in out
    assert " 1. [" in out and "Machine learning" in out

    code, out = run_cli(capsys, "search", "machine learning", "--config", config, "--json")
    hits = json.loads(out)["results"]
    assert hits and "content" in hits[0]["memory"]

    code, out = run_cli(capsys, "concepts", "learning", "--config", config)
    assert code == 0 and "concepts for 'learning'" in out and " 1. [" in out
    code, out = run_cli(capsys, "concepts", "learning", "--config", config, "--json", "--limit", "2")
    assert 0 < len(json.loads(out)["results"]) <= 2

    assert cli.main(["search", "   ", "--config", config]) == 2


def test_stdin_and_console_script(tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "e.toml", tmp_path / "e"))
    proc = subprocess.run(
        [sys.executable, "-m", "brainai_engine.cli", "learn", "-", "--config", config, "--json"],
        input=PARAGRAPH.encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(proc.stdout)
    assert summary["memories_stored"] >= 1 and summary["per_file"][0]["path"] == "<stdin>"
    assert "learn" in proc.stderr.decode()  # the progress bar goes to stderr


def test_bad_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n", encoding="utf-8")
    assert cli.main(["search", "x", "--config", str(bad)]) == 2
    assert "config error" in capsys.readouterr().err


# -- one process per store; the CLI talks to a running server through --url ------------------------
def cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "brainai_engine.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_a_second_process_on_a_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus.txt", 4)
    config = str(write_config(tmp_path / "c.toml", tmp_path / "data"))
    with ServerProcess(tmp_path / "data", config_path=config) as server:
        for argv in (["learn", str(corpus)], ["search", "machine"], ["concepts", "learning"]):
            refused = cli_process(*argv, "--config", config)
            assert refused.returncode == 3, refused.stderr
            assert f"is open in process {server.proc.pid}" in refused.stderr  # type: ignore[union-attr]
            assert "serve" in refused.stderr and "--url" in refused.stderr
            assert "Traceback" not in refused.stderr
        second = cli_process("serve", "--config", config, "--port", "1")
        assert second.returncode == 3 and "is open in process" in second.stderr
        server.kill()  # kill -9: the kernel drops the lock with the process
    assert memory_count(Path(config)) == 0  # and this process may open the store now


def test_learn_search_and_concepts_through_a_running_server(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus.txt", 30, tag="srv")
    config = str(write_config(tmp_path / "c.toml", tmp_path / "data"))
    state = {"XDG_STATE_HOME": str(tmp_path / "state")}
    with ServerProcess(tmp_path / "data", config_path=config) as server:
        learned = cli_process("learn", str(corpus), "--url", server.base_url, "--json", env=state)
        assert learned.returncode == 0, learned.stderr
        summary = json.loads(learned.stdout)
        assert summary["memories_stored"] >= 30 and summary["bytes"] == corpus.stat().st_size
        assert "learn" in learned.stderr  # the progress bar
        # Resumable as on a local store: a second run finds the file done.
        again = cli_process("learn", str(corpus), "--url", server.base_url, "--json", env=state)
        assert json.loads(again.stdout)["per_file"][0]["status"] == "already done"
        # BRAIN_AI_URL instead of --url; the server, not this process, has the store.
        env = {**state, "BRAIN_AI_URL": server.base_url}
        found = cli_process("search", "Paragraph srv7", "--json", env=env)
        assert found.returncode == 0, found.stderr
        assert any("srv7" in hit["memory"]["content"] for hit in json.loads(found.stdout)["results"])
        concepts = cli_process("concepts", "learning", env=env)
        assert concepts.returncode == 0 and " 1. [" in concepts.stdout
    assert memory_count(Path(config)) == summary["memories_stored"]  # in the server's store
    gone = cli_process("search", "x", "--url", server.base_url)
    assert gone.returncode == 1 and f"cannot reach the engine at {server.base_url}" in gone.stderr


@pytest.mark.parametrize("enabled", [True, False])
def test_serve_logs_traffic_summaries_only_with_enable_monitoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, enabled: bool
) -> None:
    """uvicorn's serving loop is replaced by requests through the app `serve` built, held open long
    enough for several summary periods."""
    monitoring = "true" if enabled else "false"
    config = write_config(
        tmp_path / "c.toml",
        tmp_path / "data",
        f"\n[performance]\nenable_monitoring = {monitoring}\nmetrics_interval = 0.05\n",
    )

    def serve(server: uvicorn.Server) -> None:
        with TestClient(server.config.app) as client:
            assert client.post("/api/v1/learn", json={"text": "Summaries count requests."}).status_code == 200
            time.sleep(0.3)

    monkeypatch.setattr(uvicorn.Server, "run", serve)
    with caplog.at_level("INFO", logger="brainai_engine"):
        assert cli.main(["serve", "--config", str(config)]) == 0
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("served ")]
    if enabled:
        assert summaries and "/api/v1/learn 200: 1" in summaries[0]
    else:
        assert summaries == []
