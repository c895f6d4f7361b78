"""Resumable bulk ingest of text files through ``engine.learn_batch``.

Only text is learned: a file is sniffed first (its first 8 KiB) and skipped with a counted reason
when it is empty, compressed (gzip, bzip2, xz, zstd, zip: the magic number) or binary (a NUL byte,
as git decides, or mostly bytes that are neither UTF-8 text nor whitespace). Directories are walked
in name order, hidden entries (``.git``) left out.

Files are cut into paragraph-sized texts at exact byte offsets. After every acknowledged batch the byte
offset reached is written to a per-file checkpoint in the data dir, so an interrupted run resumes where the
last acknowledged batch ended (at-least-once: a crash between acknowledgement and checkpoint repeats one
batch, it never loses one).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from brainai_engine.models import MAX_BATCH_TEXTS, BatchLearnRequest, BatchLearnResult, Priority


class Learner(Protocol):
    """What ingest needs: an Engine on the local store, or a running server (tools.remote)."""

    def learn_batch(self, req: BatchLearnRequest) -> BatchLearnResult: ...


HEAD_BYTES = 65536
DEFAULT_TEXT_BYTES = 2048
DEFAULT_BATCH_TEXTS = 64
MAX_BATCH_BYTES = 512 * 1024
LOCAL_BATCH_BYTES = 8 << 20  # into the local store: one transaction may be large


@dataclass
class Piece:
    text: str
    end: int  # absolute byte offset just past this piece in its source


SNIFF_BYTES = 8192
COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


def sniff(head: bytes) -> str | None:
    """Why a file starting with `head` is not text to learn, or None when it is."""
    if not head:
        return "empty"
    for magic, kind in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            return f"compressed ({kind})"
    if b"\x00" in head:
        return "binary"
    text = head.decode("utf-8", errors="replace")
    # A cut at the sniff limit may split one character: allow for it before judging.
    odd = text.count("\ufffd") + sum(1 for c in text if c < " " and c not in "\t\n\r\f\v")
    return "binary" if odd > max(len(text) // 10, 2) else None


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """Files named, and every file under directories named (name order, hidden entries skipped)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


@dataclass
class IngestSummary:
    files: int = 0
    files_skipped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files
    bytes: int = 0
    texts: int = 0
    batches: int = 0
    memories_stored: int = 0
    duplicates: int = 0  # texts whose identical content was already stored
    concepts_created: int = 0
    concepts_updated: int = 0
    relationships_formed: int = 0
    seconds: float = 0.0
    per_file: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "per_file"}
        data["mb_per_hour"] = round(self.bytes / 1e6 / (self.seconds / 3600), 2) if self.seconds > 0 else 0.0
        data["per_file"] = self.per_file
        return data


def _cut_line(line: bytes, limit: int) -> Iterator[bytes]:
    """Split an over-long line at whitespace, or at a UTF-8 character boundary when there is none."""
    while len(line) > limit:
        cut = line.rfind(b" ", 0, limit)
        if cut <= 0:
            cut = limit
            while cut > 0 and (line[cut] & 0xC0) == 0x80:  # never split inside a UTF-8 sequence
                cut -= 1
            cut = cut or limit
        else:
            cut += 1
        yield line[:cut]
        line = line[cut:]
    if line:
        yield line


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").replace("\x00", "").strip()


def iter_pieces(stream: IO[bytes], start: int, text_bytes: int = DEFAULT_TEXT_BYTES) -> Iterator[Piece]:
    """Paragraphs (blank-line separated) of at most ``text_bytes``, each tagged with its end offset.

    Blank pieces are still yielded (with empty text) so the caller's offset advances past them.
    """
    offset = start
    buf: list[bytes] = []
    size = 0
    for line in stream:
        if not line.strip():
            offset += len(line)
            if buf:
                yield Piece(_decode(b"".join(buf)), offset)
                buf, size = [], 0
            else:
                yield Piece("", offset)
            continue
        if buf and size + len(line) > text_bytes:
            yield Piece(_decode(b"".join(buf)), offset)
            buf, size = [], 0
        for part in _cut_line(line, text_bytes):
            if buf and size + len(part) > text_bytes:
                yield Piece(_decode(b"".join(buf)), offset)
                buf, size = [], 0
            buf.append(part)
            size += len(part)
            offset += len(part)
    if buf:
        yield Piece(_decode(b"".join(buf)), offset)


class Checkpoints:
    """One small JSON file per input path under ``<data_dir>/ingest``; replaced atomically."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "ingest"

    def _file(self, path: Path) -> Path:
        return self.root / (hashlib.sha256(str(path).encode()).hexdigest()[:24] + ".json")

    @staticmethod
    def fingerprint(path: Path, length: int) -> str:
        """Hash of the first ``length`` bytes: unchanged when a file only grows, changed when replaced."""
        with path.open("rb") as fh:
            return hashlib.sha256(fh.read(length)).hexdigest()

    def load(self, path: Path) -> int:
        """Byte offset already acknowledged for ``path``; 0 if unknown or the file was replaced."""
        try:
            data = json.loads(self._file(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        offset = int(data.get("offset", 0))
        head_len = int(data.get("head_len", -1))
        if offset > path.stat().st_size or head_len != min(offset, HEAD_BYTES):
            return 0
        if data.get("head") != self.fingerprint(path, head_len):
            return 0
        return offset

    def save(self, path: Path, offset: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        head_len = min(offset, HEAD_BYTES)
        record = {
            "path": str(path),
            "offset": offset,
            "head_len": head_len,
            "head": self.fingerprint(path, head_len),
        }
        target = self._file(path)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, target)


@dataclass
class _Source:
    """One input's place in the pending batch: what is acknowledged, and how to record more."""

    acked: int
    commit: Callable[[int], None]
    pending_end: int = -1


