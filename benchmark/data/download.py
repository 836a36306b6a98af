"""Verified downloads: progress bar, HTTP Range resume, SHA-256/MD5 check, safe extraction.

Nothing here runs unless asked (`seqrec-data fetch`): reading a dataset never touches the network.
Every step is all-or-nothing: a download lands in ``<file>.part`` and is renamed only after its
checksum matched (a resume asks for the rest with If-Range, so it is never spliced onto a part of an
older upstream version); an archive is unpacked into a hidden temporary folder and moved into place only
after every member passed the path checks (and its published checksum, where there is one); a
dataset's files reach its folder only after all of them succeeded, and its manifest is written last.
A download that cannot be unpacked is deleted, so the next fetch gets it again. Each download file is
locked while it is fetched, so that a second process fetching it waits for the first one.
"""

from __future__ import annotations

import contextlib
import fcntl  # POSIX only: the download locks use flock
import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from tqdm import tqdm

from benchmark.data.catalog import Checksum, DatasetInfo, Remote, cache_subdir, lookup
from benchmark.data.dataset import data_home
from benchmark.errors import DataError

CHUNK = 1 << 20
MANIFEST = ".seqrec-fetch.json"  # hidden: files_hash ignores it
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class ChecksumWarning(UserWarning):
    """Published checksums disagree with each other, or none was published."""


class Unreachable(DataError):
    """The server could not be reached (offline, DNS, refused)."""


class WriteFailed(DataError):
    """Writing to the local disk failed (full, file too large, read-only): what was downloaded is kept."""


class _Interrupted(Exception):
    """The connection dropped mid-transfer; the .part file is kept for a resume."""


@dataclass
class Verified:
    """A downloaded file and what its checksums showed (recorded in the dataset's manifest)."""

    path: Path
    url: str
    size: int
    sha256: str
    md5: str
    matched: list[Checksum] = field(default_factory=list)
    disagreeing: list[Checksum] = field(default_factory=list)


