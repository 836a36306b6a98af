"""Downloads against a local HTTP server on 127.0.0.1 (never the network): checksums, resume,
safe extraction, and the `seqrec-data` command."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import resource
import shutil
import signal
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmark.data import cli
from benchmark.data.catalog import Checksum, DatasetInfo, Remote
from benchmark.data.download import MANIFEST, ChecksumWarning, download, fetch, safe_extract
from benchmark.errors import DataError

RATINGS = "userId,movieId,rating,timestamp\r\n" + "".join(f"{u},{i},4.0,{1000 + 60 * i}\r\n" for u in range(1, 9) for i in range(1, 7))


def zip_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


FIXTURE = zip_bytes({"ml-fixture/ratings.csv": RATINGS, "ml-fixture/README.txt": "made-up ratings\n"})


class Server:
    """Serves ``files`` (path -> bytes) with Range support; ``cut[path] = n`` sends only n bytes of
    the first full response (then drops the connection), to simulate an interrupted download;
    ``fail[path] = code`` answers other requests with that HTTP error; paths in ``no_length`` get no
    Content-Length; paths in ``slow`` send half, set ``sending`` and pause before the rest; 416
    answers carry ``Content-Range: bytes */N`` unless ``total_in_416`` is False; ``validators[path]``
    (headers such as ETag, Last-Modified) are sent with every answer, and a Range request whose
    If-Range matches none of them gets the whole file (200), as HTTP says."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.no_length: set[str] = set()
        self.slow: set[str] = set()
        self.sending = threading.Event()
        self.total_in_416 = True
        self.validators: dict[str, dict[str, str]] = {}
        self.if_range: list[str | None] = []
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                cutting = not rng and self.path in outer.cut
                if self.path in outer.fail and not cutting:  # a cut response comes first, then the errors
                    self.send_error(outer.fail[self.path])
                    return
                validators = outer.validators.get(self.path, {})
                outer.if_range.append(self.headers.get("If-Range"))
                if rng and self.headers.get("If-Range") and self.headers["If-Range"] not in validators.values():
                    rng = None  # the file changed since the client's part: all of it
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_response(416)
                    if outer.total_in_416:
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                for name, value in validators.items():
                    self.send_header(name, value)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                if self.path not in outer.no_length:
                    self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if cutting:
                    payload = payload[: outer.cut.pop(self.path)]
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if self.path in outer.slow:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    outer.sending.set()
                    time.sleep(0.3)
                    payload = payload[len(payload) // 2:]
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        s.files["/ml-fixture.zip"] = FIXTURE
        yield s


def sha(data: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(data).hexdigest(), "test fixture")


def md5(data: bytes) -> Checksum:
    return Checksum("md5", hashlib.md5(data).hexdigest(), "another publisher")


def fixture_info(url: str, checksums: tuple[Checksum, ...], **kw) -> DatasetInfo:
    return DatasetInfo("ml-fixture", "movie", "movielens", "test", "made up", files=(Remote(url, checksums),), **kw)


def test_download_verifies_checksum(server, tmp_path):
    result = download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [sha(FIXTURE)], progress=False)
    assert (tmp_path / "a.zip").read_bytes() == FIXTURE and result.matched == [sha(FIXTURE)]
    assert not (tmp_path / "a.zip.part").exists()


def test_checksum_mismatch_is_an_error_and_leaves_no_file(server, tmp_path):
    wrong = Checksum("sha256", "0" * 64, "wrong publisher")
    with pytest.raises(DataError, match="checksum mismatch.*wrong publisher"):
        download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [wrong], progress=False)
    assert list(tmp_path.iterdir()) == []
    info = fixture_info(server.url + "/ml-fixture.zip", (wrong,))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("ml-fixture", info=info, home=tmp_path / "home", progress=False)
    assert not (tmp_path / "home" / "ml-fixture").exists()
    assert [p.name for p in (tmp_path / "home" / "downloads").iterdir() if not p.name.startswith(".")] == []  # but locks


