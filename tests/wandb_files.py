"""Reading what wandb wrote for an offline run, for tests that check the mirror of a run record."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def wandb_records(run_file: Path) -> list:
    """The protobuf records of an offline wandb run (LevelDB-style log: 32 KiB blocks of chunks)."""
    from wandb.proto import wandb_internal_pb2

    data, block, records, chunk = run_file.read_bytes(), 32768, [], b""
    pos = 7  # ":W&B" magic, 2 bytes of magic, 1 byte version
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk ends a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def values(items) -> dict:
    """{key: value} of wandb's key/JSON-value items (the key is either flat or nested)."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def offline_run(record: Path) -> tuple[str, dict[str, list]]:
    """(run id, records by kind) of the one offline wandb run inside a run record."""
    run_files = list(record.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 1, run_files
    by_kind: dict[str, list] = {}
    for r in wandb_records(run_files[0]):
        by_kind.setdefault(r.WhichOneof("record_type"), []).append(r)
    return by_kind["run"][0].run.run_id, by_kind


def logged_epochs(by_kind: dict[str, list]) -> list[dict]:
    """The history rows of an offline run, in step order."""
    return sorted((values(r.history.item) for r in by_kind.get("history", [])), key=lambda h: h["_step"])