class Ingestor:
    """Feeds sources to the engine in batches and keeps the checkpoints.

    Batches span files: many small files share one learn (one transaction) instead of one each.
    A file's checkpoint moves only once the batch holding its pieces is acknowledged, so `finish`
    must be called after the last source (it learns what is still pending)."""

    def __init__(
        self,
        engine: Learner,
        data_dir: str | Path,
        *,
        priority: Priority = "medium",
        batch_texts: int = DEFAULT_BATCH_TEXTS,
        text_bytes: int = DEFAULT_TEXT_BYTES,
        batch_bytes: int = MAX_BATCH_BYTES,
        on_bytes: Callable[[int], object] | None = None,
    ) -> None:
        self.engine = engine
        self.batch_bytes = max(1, batch_bytes)
        self.checkpoints = Checkpoints(data_dir)
        self.priority = priority
        self.batch_texts = max(1, min(batch_texts, MAX_BATCH_TEXTS))
        self.text_bytes = max(64, text_bytes)
        self.on_bytes = on_bytes or (lambda _n: None)
        self.summary = IngestSummary()
        self._texts: list[str] = []
        self._text_bytes = 0
        self._sources: list[_Source] = []  # those with pieces in the pending batch
        self._began: float | None = None

    def remaining(self, path: Path) -> int:
        """Bytes still to learn from `path` (0 for a file that will be skipped)."""
        with path.open("rb") as fh:
            if sniff(fh.read(SNIFF_BYTES)) is not None:
                return 0
        return max(0, path.stat().st_size - self.checkpoints.load(path))

    def _skip(self, path: Path, reason: str) -> None:
        self.summary.files_skipped += 1
        self.summary.skipped[reason] = self.summary.skipped.get(reason, 0) + 1
        self.summary.per_file.append({"path": str(path), "status": reason, "bytes": 0})

    def ingest_file(self, path: Path) -> None:
        path = path.resolve()
        self.summary.files += 1
        with path.open("rb") as fh:
            reason = sniff(fh.read(SNIFF_BYTES))
            if reason is not None:
                self._skip(path, reason)
                return
            start = self.checkpoints.load(path)
            if start >= path.stat().st_size:
                self._skip(path, "already done")
                return
            fh.seek(start)
            end = self._feed(fh, _Source(start, lambda offset: self.checkpoints.save(path, offset)))
        status = "resumed" if start else "ingested"
        self.summary.per_file.append(
            {"path": str(path), "status": status, "bytes": end - start, "from": start}
        )

    def ingest_stream(self, stream: IO[bytes], name: str = "<stdin>") -> None:
        """Unseekable input (stdin) cannot be resumed, so it keeps no checkpoint."""
        self.summary.files += 1
        end = self._feed(stream, _Source(0, lambda _offset: None))
        self.summary.per_file.append({"path": name, "status": "ingested", "bytes": end})

    def finish(self) -> IngestSummary:
        """Learn what is pending and move its checkpoints; the summary is then complete."""
        self._flush()
        if self._began is not None:
            self.summary.seconds = time.perf_counter() - self._began
        return self.summary

    def _feed(self, stream: IO[bytes], source: _Source) -> int:
        """Queue a source's pieces, learning each batch as it fills; returns the offset read to."""
        if self._began is None:
            self._began = time.perf_counter()
        end = source.acked
        for piece in iter_pieces(stream, source.acked, self.text_bytes):
            if source.pending_end < 0:
                self._sources.append(source)
            source.pending_end = end = piece.end
            if piece.text:
                self._texts.append(piece.text)
                self._text_bytes += len(piece.text.encode("utf-8"))
            if len(self._texts) >= self.batch_texts or self._text_bytes >= self.batch_bytes:
                self._flush()
        return end

    def _flush(self) -> None:
        try:
            if self._texts:
                result = self.engine.learn_batch(BatchLearnRequest(texts=self._texts, priority=self.priority))
                s = result.summary
                self.summary.texts += len(self._texts)
                self.summary.batches += 1
                self.summary.memories_stored += s.memories_stored
                self.summary.duplicates += s.memories_known
                self.summary.concepts_created += s.concepts_created
                self.summary.concepts_updated += s.concepts_updated
                self.summary.relationships_formed += s.relationships_formed
            for source in self._sources:
                source.commit(source.pending_end)
                learned = source.pending_end - source.acked
                self.summary.bytes += learned
                self.on_bytes(learned)
                source.acked, source.pending_end = source.pending_end, -1
        finally:
            self._texts, self._text_bytes, self._sources = [], 0, []