def test_publishers_disagreeing_warns_and_accepts(server, tmp_path):
    with pytest.warns(ChecksumWarning, match="disagree"):
        result = download(server.url + "/ml-fixture.zip", tmp_path / "a.zip",
                          [sha(FIXTURE), Checksum("md5", "1" * 32, "stale mirror")], progress=False)
    assert [c.source for c in result.disagreeing] == ["stale mirror"]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.cut["/ml-fixture.zip"] = len(FIXTURE) // 3
    download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [sha(FIXTURE)], progress=False)
    assert (tmp_path / "a.zip").read_bytes() == FIXTURE
    assert server.requests == [("/ml-fixture.zip", None), ("/ml-fixture.zip", f"bytes={len(FIXTURE) // 3}-")]


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    (tmp_path / "a.zip.part").write_bytes(FIXTURE[:100])
    download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [md5(FIXTURE)], progress=False)
    assert (tmp_path / "a.zip").read_bytes() == FIXTURE and server.requests == [("/ml-fixture.zip", "bytes=100-")]


@pytest.mark.parametrize("validators", [
    {"ETag": '"v1"'}, {"ETag": 'W/"weak"', "Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT"},
], ids=["etag", "last-modified"])
def test_a_partial_file_of_an_older_upstream_version_is_not_resumed(server, tmp_path, validators):
    """The .part was cut short; upstream then published a new file. The resume asks for the rest only
    if the file is unchanged (If-Range), so the new version is downloaded whole, not spliced on."""
    new = zip_bytes({"ml-fixture/ratings.csv": RATINGS + "9,9,5.0,1100000000\n", "ml-fixture/README.txt": "v2\n"})
    server.validators["/ml-fixture.zip"] = validators
    server.cut["/ml-fixture.zip"] = len(FIXTURE) // 3
    with pytest.raises(DataError, match="interrupted"):
        download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [sha(FIXTURE)], progress=False, attempts=1)
    assert (tmp_path / "a.zip.part").stat().st_size == len(FIXTURE) // 3
    sent_validator = validators.get("Last-Modified", validators["ETag"])  # a weak ETag cannot be used
    # Unchanged upstream: resumed from where it stopped, on the condition it is still that version.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for kept in tmp_path.glob("a.zip.part*"):  # the part and what the download keeps beside it
        (resumed / kept.name).write_bytes(kept.read_bytes())
    download(server.url + "/ml-fixture.zip", resumed / "a.zip", [sha(FIXTURE)], progress=False)
    assert (resumed / "a.zip").read_bytes() == FIXTURE and server.if_range[-1] == sent_validator
    assert server.requests[-1] == ("/ml-fixture.zip", f"bytes={len(FIXTURE) // 3}-")
    # Changed upstream: the new version whole.
    server.files["/ml-fixture.zip"] = new
    server.validators["/ml-fixture.zip"] = {name: value.replace("v1", "v2").replace("10:00", "11:00")
                                            for name, value in validators.items()}
    download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [sha(new)], progress=False)
    assert (tmp_path / "a.zip").read_bytes() == new and server.if_range[-1] == sent_validator
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "resumed"]  # no .part, no .if-range left


def test_fetch_unpacks_strips_top_folder_and_records(server, tmp_path):
    info = fixture_info(server.url + "/ml-fixture.zip", (sha(FIXTURE), md5(FIXTURE)))
    target = fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    assert target == tmp_path / "ml-fixture" and (target / "ratings.csv").read_bytes() == RATINGS.encode()
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["files"][0]["sha256"] == hashlib.sha256(FIXTURE).hexdigest()
    assert not (tmp_path / "downloads" / "ml-fixture.zip").exists()
    n = len(server.requests)
    assert fetch("ml-fixture", info=info, home=tmp_path, progress=False) == target  # cached: no request
    assert len(server.requests) == n


def test_archive_with_parent_members_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_bytes({"data/ok.csv": "a", "data/../../evil.txt": "x"}))
    with pytest.raises(DataError, match="escapes the target folder"):
        safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()
    absolute = tmp_path / "abs.zip"
    absolute.write_bytes(zip_bytes({"/etc/evil": "x"}))
    with pytest.raises(DataError, match="absolute path"):
        safe_extract(absolute, tmp_path / "out")