def file_digests(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def verify(path: Path, checksums: Iterable[Checksum], url: str = "", on_mismatch: str = "") -> Verified:
    """Checks ``path`` against the published checksums. None matching -> DataError and the file is
    deleted (``on_mismatch`` says what to do instead of the default advice). Some matching, some not ->
    the publishers disagree: accepted with a ChecksumWarning."""
    checksums = list(checksums)
    digests = file_digests(path)
    matched = [c for c in checksums if digests[c.algo] == c.value.lower()]
    others = [c for c in checksums if c not in matched]
    if checksums and not matched:
        path.unlink(missing_ok=True)
        expected = "; ".join(f"{c.algo} {c.value} ({c.source})" for c in checksums)
        raise DataError(f"checksum mismatch for {url or path.name}: got sha256 {digests['sha256']}, md5 {digests['md5']}; "
                        f"published: {expected}. The file was deleted; "
                        + (on_mismatch or "fetch again (a changed upstream file needs a catalog update)"))
    if others:
        warnings.warn(f"{path.name}: published checksums disagree: matched {', '.join(f'{c.algo} of {c.source}' for c in matched)}; "
                      f"not {', '.join(f'{c.algo} {c.value} of {c.source}' for c in others)} (recorded in {MANIFEST})",
                      ChecksumWarning, stacklevel=2)
    if not checksums:
        warnings.warn(f"{path.name}: no published checksum to verify against; recorded sha256 {digests['sha256']} in {MANIFEST}",
                      ChecksumWarning, stacklevel=2)
    return Verified(path, url, path.stat().st_size, digests["sha256"], digests["md5"], matched, others)


def _transfer(url: str, part: Path, progress: bool, timeout: float, size: int | None = None) -> None:
    """Appends the rest of ``url`` to ``part`` (a Range request when ``part`` has bytes already).
    ``size`` (the catalog's, if known) detects a cut-short response that had no Content-Length."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "seqrec-bench (+https://github.com)"}
    validator = _validator_file(part)
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator.is_file():  # the rest only if the file is still the one the part came from, else all of it
            headers["If-Range"] = validator.read_text().strip()
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: complete if the server's total is what we have
            total = re.fullmatch(r"bytes \*/(\d+)", e.headers.get("Content-Range") or "")
            if total and int(total[1]) == have:
                return
            part.unlink()  # longer than the file, or the total is unknown: start over
            return _transfer(url, part, progress, timeout, size)
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise Unreachable(f"cannot reach {url} ({getattr(e, 'reason', e)})") from None
    with resp:
        resumed = have > 0 and resp.status == 206 and re.match(rf"bytes {have}-", resp.headers.get("Content-Range", ""))
        if not resumed:
            have = 0  # the server ignored the Range header, or the file changed (If-Range): start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        try:
            if not resumed:
                _save_validator(validator, resp.headers)
            with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[: -len(".part")],
                disable=not progress, leave=False,
            ) as bar:
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (http.client.IncompleteRead, OSError) as e:
                        raise _Interrupted(str(e) or type(e).__name__) from None
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))
        except OSError as e:
            raise WriteFailed(f"cannot write {part} ({e.strerror or e}) while downloading {url}; "
                              "the partial file is kept: fix this and fetch again to resume") from None
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"connection closed after {got} of {total} bytes")


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".if-range")


def _save_validator(path: Path, headers: Any) -> None:
    """Keeps what identifies the version a fresh .part is written from (a strong ETag, else
    Last-Modified), so a resume asks for the rest only of that version (If-Range)."""
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    value = etag if etag and not etag.startswith("W/") else modified
    if value:
        path.write_text(value)
    else:
        path.unlink(missing_ok=True)


def download(url: str, dest: Path, checksums: Iterable[Checksum] = (), *, progress: bool = True,
             attempts: int = 3, timeout: float = 60.0, size: int | None = None, on_mismatch: str = "") -> Verified:
    """Downloads ``url`` to ``dest`` via ``dest.part``, resuming an interrupted transfer (here or in an
    earlier process) with an HTTP Range request, then verifies it. ``dest`` only ever holds a
    verified file."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            _transfer(url, part, progress, timeout, size)
            break
        except _Interrupted as e:
            if attempt == attempts:
                raise DataError(f"download of {url} interrupted ({e}); {part} is kept: run the fetch again to resume") from None
            time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
    _validator_file(part).unlink(missing_ok=True)
    result = verify(part, checksums, url, on_mismatch)
    os.replace(part, dest)
    result.path = dest
    return result


# ---- extraction --------------------------------------------------------------------------------


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_name(name: str, archive: Path) -> PurePosixPath | None:
    """The member's relative path, or None for macOS metadata. Refuses absolute paths, drive
    letters and '..' components (path traversal)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"{archive}: refusing archive member with an absolute path: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"{archive}: refusing archive member that escapes the target folder: {name!r}")
    if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
        return None
    return PurePosixPath(*parts)


def _members(archive: Path) -> Iterator[tuple[str, str, Any]]:
    """(name, kind, handle) for every member; kind is 'file', 'dir' or 'link'/'other' (refused)."""
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                mode = (info.external_attr >> 16) & 0o170000
                kind = "dir" if info.is_dir() else "link" if mode == 0o120000 else "file"
                yield info.filename, kind, (zf, info)
    else:
        with tarfile.open(archive) as tf:
            for m in tf:
                kind = "dir" if m.isdir() else "file" if m.isfile() else "link" if (m.issym() or m.islnk()) else "other"
                yield m.name, kind, (tf, m)


def _open_member(handle: Any):
    container, member = handle
    return container.open(member) if isinstance(container, zipfile.ZipFile) else container.extractfile(member)


def safe_extract(archive: Path, target: Path, members: Iterable[tuple[str, Checksum]] = ()) -> list[Path]:
    """Unpacks ``archive`` into ``target`` (a single top-level folder is stripped). Links, devices,
    absolute paths and '..' members are refused before anything lands in ``target``; published
    member checksums are checked in the temporary folder. Every failure is a DataError: WriteFailed
    where the local disk refused a write, otherwise the archive itself is bad."""
    archive, target = Path(archive), Path(target)
    try:
        entries = [(name, kind) for name, kind, _ in _members(archive)]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive}: not a readable archive ({e})") from None
    checked = []
    for name, kind in entries:
        rel = _safe_name(name, archive)
        if rel is None:
            continue
        if kind in ("link", "other"):
            raise DataError(f"{archive}: refusing archive member {name!r}: links and special files are not extracted")
        checked.append((rel, kind, name))
    files = [rel for rel, kind, _ in checked if kind == "file"]
    if not files:
        raise DataError(f"{archive}: archive holds no files")
    folders = {rel for rel, kind, _ in checked if kind == "dir"} | {p for rel, _, _ in checked for p in rel.parents}
    clash = next((rel for rel in files if rel in folders), None)
    if clash is not None:
        raise DataError(f"{archive}: member {str(clash)!r} is both a file and a folder")
    tops = {rel.parts[0] for rel, _, _ in checked}
    strip = len(tops) == 1 and all(len(rel.parts) > 1 for rel in files)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.unpack-"))
    try:
        written = []
        for rel, kind, name in checked:
            out_rel = PurePosixPath(*rel.parts[1:]) if strip else rel
            if not out_rel.parts:
                continue
            out = tmp.joinpath(*out_rel.parts)
            if kind == "dir":
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            written.append((out_rel, name))
        _copy_members(archive, {name: tmp.joinpath(*rel.parts) for rel, name in written})
        for rel_name, checksum in members:
            path = tmp / rel_name
            if not path.is_file():
                raise DataError(f"{archive}: expected member {rel_name} is missing")
            verify(path, [checksum], f"{archive.name}:{rel_name}")
        target.mkdir(parents=True, exist_ok=True)
        moved = []
        for entry in sorted(tmp.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)
            moved.append(dest)
        return moved
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as e:  # e.g. 'Bad CRC-32'
        raise DataError(f"{archive}: corrupt archive ({e})") from None
    except OSError as e:
        if e.errno is None:  # gzip.BadGzipFile and the like: the archive, not the disk
            raise DataError(f"{archive}: corrupt archive ({e})") from None
        raise WriteFailed(f"cannot unpack {archive} ({e.strerror}); it is kept: fix this and fetch again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_members(archive: Path, outputs: dict[str, Path]) -> None:
    """Streams each regular member named in ``outputs`` to its path (no library path handling)."""
    for name, kind, handle in _members(archive):
        if kind == "file" and name in outputs:
            with _open_member(handle) as src, open(outputs[name], "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)


# ---- fetching a catalog dataset ------------------------------------------------------------------


def dataset_cache(name: str, options: dict[str, Any] | None = None, home: Path | None = None) -> Path:
    return (home or data_home()) / cache_subdir(name, options)


def is_cached(directory: Path) -> bool:
    """Holds files (all a manual download can show); a fetched dataset is complete only with its MANIFEST."""
    return directory.is_dir() and any(not p.name.startswith(".") for p in directory.iterdir())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (POSIX only; advisory): a second process waits here for the
    first. The lock file stays: deleting it while another process waits would let a third one in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def fetch(name: str, options: dict[str, Any] | None = None, *, accept_licence: bool = False, force: bool = False,
          progress: bool = True, home: Path | None = None, info: DatasetInfo | None = None) -> Path:
    """Downloads, verifies and unpacks dataset ``name`` into $SEQREC_DATA; returns its directory.
    All or nothing: the dataset folder gets its files and then its manifest only once every file succeeded."""
    info = info or lookup(name, options)
    home = home or data_home()
    target = home / cache_subdir(name, {**info.options, **(options or {})})
    if info.generic:
        raise DataError(f"dataset {name!r} reads your own files; nothing to fetch: set dataset.path ({info.layout})")
    if (target / MANIFEST).is_file() and not force:
        return target
    if info.manual:
        if is_cached(target):
            return target
        raise DataError(f"{name} cannot be downloaded automatically: {info.manual}. Dataset directory: {target}")
    downloads = home / "downloads"
    # put there by hand after accepting (--force downloads them again, so it needs the acceptance)
    placed = not force and all((downloads / r.download_name).is_file() for r in info.files)
    if info.click_through and not accept_licence and not placed:
        urls = ", ".join(r.url for r in info.files)
        raise DataError(f"{name} is distributed under licence terms you must accept first: {info.click_through}. "
                        f"After accepting them, rerun with --accept-licence to download {urls}; or download the files "
                        f"yourself and put them in {home / 'downloads'} (verified and unpacked by the next fetch)")
    try:
        with contextlib.ExitStack() as locks:
            for remote in info.files:
                locks.enter_context(_locked(downloads / f".{remote.download_name}.lock"))
            if (target / MANIFEST).is_file() and not force:
                return target  # fetched by another process while this one waited for the locks
            records = _fetch_all(info, downloads, target, progress, force)
            manifest = {"dataset": name, "options": info.options, "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "source": info.source, "licence": info.licence, "files": records}
            tmp = target / (MANIFEST + ".tmp")
            tmp.write_text(json.dumps(manifest, indent=2, default=str))
            os.replace(tmp, target / MANIFEST)
    except OSError as e:  # the local disk (full, read-only, no permission): one line, not a traceback
        raise WriteFailed(f"fetching {name} into {target} failed: {e}") from None
    return target


def _fetch_all(info: DatasetInfo, downloads: Path, target: Path, progress: bool, force: bool) -> list[dict[str, Any]]:
    """Unpacks every file into a temporary folder next to ``target``, and moves them into ``target``
    only after all of them succeeded; a failed file leaves ``target`` as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.fetch-"))
    try:
        records = [_fetch_remote(remote, downloads, staging, target, progress, force) for remote in info.files]
        (target / MANIFEST).unlink(missing_ok=True)  # the old manifest must not vouch for a half-replaced folder
        target.mkdir(exist_ok=True)
        for entry in sorted(staging.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)
        for remote in info.files:
            local = downloads / remote.download_name
            if is_archive(remote.filename):
                local.unlink()  # the unpacked files are the cache; the archive's digests stay in the manifest
            else:
                (target / remote.subdir).mkdir(parents=True, exist_ok=True)
                os.replace(local, target / remote.subdir / remote.filename)
        return records
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_remote(remote: Remote, downloads: Path, staging: Path, target: Path, progress: bool,
                  force: bool) -> dict[str, Any]:
    """Downloads (or reuses) and verifies one file; an archive is unpacked into ``staging``."""
    local = downloads / remote.download_name
    if force:
        local.unlink(missing_ok=True)  # --force: download again, whatever lies there
    try:
        result = verify(local, remote.checksums, remote.url, remote.on_mismatch) if local.is_file() else \
            download(remote.url, local, remote.checksums, progress=progress, size=remote.size, on_mismatch=remote.on_mismatch)
    except Unreachable as e:
        raise DataError(f"{e}. Offline? Download {remote.url} on another machine and put it in {downloads} as "
                        f"{remote.download_name} (the next fetch verifies and unpacks it), or unpack it yourself into "
                        f"{target / remote.subdir} and/or set dataset.path") from None
    record = {k: v for k, v in asdict(result).items() if k != "path"}
    record["file"] = remote.filename
    if is_archive(remote.filename):
        try:
            safe_extract(local, staging / remote.subdir, remote.members)
        except WriteFailed:
            raise
        except DataError as e:
            local.unlink(missing_ok=True)  # a bad archive must not pass for a complete download next time
            raise DataError(f"{e}; {local} was deleted: the next fetch downloads it again") from None
    return record
