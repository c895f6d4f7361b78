"""``brain-ai-engine``: serve the HTTP API, bulk-learn files, query, benchmark and demo the engine."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from brainai_common.cooldown import Cooldown
from brainai_common.engine_config import ConfigError, EngineConfig, load_config
from brainai_engine.engine.errors import CapacityExceeded
from brainai_engine.models import MAX_BATCH_TEXTS, MAX_SEARCH_LIMIT, ConceptSearchQuery, MemorySearchQuery
from brainai_engine.storage.lock import StoreLocked

if TYPE_CHECKING:
    from brainai_engine.engine.facade import Engine

URL_ENV, TOKEN_ENV = "BRAIN_AI_URL", "BRAIN_AI_TOKEN"
REMOTE_BATCH_BYTES = 192 * 1024  # well inside the server's default 1 MiB body limit, as JSON

log = logging.getLogger("brainai_engine")


def _config(args: argparse.Namespace, **server: Any) -> EngineConfig:
    config = load_config(args.config)
    updates = {k: v for k, v in server.items() if v is not None}
    if updates:
        config = config.model_copy(update={"server": config.server.model_copy(update=updates)})
    return config


def _open_engine(config: EngineConfig) -> Engine:
    from brainai_engine.engine.facade import Engine

    Path(config.server.data_dir).mkdir(parents=True, exist_ok=True)
    return Engine.open(config)


def _open_engine_when_reachable(config: EngineConfig) -> Engine:
    """Engines and their database often start together (a fresh cluster, a restarted node): wait
    for the store, saying why, rather than crash-looping with a traceback."""
    from brainai_engine.storage import StorageUnavailable

    cooldown = Cooldown(1.0, 15.0)
    while True:
        try:
            return _open_engine(config)
        except StorageUnavailable as exc:
            delay = cooldown.fail()
            log.warning("storage not reachable yet (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)


@contextlib.contextmanager
def _target(args: argparse.Namespace, config: EngineConfig) -> Iterator[Any]:
    """The running server at --url, else the store itself (refused while another process has it)."""
    if args.url:
        try:
            from brainai_engine.tools.remote import RemoteEngine, RemoteError
        except ImportError:
            needs = "error: --url needs the HTTP client: pip install 'brain-ai-engine[tools]'"
            raise SystemExit(needs) from None

        with RemoteEngine(args.url, args.token) as remote:
            try:
                yield remote
            except RemoteError as exc:
                raise SystemExit(f"error: {exc}") from None
    else:
        with _open_engine(config) as engine:
            yield engine


def _checkpoint_dir(args: argparse.Namespace, config: EngineConfig) -> Path:
    """Ingest checkpoints: in the store's data dir, or for a server under the user's state dir,
    one directory per server URL, so that a run against another server starts from scratch."""
    if not args.url:
        return Path(config.server.data_dir)
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "brain-ai" / "ingest" / hashlib.sha256(args.url.rstrip("/").encode()).hexdigest()[:16]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from brainai_engine.api.app import create_app
    from brainai_engine.api.serving import uvicorn_config

    config = _config(args, host=args.host, port=args.port, data_dir=args.data_dir)
    engine = _open_engine_when_reachable(config)
    stats = engine.stats()
    log.info("engine open: %d memories, %d concepts (%s)", stats.memories, stats.concepts, stats.storage)
    done = threading.Event()
    try:
        app = create_app(engine, config)
        if config.performance.enable_monitoring:
            interval = config.performance.metrics_interval
            thread = threading.Thread(
                target=_log_traffic, args=(app.state.metrics, interval, done), daemon=True
            )
            thread.start()
        server = uvicorn.Server(
            uvicorn_config(app, config.server.host, config.server.port, log_level=config.system.log_level)
        )
        # uvicorn turns SIGTERM/SIGINT into a graceful shutdown: in-flight requests finish, run() returns.
        server.run()
    finally:
        done.set()
        engine.close()
        log.info("engine closed")
    return 0


def _log_traffic(metrics: Any, interval: float, done: threading.Event) -> None:
    """Every `performance.metrics_interval` seconds, one line of what was served since the last."""
    while not done.wait(interval):
        summary = metrics.traffic_summary()
        if summary:
            log.info("%s in the last %.0fs", summary, interval)


def cmd_learn(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from brainai_engine.engine.ingest import LOCAL_BATCH_BYTES, Ingestor, iter_files

    config = _config(args)
    named = [Path(p) for p in args.paths if p != "-"]
    missing = [str(p) for p in named if not (p.is_file() or p.is_dir())]
    if missing:
        print(f"error: not a readable file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = list(iter_files(named))
    with _target(args, config) as engine:
        bar = tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr, desc="learn", disable=args.quiet)
        ingestor = Ingestor(
            engine,
            _checkpoint_dir(args, config),
            priority=args.priority,
            batch_texts=args.batch_size or config.learning.batch_size,
            on_bytes=bar.update,
            batch_bytes=REMOTE_BATCH_BYTES if args.url else LOCAL_BATCH_BYTES,
        )
        bar.total = sum(ingestor.remaining(p.resolve()) for p in paths)
        bar.refresh()
        if "-" in args.paths:
            ingestor.ingest_stream(sys.stdin.buffer)
        for path in paths:
            ingestor.ingest_file(path)
        ingestor.finish()
        bar.close()
    summary = ingestor.summary.as_dict()
    if args.json:
        print(json.dumps(summary))
    else:
        print(_learn_summary(summary))
        for item in summary["per_file"] if args.files else ():  # type: ignore[attr-defined]
            print(f"  {item['status']:>18}  {item['bytes']:>10} B  {item['path']}")
    return 0


def _learn_summary(summary: dict[str, Any]) -> str:
    """A few lines whatever the number of files (`--files` lists them)."""
    learned = summary["files"] - summary["files_skipped"]
    lines = [
        f"learned {summary['bytes']:,} bytes from {learned:,} of {summary['files']:,} input(s): "
        f"{summary['texts']:,} texts, {summary['memories_stored']:,} new memories"
        + (f" ({summary['duplicates']:,} already known)" if summary.get("duplicates") else "")
        + f", {summary['concepts_created']:,} new concepts, {summary['relationships_formed']:,} "
        f"relationships in {summary['seconds']:.1f}s ({summary['mb_per_hour']:,.0f} MB/h)"
    ]
    if summary["skipped"]:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(summary["skipped"].items()))
        lines.append(f"skipped {summary['files_skipped']:,}: {reasons}")
    return "\n".join(lines)


def _short(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_search(args: argparse.Namespace) -> int:
    config = _config(args)
    query = MemorySearchQuery(query=args.query, limit=args.limit)
    with _target(args, config) as engine:
        result = engine.search_memories(query)
    if args.json:
        print(result.model_dump_json())
        return 0
    print(f"{len(result.results)} of {result.total} memories for {args.query!r} ({result.took_ms:.2f} ms)")
    for rank, hit in enumerate(result.results, 1):
        print(f"{rank:>3}. [{hit.normalized_score:.2f}] {_short(hit.memory.content)}  (id {hit.memory.id})")
    return 0


def cmd_concepts(args: argparse.Namespace) -> int:
    config = _config(args)
    query = ConceptSearchQuery(query=args.query, limit=args.limit)
    with _target(args, config) as engine:
        result = engine.search_concepts(query)
    if args.json:
        print(result.model_dump_json())
        return 0
    print(f"{len(result.results)} concepts for {args.query!r} ({result.took_ms:.2f} ms)")
    for rank, hit in enumerate(result.results, 1):
        c = hit.concept
        print(
            f"{rank:>3}. [{hit.score:.3f}] {c.name}  (used {c.usage_count}x, confidence {c.confidence:.2f})"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from brainai_engine.tools.bench_http import run_full_bench

    memories = args.memories or (100_000 if args.quick else 1_000_000)
    report = run_full_bench(memories, quick=args.quick, config_path=args.config, verbose=not args.json)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key}: {json.dumps(value)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from brainai_engine.tools.quality import REPORT_SECTIONS, render, run_report

    config = _config(args).model_dump()
    sections = {k: config[k] for k in REPORT_SECTIONS}
    folder = Path(args.folder) if args.folder else None
    if folder is not None and not folder.is_dir():
        print(f"error: not a directory: {folder}", file=sys.stderr)
        return 2
    progress = (
        (lambda _m: None) if args.json else (lambda m: print(f"[report] {m}", file=sys.stderr, flush=True))
    )
    report = run_report(folder, args.megabytes, sections, progress)
    print(json.dumps(report) if args.json else render(report))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from brainai_engine.tools.demo import run_demo

    return run_demo(args.config)


def _limit(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_SEARCH_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_SEARCH_LIMIT}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brain-ai-engine", description="Brain AI memory and concept engine."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="TOML config file (defaults when omitted)")
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or None,
        help=f"a running server to talk to (default: ${URL_ENV}); without it, the store in the "
        "config's data dir, which only one process at a time may open",
    )
    client.add_argument(
        "--token", default=os.environ.get(TOKEN_ENV) or None, help=f"its bearer token (default: ${TOKEN_ENV})"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="serve the HTTP API")
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.add_argument("--data-dir", help="data directory (default: server.data_dir)")
    serve.set_defaults(func=cmd_serve)

    learn = sub.add_parser("learn", parents=[common, client], help="bulk-learn text files ('-' reads stdin)")
    learn.add_argument("paths", nargs="+", metavar="PATH")
    learn.add_argument("--priority", choices=["low", "medium", "high", "critical"], default="medium")
    learn.add_argument(
        "--batch-size",
        type=int,
        help="texts per learn (one transaction), files sharing it (default: learning.batch_size, at most "
        f"{MAX_BATCH_TEXTS})",
    )
    learn.add_argument("--json", action="store_true", help="print the summary as JSON")
    learn.add_argument("--quiet", action="store_true", help="no progress bar")
    learn.add_argument("--files", action="store_true", help="list every input file with its status")
    learn.set_defaults(func=cmd_learn)

    for name, func, what in (("search", cmd_search, "memories"), ("concepts", cmd_concepts, "concepts")):
        p = sub.add_parser(name, parents=[common, client], help=f"search {what}")
        p.add_argument("query")
        p.add_argument("--limit", type=_limit, default=10)
        p.add_argument("--json", action="store_true", help="print the raw result as JSON")
        p.set_defaults(func=func)

    bench = sub.add_parser("bench", parents=[common], help="core and HTTP benchmark")
    bench.add_argument("--quick", action="store_true", help="100k memories, well under a minute")
    bench.add_argument("--memories", type=int, help="memories to preload (default 1M, 100k with --quick)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=cmd_bench)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="concept quality: learn a fixed corpus into a scratch store and print junk share, "
        "related-concept strengths and their overlap with the most frequent words",
    )
    report.add_argument(
        "folder",
        nargs="?",
        help="a folder of text files (default: this Python's standard-library docstrings)",
    )
    report.add_argument("--megabytes", type=float, default=4.0, help="docstring corpus size (default 4)")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(func=cmd_report)

    demo = sub.add_parser("demo", parents=[common], help="start a server, learn, query, stop")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "faiss"):  # per-request / loader chatter would drown the output
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"invalid input: {exc}", file=sys.stderr)
        return 2
    except StoreLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CapacityExceeded as exc:
        print(f"error: {exc}; what was acknowledged before is stored", file=sys.stderr)
        return 4

    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
