"""Downloads against a local HTTP server on 127.0.0.1 (never the network): checksums, resume,
safe extraction, and the `seqrec-data` command."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
    the first full response (then drops the connection), to simulate an interrupted download."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
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
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if not rng and self.path in outer.cut:
                    payload = payload[: outer.cut.pop(self.path)]
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
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
    assert [p.name for p in (tmp_path / "home" / "downloads").iterdir()] == []


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