def test_tar_with_symlink_is_refused(tmp_path):
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        data = b"x"
        info = tarfile.TarInfo("d/file.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("d/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DataError, match="links and special files"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_member_checksum_from_readme_is_checked(tmp_path):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in (("top/log.tsv", b"u\t1\n"), ("top/profile.tsv", b"p\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    safe_extract(path, tmp_path / "ok", [("log.tsv", md5(b"u\t1\n"))])
    assert (tmp_path / "ok" / "log.tsv").read_bytes() == b"u\t1\n"
    with pytest.raises(DataError, match="checksum mismatch"):
        safe_extract(path, tmp_path / "bad", [("log.tsv", Checksum("md5", "2" * 32, "readme"))])
    assert not (tmp_path / "bad").exists()


def test_offline_error_names_url_and_where_to_put_files(tmp_path):
    info = fixture_info("http://127.0.0.1:9/ml-fixture.zip", ())  # port 9: nothing listens
    with pytest.raises(DataError) as err:
        fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    msg = str(err.value)
    assert "http://127.0.0.1:9/ml-fixture.zip" in msg and str(tmp_path / "downloads") in msg


def test_licence_click_through_needs_acceptance_or_files_placed_by_hand(server, tmp_path):
    info = fixture_info(server.url + "/ml-fixture.zip", (sha(FIXTURE),), click_through="https://example.org/terms")
    with pytest.raises(DataError, match="https://example.org/terms.*--accept-licence"):
        fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    assert server.requests == []
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "ml-fixture.zip").write_bytes(FIXTURE)  # downloaded by hand after accepting
    assert (fetch("ml-fixture", info=info, home=tmp_path, progress=False) / "ratings.csv").is_file()
    assert server.requests == []


def test_cli_fetch_then_stats_and_list(server, tmp_path, monkeypatch, capsys):
    from benchmark.data import catalog

    info = fixture_info(server.url + "/ml-fixture.zip", (sha(FIXTURE),))
    monkeypatch.setitem(catalog.DATASETS, "ml-1m", DatasetInfo(**{**info.__dict__, "name": "ml-1m"}))
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path))
    assert cli.main(["fetch", "ml-1m", "--quiet"]) == 0
    assert (tmp_path / "ml-1m" / "ratings.csv").is_file()
    capsys.readouterr()
    assert cli.main(["stats", "ml-1m", "user_core=1", "item_core=1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    stats = json.loads(out[-1])
    assert stats["raw"]["users"] == 8 and stats["raw"]["items"] == 6 and stats["raw"]["interactions"] == 48
    assert stats["raw"]["avg_len"] == 6.0 and stats["preprocessed"]["density"] == 1.0
    assert out[0].startswith("ml-1m") and "raw" in out[2]
    assert cli.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "ml-1m" in listing and "cached (verified)" in listing and "mind-small" in listing and "licence click-through" in listing


def test_cli_stats_reads_dataset_path_and_names_missing_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path / "empty"))
    (tmp_path / "Beauty.txt").write_text("1 5 6 7\n2 6 5 7\n")
    assert cli.main(["stats", "sequences", "--path", str(tmp_path / "Beauty.txt")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["raw"]["interactions"] == 6
    assert cli.main(["stats", "no-such-set"]) == 2
    assert "unknown dataset 'no-such-set'" in capsys.readouterr().err
    assert cli.main(["stats", "ml-20m"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty" / "ml-20m") in err and "seqrec-data fetch ml-20m" in err


# ---- failures: corrupt archives, concurrent fetches, partial fetches, full disks, bad keys ----------


def one_line_error(capsys) -> str:
    """The error: the last line on stderr, and the only one (lines before it are notes and warnings)."""
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("seqrec-data: error:") and sum(line.startswith("seqrec-data: error:") for line in lines) == 1
    return lines[-1]


def bad_crc_zip() -> bytes:
    """A zip whose listing reads fine but whose member fails its CRC-32 when copied."""
    return zip_bytes({"ml-fixture/ratings.csv": RATINGS}).replace(b"userId", b"userXd", 1)


def test_corrupt_archive_without_checksum_is_deleted_so_the_next_fetch_downloads_again(server, tmp_path):
    server.files["/ml-fixture.zip"] = bad_crc_zip()
    info = fixture_info(server.url + "/ml-fixture.zip", ())
    with pytest.warns(ChecksumWarning), pytest.raises(DataError, match=r"ml-fixture.zip: corrupt archive \(Bad CRC-32") as err:
        fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    assert "\n" not in str(err.value) and "the next fetch downloads it again" in str(err.value)
    assert not (tmp_path / "downloads" / "ml-fixture.zip").exists() and not (tmp_path / "ml-fixture").exists()
    server.files["/ml-fixture.zip"] = FIXTURE  # fixed upstream (or a clean transfer this time)
    with pytest.warns(ChecksumWarning):
        target = fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    assert (target / "ratings.csv").read_bytes() == RATINGS.encode() and len(server.requests) == 2


def test_force_downloads_again_over_a_file_already_in_downloads(server, tmp_path):
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "ml-fixture.zip").write_bytes(b"an old, broken copy")
    info = fixture_info(server.url + "/ml-fixture.zip", ())
    with pytest.warns(ChecksumWarning):
        target = fetch("ml-fixture", info=info, home=tmp_path, progress=False, force=True)
    assert (target / "ratings.csv").read_bytes() == RATINGS.encode() and server.requests == [("/ml-fixture.zip", None)]


def test_member_that_is_a_file_and_a_folder_is_a_data_error(tmp_path):
    clash = tmp_path / "clash.zip"
    clash.write_bytes(zip_bytes({"t/a": "x", "t/a/b": "y"}))
    with pytest.raises(DataError, match="clash.zip: member 't/a' is both a file and a folder"):
        safe_extract(clash, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_416_on_resume_checks_the_total_size(server, tmp_path):
    n = len(FIXTURE)
    (tmp_path / "a.zip.part").write_bytes(FIXTURE)  # complete already: 416 with the same total
    download(server.url + "/ml-fixture.zip", tmp_path / "a.zip", [sha(FIXTURE)], progress=False)
    assert (tmp_path / "a.zip").read_bytes() == FIXTURE and server.requests == [("/ml-fixture.zip", f"bytes={n}-")]
    server.requests.clear()
    (tmp_path / "b.zip.part").write_bytes(FIXTURE + b"tail of another file")  # longer than the file: start over
    with pytest.warns(ChecksumWarning):
        download(server.url + "/ml-fixture.zip", tmp_path / "b.zip", [], progress=False)
    assert (tmp_path / "b.zip").read_bytes() == FIXTURE
    assert server.requests == [("/ml-fixture.zip", f"bytes={n + 20}-"), ("/ml-fixture.zip", None)]
    server.total_in_416 = False  # no total to compare with: start over
    (tmp_path / "c.zip.part").write_bytes(FIXTURE + b"!")
    download(server.url + "/ml-fixture.zip", tmp_path / "c.zip", [sha(FIXTURE)], progress=False)
    assert (tmp_path / "c.zip").read_bytes() == FIXTURE


def test_amazon_releases_with_the_same_file_name_do_not_share_a_download(server, tmp_path, monkeypatch):
    from benchmark.data import catalog

    monkeypatch.setitem(catalog.AMAZON_URLS, "2023", server.url + "/0core/")
    monkeypatch.setitem(catalog.AMAZON_URLS, "2023-5core", server.url + "/5core/")
    server.files["/0core/Beauty.csv.gz"] = b"A" * 1000
    server.files["/5core/Beauty.csv.gz"] = b"B" * 600
    server.cut["/0core/Beauty.csv.gz"], server.fail["/0core/Beauty.csv.gz"] = 300, 500  # interrupted, then down
    with pytest.raises(DataError, match="HTTP 500"):
        fetch("amazon-beauty", {"release": "2023"}, accept_licence=True, home=tmp_path, progress=False)
    with pytest.warns(ChecksumWarning):
        target = fetch("amazon-beauty", {"release": "2023-5core"}, accept_licence=True, home=tmp_path, progress=False)
    assert (target / "Beauty.csv.gz").read_bytes() == b"B" * 600  # not 300 bytes of the 0-core file + the rest
    assert server.requests[-1] == ("/5core/Beauty.csv.gz", None)
    assert catalog.lookup("amazon-beauty").files[0].download_name == "reviews_Beauty_5.json.gz"  # no collision: unchanged


def test_two_concurrent_fetches_download_once(server, tmp_path):
    server.slow.add("/ml-fixture.zip")
    info = fixture_info(server.url + "/ml-fixture.zip", (sha(FIXTURE),))
    results, errors = [], []

    def run():
        try:
            results.append(fetch("ml-fixture", info=info, home=tmp_path, progress=False))
        except Exception as e:  # reported below
            errors.append(e)

    first = threading.Thread(target=run)
    first.start()
    assert server.sending.wait(5)  # the first fetch is mid-transfer
    second = threading.Thread(target=run)
    second.start()
    first.join(10)
    second.join(10)
    assert errors == [] and results == [tmp_path / "ml-fixture"] * 2
    assert server.requests == [("/ml-fixture.zip", None)]  # the second waited, then found the dataset
    assert (tmp_path / "ml-fixture" / "ratings.csv").read_bytes() == RATINGS.encode()


def test_fetch_is_all_or_nothing(server, tmp_path, monkeypatch, capsys):
    from benchmark.data import catalog

    train, dev = zip_bytes({"MINDsmall_train/behaviors.tsv": "train\n"}), zip_bytes({"MINDsmall_dev/behaviors.tsv": "dev\n"})
    server.files.update({"/MINDsmall_train.zip": train, "/MINDsmall_dev.zip": dev})
    server.fail["/MINDsmall_dev.zip"] = 500
    info = DatasetInfo("mind-small", "news", "mind", "test", "made up", click_through="https://example.org/terms", files=(
        Remote(server.url + "/MINDsmall_train.zip", (md5(train),), subdir="train"),
        Remote(server.url + "/MINDsmall_dev.zip", (md5(dev),), subdir="dev")))
    monkeypatch.setitem(catalog.DATASETS, "mind-small", info)
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path))
    assert cli.main(["fetch", "mind-small", "--accept-licence", "--quiet"]) == 2
    assert "HTTP 500" in one_line_error(capsys) and not (tmp_path / "mind-small" / "train").exists()
    assert (tmp_path / "downloads" / "MINDsmall_train.zip").is_file()  # verified: kept for the next fetch
    assert cli.main(["list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("mind-small"))
    assert row.endswith("not cached")
    del server.fail["/MINDsmall_dev.zip"]
    server.requests.clear()
    assert cli.main(["fetch", "mind-small", "--accept-licence", "--quiet"]) == 0
    assert server.requests == [("/MINDsmall_dev.zip", None)]
    target = tmp_path / "mind-small"
    assert (target / "train" / "behaviors.tsv").is_file() and (target / "dev" / "behaviors.tsv").is_file()
    assert (target / MANIFEST).is_file() and list(tmp_path.glob(".mind-small.*")) == []


@contextlib.contextmanager
def file_size_limit(limit: int):
    """A real EFBIG ('File too large') for writes past ``limit`` bytes, as a full disk would fail."""
    old, handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def test_disk_errors_are_one_line_and_keep_what_was_downloaded(server, tmp_path, monkeypatch, capsys):
    from benchmark.data import catalog

    big = zip_bytes({"ml-1m/ratings.csv": RATINGS, "ml-1m/blob.bin": random.Random(0).randbytes(1 << 18)})
    server.files["/ml-1m.zip"] = big
    monkeypatch.setitem(catalog.DATASETS, "ml-1m", fixture_info(server.url + "/ml-1m.zip", (sha(big),)))
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path))
    with file_size_limit(1 << 16):
        assert cli.main(["fetch", "ml-1m", "--quiet"]) == 2  # writing the download fails
    assert "ml-1m.zip.part" in (err := one_line_error(capsys)) and "File too large" in err
    assert (tmp_path / "downloads" / "ml-1m.zip.part").stat().st_size == 1 << 16
    assert cli.main(["fetch", "ml-1m", "--quiet"]) == 0
    assert server.requests[-1] == ("/ml-1m.zip", f"bytes={1 << 16}-")  # resumed

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:  # small archive, large member
        zf.writestr("ml-1m/ratings.csv", RATINGS + "9,9,4.0,1000\r\n" * 20000)
    server.files["/ml-1m.zip"] = small = buf.getvalue()
    monkeypatch.setitem(catalog.DATASETS, "ml-1m", fixture_info(server.url + "/ml-1m.zip", (sha(small),)))
    server.requests.clear()
    shutil.rmtree(tmp_path / "ml-1m")
    with file_size_limit(1 << 16):
        assert cli.main(["fetch", "ml-1m", "--quiet"]) == 2  # unpacking fails
    assert "cannot unpack" in (err := one_line_error(capsys)) and "File too large" in err
    assert (tmp_path / "downloads" / "ml-1m.zip").read_bytes() == small  # verified download kept
    assert cli.main(["fetch", "ml-1m", "--quiet"]) == 0 and len(server.requests) == 1
    assert (tmp_path / "ml-1m" / "ratings.csv").stat().st_size > 1 << 16


def test_cut_short_response_without_length_resumes_when_the_size_is_known(server, tmp_path):
    server.no_length.add("/ml-fixture.zip")
    server.cut["/ml-fixture.zip"] = 100
    info = DatasetInfo("ml-fixture", "movie", "movielens", "test", "made up",
                       files=(Remote(server.url + "/ml-fixture.zip", size=len(FIXTURE)),))
    with pytest.warns(ChecksumWarning):
        target = fetch("ml-fixture", info=info, home=tmp_path, progress=False)
    assert (target / "ratings.csv").read_bytes() == RATINGS.encode()
    assert server.requests == [("/ml-fixture.zip", None), ("/ml-fixture.zip", "bytes=100-")]


@pytest.fixture
def amazon_here(server, monkeypatch):
    """Every Amazon release URL points at the local server (nothing leaves the machine)."""
    from benchmark.data import catalog

    for release in catalog.AMAZON_URLS:
        monkeypatch.setitem(catalog.AMAZON_URLS, release, server.url + "/")
    return server


def test_unknown_dataset_key_is_an_error_naming_it(amazon_here, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path))
    assert cli.main(["fetch", "amazon-beauty", "releas=2018", "--quiet"]) == 2
    err = one_line_error(capsys)
    assert "unknown key dataset.releas;" in err and "category, release" in err and amazon_here.requests == []
    assert cli.main(["stats", "ml-1m", "user_cor=1"]) == 2
    assert "unknown key dataset.user_cor;" in one_line_error(capsys)


def test_amazon_category_must_be_a_plain_name(amazon_here, tmp_path, monkeypatch, capsys):
    from benchmark.data.catalog import lookup

    monkeypatch.setenv("SEQREC_DATA", str(tmp_path / "home"))
    assert cli.main(["fetch", "amazon-../../../etc", "--quiet"]) == 2
    assert "'amazon-../../../etc': an Amazon category name may only hold" in one_line_error(capsys)
    with pytest.raises(DataError, match="dataset.category '../x'"):
        lookup("amazon-beauty", {"category": "../x"})
    assert amazon_here.requests == [] and list(tmp_path.iterdir()) == []
    assert lookup("amazon-clothing", {"category": "Clothing_Shoes_and_Jewelry", "release": "2018"}).files


# ---- issue 23: catalog entries, checksums and their reasons, list and show -------------------------

def test_movielens_10m_25m_32m_entries_carry_published_checksums_and_configs():
    from benchmark.data.catalog import GROUPLENS_MD5, TFDS, lookup

    sums = {name: {(c.algo, c.value, c.source) for c in lookup(name).files[0].checksums} for name in ("ml-10m", "ml-25m", "ml-32m")}
    assert ("md5", "ce571fd55effeba0271552578f2648bd", GROUPLENS_MD5) in sums["ml-10m"]
    assert ("sha256", "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", TFDS) in sums["ml-25m"]
    assert ("md5", "d472be332d4daa821edc399621853b57") in {s[:2] for s in sums["ml-32m"]}
    assert lookup("ml-10m").layout == "ratings.dat" and lookup("ml-32m").layout == "ratings.csv"
    for name in ("ml-10m", "ml-25m", "ml-32m", "otto", "amazon-books"):
        assert cli.dataset_config(name)["name"] == name


def test_every_entry_without_a_published_checksum_says_why(capsys):
    from benchmark.data.catalog import DATASETS, lookup

    for info in [*DATASETS.values(), lookup("amazon-beauty")]:
        if not any(r.checksums or r.members for r in info.files):
            assert info.no_checksum, info.name
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "ebnerd-demo: Ekstra Bladet publishes no checksum" in out and "otto: OTTO publishes no checksum" in out


def test_show_gives_files_size_checksum_licence_and_citation(capsys):
    assert cli.main(["show", "ml-25m"]) == 0
    out = capsys.readouterr().out
    for text in ("ratings.csv", "ml-25m.zip (261,978,986 bytes)", "sha256 8b21cfb7", "GroupLens research licence",
                 "Harper and Joseph A. Konstan", "status:"):
        assert text in out
    assert cli.main(["show", "ml-latest-small"]) == 0
    assert "development release" in capsys.readouterr().out
    assert cli.main(["show", "sequences"]) == 0 and "your files (dataset.path)" in capsys.readouterr().out
    assert cli.main(["show", "no-such-set"]) == 2


def test_a_development_release_mismatch_says_what_to_do(server, tmp_path):
    from benchmark.data.catalog import DEVELOPMENT_RELEASE

    wrong = Checksum("sha256", "0" * 64, "an older snapshot")
    info = DatasetInfo("ml-fixture", "movie", "movielens", "test", "made up",
                       files=(Remote(server.url + "/ml-fixture.zip", (wrong,), on_mismatch=DEVELOPMENT_RELEASE),))
    with pytest.raises(DataError, match="development release GroupLens may update in place.*dataset.path"):
        fetch("ml-fixture", info=info, home=tmp_path / "home", progress=False)
