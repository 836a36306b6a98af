"""What the benchmark knows about each public dataset: domain, reader, official URLs, published
checksums (and where each was published), licence, and whether a licence click-through or a manual
download is needed. `seqrec-data list` prints this table; `seqrec-data fetch` follows it.

Checksums are only ever the values a third party published; every one names its source. Where two
sources disagree, both are listed: a download matching either is accepted with a warning (and the
disagreement is recorded next to the files by `benchmark.data.download`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import DataError

TFDS = "tensorflow/datasets tensorflow_datasets/url_checksums/movielens.txt (sha256, with byte sizes)"
GROUPLENS_MD5 = "GroupLens <archive>.zip.md5 files (as mirrored in eli-osherovich/papers_with_code datasets/movielens/dl_config.py)"
# ml-32m (2024) is newer than that mirror: its GroupLens .md5, as pinned by independent download scripts
# (e.g. pooch known_hash in several public projects); one value, the same everywhere it is quoted.
GROUPLENS_MD5_32M = "GroupLens ml-32m.zip.md5 (as quoted by independent public download scripts)"
DATAREC = "sisinflab/DataRec (datarec/datasets/*, MD5 constants)"
LASTFM_README = "official lastfm-dataset-1K README (MD5 of the extracted files)"


@dataclass(frozen=True)
class Checksum:
    algo: str  # "sha256" or "md5"
    value: str
    source: str  # who published this value


@dataclass(frozen=True)
class Remote:
    """One file to download. Archives (.zip, .tar.*) are unpacked into the dataset directory
    (a single top-level folder is stripped; ``subdir`` puts the contents one level down)."""

    url: str
    checksums: tuple[Checksum, ...] = ()
    size: int | None = None  # bytes, where published
    subdir: str = ""
    members: tuple[tuple[str, Checksum], ...] = ()  # published checksums of files inside the archive
    download_as: str = ""  # name in the shared downloads/ folder where the URL's own name would collide
    on_mismatch: str = ""  # what to do when the file no longer matches (a release its publisher updates)

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def download_name(self) -> str:
        return self.download_as or self.filename


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    domain: str  # news | movie | music | product | generic
    reader: str
    source: str  # home page
    licence: str
    files: tuple[Remote, ...] = ()
    click_through: str = ""  # page where a licence must be accepted before downloading
    manual: str = ""  # no direct download: how to obtain the files
    layout: str = ""  # the native files the reader looks for
    options: dict[str, Any] = field(default_factory=dict)  # reader options implied by the name
    no_checksum: str = ""  # why no published checksum is listed (every entry without one says why)
    citation: str = ""

    @property
    def checksums(self) -> str:
        """The published checksums in a few words, or why there are none."""
        sums = [f"{c.algo} {c.value} ({c.source})" for r in self.files for c in r.checksums]
        sums += [f"{c.algo} of {name} {c.value} ({c.source})" for r in self.files for name, c in r.members]
        return "; ".join(sums) or f"none published: {self.no_checksum or 'see the catalog'}"

    @property
    def generic(self) -> bool:
        return self.domain == "generic"


MOVIELENS_CITATION = "F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015"
# GroupLens updates its "latest" releases in place: a checksum of today's file may not match tomorrow's.
DEVELOPMENT_RELEASE = ("ml-latest-small is a development release GroupLens may update in place: a mismatch may be a "
                       "newer release, not a damaged download. Use a fixed release (ml-1m, ml-20m, ml-25m, ml-32m) "
                       "for published results, or put the files you have in the dataset folder (dataset.path)")


def _grouplens(name: str, sha256: str | None, size: int | None, md5: str | None, md5_source: str = GROUPLENS_MD5) -> DatasetInfo:
    sums = tuple(c for c in (Checksum("sha256", sha256, TFDS) if sha256 else None,
                              Checksum("md5", md5, md5_source) if md5 else None) if c)
    return DatasetInfo(
        name, "movie", "movielens", "https://grouplens.org/datasets/movielens/",
        "GroupLens research licence: non-commercial; cite Harper & Konstan 2015"
        + ("; redistribution under the same terms" if name == "ml-latest-small" else "; no redistribution"),
        files=(Remote(f"https://files.grouplens.org/datasets/movielens/{name}.zip", sums, size,
                      on_mismatch=DEVELOPMENT_RELEASE if name == "ml-latest-small" else ""),),
        layout={"ml-100k": "u.data", "ml-1m": "ratings.dat", "ml-10m": "ratings.dat"}.get(name, "ratings.csv"),
        citation=MOVIELENS_CITATION,
    )


MIND_TERMS = "https://msnews.github.io/ (Microsoft Research License Terms; accept them on the download page)"
EBNERD_TERMS = "https://recsys.eb.dk/ (EB-NeRD terms of use; register and accept them on the download page)"
AMAZON_2023_TERMS = "https://amazon-reviews-2023.github.io/ (McAuley Lab terms; research use only)"
AMAZON_LICENCE = "Amazon review data (McAuley lab): research use only; cite the release's paper"
MIND_BLOB = "https://mind201910small.blob.core.windows.net/release/"
EBNERD_S3 = "https://ebnerd-dataset.s3.eu-west-1.amazonaws.com/"
EBNERD_NO_SUM = ("Ekstra Bladet publishes no checksum for its zips and none was found elsewhere; the fetch records "
                 "the SHA-256 of what it downloaded")
EBNERD_CITATION = "Johannes Kruse et al. EB-NeRD: A Large-Scale Dataset for News Recommendation. RecSys Challenge 2024"
YOUR_FILES = "your own files: nothing is downloaded"
MANUAL_NO_SUM = "no direct download (the files come from a signed-in page) and no checksum published for them"

DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        _grouplens("ml-100k", "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029,
                   "0e33842e24a9c977be4e0107933c0723"),
        _grouplens("ml-1m", "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549,
                   "c4d9eecfca2ab87c1945afe126590906"),
        # ml-10m: GroupLens' .md5 only (TFDS does not list it); ml-32m: likewise, no SHA-256 was published.
        _grouplens("ml-10m", None, None, "ce571fd55effeba0271552578f2648bd"),
        _grouplens("ml-20m", "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198702078,
                   "cd245b17a1ae2cc31bb14903e1204af3"),
        _grouplens("ml-25m", "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261978986,
                   "6b51fb2759a8657d3bfcbfc42b592ada"),
        _grouplens("ml-32m", None, None, "d472be332d4daa821edc399621853b57", GROUPLENS_MD5_32M),
        # A development release: TFDS's value is of the file it saw; GroupLens publishes no .md5 for it.
        _grouplens("ml-latest-small", "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202, None),
        DatasetInfo(
            "mind-small", "news", "mind", "https://msnews.github.io/", "Microsoft Research License Terms (non-commercial research; no redistribution)",
            files=(Remote(MIND_BLOB + "MINDsmall_train.zip", (Checksum("md5", "8ab752c7d11564622d93132be05dcf6b", DATAREC),), subdir="train"),
                   Remote(MIND_BLOB + "MINDsmall_dev.zip", (Checksum("md5", "e3bac5485be8fc7a9934e85e3b78615f", DATAREC),), subdir="dev")),
            click_through=MIND_TERMS, layout="train/behaviors.tsv, dev/behaviors.tsv (or behaviors.tsv)",
            citation="Fangzhao Wu et al. MIND: A Large-scale Dataset for News Recommendation. ACL 2020",
        ),
        DatasetInfo(
            "mind-large", "news", "mind", "https://msnews.github.io/", "Microsoft Research License Terms (non-commercial research; no redistribution)",
            # The unlabelled test split is not fetched: its impressions carry no clicks.
            files=(Remote(MIND_BLOB + "MINDlarge_train.zip", (Checksum("md5", "5be1c8f9a6809092db5fc0ac23d60f72", DATAREC),), subdir="train"),
                   Remote(MIND_BLOB + "MINDlarge_dev.zip", (Checksum("md5", "8f3dd8923172048b0e5980e7ee40841b", DATAREC),), subdir="dev")),
            click_through=MIND_TERMS, layout="train/behaviors.tsv, dev/behaviors.tsv (or behaviors.tsv)",
            citation="Fangzhao Wu et al. MIND: A Large-scale Dataset for News Recommendation. ACL 2020",
        ),
        DatasetInfo(
            "ebnerd-demo", "news", "ebnerd", "https://recsys.eb.dk/", "EB-NeRD terms of use (Ekstra Bladet; research, registration required)",
            files=(Remote(EBNERD_S3 + "ebnerd_demo.zip"),), click_through=EBNERD_TERMS,
            layout="train/ and validation/ with history.parquet + behaviors.parquet (or both files directly)",
            no_checksum=EBNERD_NO_SUM, citation=EBNERD_CITATION,
        ),
        DatasetInfo(
            "ebnerd-small", "news", "ebnerd", "https://recsys.eb.dk/", "EB-NeRD terms of use (Ekstra Bladet; research, registration required)",
            files=(Remote(EBNERD_S3 + "ebnerd_small.zip"),), click_through=EBNERD_TERMS,
            layout="train/ and validation/ with history.parquet + behaviors.parquet (or both files directly)",
            no_checksum=EBNERD_NO_SUM, citation=EBNERD_CITATION,
        ),
        DatasetInfo(
            "globo", "news", "globo", "https://www.kaggle.com/datasets/gspmoreira/news-portal-user-interactions-by-globocom",
            "academic/non-commercial use only (Globo.com); cite Moreira et al. 2018",
            manual="Kaggle requires a signed-in account: download the dataset from the Kaggle page and unpack "
                   "clicks.zip so that clicks_hour_*.csv (or clicks/clicks_hour_*.csv) lie in the dataset directory",
            layout="clicks_hour_*.csv (or clicks/clicks_hour_*.csv)",
            no_checksum=MANUAL_NO_SUM, citation="Gabriel de Souza P. Moreira et al. News Session-Based Recommendations using Deep Neural Networks. DLRS 2018",
        ),
        DatasetInfo(
            "lastfm-1k", "music", "lastfm", "http://ocelma.net/MusicRecommendationDataset/lastfm-1K.html",
            "non-commercial use (distributed with permission of Last.fm)",
            files=(Remote("http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz", members=(
                ("userid-timestamp-artid-artname-traid-traname.tsv", Checksum("md5", "64747b21563e3d2aa95751e0ddc46b68", LASTFM_README)),
                ("userid-profile.tsv", Checksum("md5", "c53608b6b445db201098c1489ea497df", LASTFM_README)),
            )),),
            layout="userid-timestamp-artid-artname-traid-traname.tsv",
            citation="Oscar Celma. Music Recommendation and Discovery in the Long Tail. Springer, 2010",
        ),
        DatasetInfo(
            "diginetica", "product", "diginetica", "https://competitions.codalab.org/competitions/11161",
            "CIKM Cup 2016 terms (research use)",
            manual="the CIKM Cup 2016 data needs a CodaLab sign-in: download dataset-train-diginetica.zip and unpack "
                   "train-item-views.csv into the dataset directory",
            layout="train-item-views.csv",
            no_checksum=MANUAL_NO_SUM, citation="CIKM Cup 2016 Track 2: Personalized E-Commerce Search Challenge (DIGINETICA)",
        ),
        DatasetInfo(
            "yoochoose", "product", "yoochoose", "https://recsys.acm.org/recsys15/challenge/",
            "RecSys Challenge 2015 terms (research use)",
            manual="download yoochoose-data.7z (https://s3-eu-west-1.amazonaws.com/yc-rdata/yoochoose-data.7z; the "
                   "archive is 7-Zip, which Python cannot unpack) and extract yoochoose-clicks.dat with `7z x` into the dataset directory",
            layout="yoochoose-clicks.dat",
            no_checksum="the RecSys Challenge 2015 organisers published no checksum for yoochoose-data.7z",
            citation="David Ben-Shimon et al. RecSys Challenge 2015 and the YOOCHOOSE Dataset. RecSys 2015",
        ),
        DatasetInfo(
            "retailrocket", "product", "retailrocket", "https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset",
            "CC BY-NC-SA 4.0 (Retail Rocket, via Kaggle)",
            manual="Kaggle requires a signed-in account: download the dataset and put events.csv in the dataset directory",
            layout="events.csv",
            no_checksum=MANUAL_NO_SUM, citation="Retail Rocket. Retailrocket recommender system dataset. Kaggle, 2017",
        ),
        DatasetInfo(
            "otto", "product", "otto", "https://github.com/otto-de/recsys-dataset", "CC BY 4.0 (OTTO GmbH & Co KG)",
            manual="Kaggle requires a signed-in account: download the OTTO dataset (kaggle.com/datasets/otto/recsys-dataset) "
                   "and put train.jsonl in the dataset directory",
            layout="train.jsonl (one session per line: session, events of aid, ts in ms, type)",
            no_checksum="OTTO publishes no checksum for the Kaggle files",
            citation="Philipp Normann, Sophie Baumeister, Timo Wilm. OTTO Recommender Systems Dataset. GitHub otto-de/recsys-dataset, 2023",
        ),
        DatasetInfo("sequences", "generic", "sequences", "S3-Rec / ICLRec data files", "as the files you bring",
                    layout="one user per line: `user item item ...` (set dataset.path to the file or its folder)", no_checksum=YOUR_FILES),
        DatasetInfo("pairs", "generic", "pairs", "SASRec data files", "as the files you bring",
                    layout="one `user item` per line in order (set dataset.path)", no_checksum=YOUR_FILES),
        DatasetInfo("csv", "generic", "csv", "any CSV/TSV/parquet", "as the files you bring",
                    layout="a table; name its columns with dataset.columns (set dataset.path)", no_checksum=YOUR_FILES),
        DatasetInfo("recbole", "generic", "recbole", "https://recbole.io/atomic_files.html", "as the files you bring",
                    layout="a RecBole atomic <name>.inter file (set dataset.path)", no_checksum=YOUR_FILES),
    ]
}

# ---- Amazon: one name per category, four releases chosen with dataset.release ----------------------

AMAZON_RELEASES: dict[str, str] = {  # release -> native file name pattern ({c} = category)
    "2014": "ratings_{c}.csv",
    "2014-5core": "reviews_{c}_5.json.gz",
    "2018": "{c}.csv",
    "2018-5core": "{c}_5.json.gz",
    "2023": "{c}.csv.gz",
    "2023-5core": "{c}.csv.gz",
}
AMAZON_URLS = {
    "2014": "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/",
    "2014-5core": "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/",
    "2018": "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2/categoryFilesSmall/",
    "2018-5core": "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2/categoryFilesSmall/",
    "2023": "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/benchmark/0core/rating_only/",
    "2023-5core": "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/benchmark/5core/rating_only/",
}
AMAZON_PAGES = {
    "2014": "http://jmcauley.ucsd.edu/data/amazon/index_2014.html",
    "2018": "https://nijianmo.github.io/amazon/",
    "2023": "https://amazon-reviews-2023.github.io/",
}
AMAZON_CITATIONS = {
    "2014": "Julian McAuley et al. Image-based Recommendations on Styles and Substitutes. SIGIR 2015",
    "2018": "Jianmo Ni, Jiacheng Li, Julian McAuley. Justifying Recommendations using Distantly-Labeled Reviews and Fine-Grained Aspects. EMNLP 2019",
    "2023": "Yupeng Hou et al. Bridging Language and Items for Retrieval and Recommendation. arXiv:2403.03952, 2024",
}
AMAZON_SUMS: dict[tuple[str, str], tuple[Checksum, ...]] = {
    ("2018", "Toys_and_Games"): (Checksum("md5", "3e3f0c05d880403de6601f22398ccd78", DATAREC),),
    ("2018", "Books"): (Checksum("md5", "c6cb0fd6e4322d3523e9afd87d5ed9dc", DATAREC),),
    ("2018", "Sports_and_Outdoors"): (Checksum("md5", "1ed3d6c7a89f3c78fa260b2419753785", DATAREC),),
    ("2018", "Clothing_Shoes_and_Jewelry"): (Checksum("md5", "27b4184d3d4b5e443d31dc608badf927", DATAREC),),
    ("2018", "Video_Games"): (Checksum("md5", "feecdbf6bf247e54d2a572e2be503515", DATAREC),),
    ("2023", "Beauty_and_Personal_Care"): (Checksum("md5", "2e7f69fa6d738f1ee7756d8a46ad7930", DATAREC),),
}
# Short names used in the sequential-recommendation literature (2014 category names).
AMAZON_ALIASES = {"beauty": "Beauty", "sports": "Sports_and_Outdoors", "toys": "Toys_and_Games",
                  "games": "Video_Games", "video-games": "Video_Games", "movies": "Movies_and_TV", "cds": "CDs_and_Vinyl"}
DEFAULT_AMAZON_RELEASE = "2014-5core"
# A category becomes part of a file name, a URL and a folder: no '/', '..', spaces or other specials.
SAFE_CATEGORY = re.compile(r"[A-Za-z0-9_&,-]+")


def _check_category(what: str, value: str) -> None:
    if not SAFE_CATEGORY.fullmatch(value):
        raise DataError(f"{what} {value!r}: an Amazon category name may only hold letters, digits and _ - & ,")


def amazon_category(slug: str) -> str:
    """'beauty' -> 'Beauty', 'toys-and-games' -> 'Toys_and_Games', 'All_Beauty' stays."""
    if slug in AMAZON_ALIASES:
        return AMAZON_ALIASES[slug]
    if "_" in slug or slug[:1].isupper():
        return slug
    return "_".join(w if w == "and" else w.capitalize() for w in slug.split("-"))


def amazon_file(category: str, release: str) -> str:
    if release not in AMAZON_RELEASES:
        raise DataError(f"dataset.release={release!r} is unknown; choose one of {', '.join(AMAZON_RELEASES)}")
    return AMAZON_RELEASES[release].format(c=category)


def _amazon(name: str, options: dict[str, Any]) -> DatasetInfo:
    _check_category("dataset", name)
    category = str(options.get("category") or amazon_category(name.split("-", 1)[1]))
    _check_category("dataset.category", category)
    release = str(options.get("release") or DEFAULT_AMAZON_RELEASE)
    filename = amazon_file(category, release)
    year = release[:4]
    # Releases with the same file pattern (2023, 2023-5core) would share downloads/<name>: prefix the release.
    shared = sum(pattern == AMAZON_RELEASES[release] for pattern in AMAZON_RELEASES.values()) > 1
    return DatasetInfo(
        name, "product", "amazon", AMAZON_PAGES[year], AMAZON_LICENCE,
        files=(Remote(AMAZON_URLS[release] + filename, AMAZON_SUMS.get((release, category), ()),
                      download_as=f"{release}_{filename}" if shared else ""),),
        click_through=AMAZON_2023_TERMS if year == "2023" else "",
        layout=f"{filename} (release {release})",
        options={"category": category, "release": release},
        no_checksum="the McAuley lab publishes none; DataRec lists MD5s of a few 2018 and 2023 files only",
        citation=AMAZON_CITATIONS[year],
    )


def lookup(name: str, options: dict[str, Any] | None = None) -> DatasetInfo:
    """The catalog entry of ``name`` (``amazon-<category>`` for any Amazon category)."""
    if name in DATASETS:
        return DATASETS[name]
    if name.startswith("amazon-") and len(name) > len("amazon-"):
        return _amazon(name, dict(options or {}))
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}, amazon-<category> "
                    "(`seqrec-data list` shows them all)")


def known(name: str) -> bool:
    return name in DATASETS or (name.startswith("amazon-") and SAFE_CATEGORY.fullmatch(name[len("amazon-"):]) is not None)


def cache_subdir(name: str, options: dict[str, Any] | None = None) -> Path:
    """Where under $SEQREC_DATA the files of ``name`` live. Amazon releases share file names
    (2018 and 2023 both ship <Category>.csv), so each release gets its own folder."""
    if name.startswith("amazon-") and known(name):
        release = str((options or {}).get("release") or DEFAULT_AMAZON_RELEASE)
        return Path(name) / re.sub(r"[^0-9a-z-]", "_", release)
    return Path(name)


def fetch_hint(name: str, directory: Path, options: dict[str, Any] | None = None) -> str:
    """The sentence that tells a user how to get the files of ``name`` into ``directory``."""
    if not known(name):
        return f"put the files in {directory} or set dataset.path"
    info = lookup(name, options)
    if info.generic:
        return f"dataset {name!r} reads your own files: set dataset.path (expected: {info.layout})"
    if info.manual:
        return f"{info.manual} (dataset directory: {directory}; or set dataset.path)"
    extra = ""
    if name.startswith("amazon-"):
        if info.options["release"] != DEFAULT_AMAZON_RELEASE:
            extra += f" release={info.options['release']}"
        if info.options["category"] != amazon_category(name.split("-", 1)[1]):
            extra += f" category={info.options['category']}"
    if info.click_through:
        how = f"accept the licence at {info.click_through.split(' ')[0]} and run `seqrec-data fetch {name}{extra} --accept-licence`"
    else:
        how = f"run `seqrec-data fetch {name}{extra}`"
    return f"{how}, or put the files ({info.layout}) in {directory}, or set dataset.path"
