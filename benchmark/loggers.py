"""Experiment trackers: ``logger=none`` (the default) or ``logger=wandb``.

The run record on disk is the source of truth; a tracker is a mirror of it and never fails a run:
any wandb error (not installed, unreachable, quota) is logged as a warning and the run goes on.

Where wandb writes. wandb keeps its run directory open until ``finish()``, but the record directory
only appears at the very end, by an atomic rename of a temp directory. So during the run wandb
writes into the hidden sibling ``.<run>.wandb/``; after the record's files are written, the logger
logs the test metrics and the per-user table, finishes wandb and moves wandb's run directories
into the temp record as ``wandb/``, and only then is the record renamed into place: a complete
record holds its wandb run (``<run>/wandb/offline-run-*``, upload later with ``wandb sync``). A run
killed before that leaves only the hidden directory, which the next attempt of the run replaces.
With ``trainer.resume=true`` the next attempt continues the same wandb run (its id is kept beside
the checkpoint) and logs the epochs the checkpoint restored first, so the run shows the whole
history; online, wandb resumes the killed attempt's run (``resume="allow"``) instead of a new one.
``logger.dir`` puts wandb's files in a directory of your choice instead (nothing is moved).
Artifact files are staged by wandb in its own data directory (``WANDB_DATA_DIR``) until uploaded.

Mode: ``WANDB_MODE`` (online, offline, disabled) when set; otherwise online only when the user is
logged in (``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc), else offline.
"""

from __future__ import annotations

import logging
import netrc
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from benchmark.training import EpochLog

log = logging.getLogger("seqrec")


class RunLogger:
    """The no-op tracker (``logger=none``); subclasses mirror a run somewhere."""

    def start(self, config: dict[str, Any], run_dir: Path, group: str | None = None,
              state_dir: Path | None = None) -> None:
        """Called before training with the resolved config and the record's final directory.
        ``state_dir`` (runs with trainer.resume): where the run's checkpoint lives, kept until the
        record is written; a tracker keeps there what a relaunch needs to continue its run."""

    def log_epoch(self, epoch: EpochLog) -> None:
        """Called after each training epoch."""

    def log_resumed(self, epochs: list[EpochLog]) -> None:
        """Called once, before training goes on, with the epochs a checkpoint restored."""
        for epoch in epochs:
            self.log_epoch(epoch)

    def finish(self, record_tmp: Path, metrics: dict[str, Any]) -> None:
        """Called with the written (not yet published) temp record directory."""

    def abort(self) -> None:
        """Called when the run fails or is interrupted before ``finish``."""


def make_logger(cfg: dict[str, Any] | None) -> RunLogger:
    name = (cfg or {}).get("name", "none")
    if name in (None, "none"):
        return RunLogger()
    if name == "wandb":
        return WandbLogger(**{k: v for k, v in cfg.items() if k != "name"})
    from benchmark.errors import ConfigError

    raise ConfigError(f"logger={name!r} is unknown; choose none or wandb")


def logged_in_to_wandb() -> bool:
    """Whether wandb has an API key here (environment or ~/.netrc), without any network call."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if logged_in_to_wandb() else "offline")


class WandbLogger(RunLogger):
    """group = the sweep, job type = the model, tags = the dataset; one wandb run per record."""

    def __init__(self, project: str = "seqrec-bench", entity: str | None = None, group: str | None = None,
                 tags: list[str] | None = None, dir: str | None = None, init_timeout: float = 60.0) -> None:
        self.project, self.entity, self.group, self.extra_tags = project, entity, group, list(tags or [])
        self.dir, self.init_timeout = dir, init_timeout
        self.run: Any = None
        self.staging: Path | None = None  # the hidden directory moved into the record at the end
        self.run_name = ""
        self.files: Path | None = None  # where wandb's files end up once the record is published

    def start(self, config: dict[str, Any], run_dir: Path, group: str | None = None,
              state_dir: Path | None = None) -> None:
        self.run_name = run_dir.name
        mode = wandb_mode()
        if mode == "disabled":  # nothing to mirror, so no wandb directory either
            return
        resume_id = self._resume_id(state_dir)
        self.files = Path(self.dir) / "wandb" if self.dir else run_dir / "wandb"
        if self.dir:
            wandb_dir = Path(self.dir)
        else:
            self.staging = wandb_dir = run_dir.parent / f".{run_dir.name}.wandb"
            shutil.rmtree(wandb_dir, ignore_errors=True)  # a killed earlier attempt of this run
        wandb_dir.mkdir(parents=True, exist_ok=True)
        options = dict(
            project=self.project, entity=self.entity, group=self.group or group,
            job_type=str(config["model"]["name"]), tags=[str(config["dataset"]["name"]), *self.extra_tags],
            name=run_dir.name, config=config, dir=str(wandb_dir),
        )
        if resume_id:  # a relaunch continues its wandb run: online, the killed attempt's run on the server
            options.update(id=resume_id, resume="allow")
        try:
            import wandb

            settings = wandb.Settings(console="off", x_disable_stats=True, silent=True, init_timeout=self.init_timeout)
            try:
                self.run = wandb.init(mode=mode, settings=settings, **options)
            except Exception as e:
                if mode != "online":
                    raise
                log.warning("wandb: cannot reach the server (%s); logging offline instead", _first_line(e))
                self.run = wandb.init(mode="offline", settings=settings, **options)
            self.valid_metric = str(config.get("trainer", {}).get("valid_metric", "valid_metric"))
            if state_dir is not None:
                state_dir.mkdir(parents=True, exist_ok=True)
                (state_dir / self.ID_FILE).write_text(self.run.id)
        except Exception as e:
            self._give_up("start", e)

    ID_FILE = "wandb_run_id"

    def _resume_id(self, state_dir: Path | None) -> str | None:
        """The wandb run id of an earlier attempt of this run (killed before its record was written,
        which removes ``state_dir``), if any."""
        if state_dir is None:
            return None
        try:
            return (state_dir / self.ID_FILE).read_text().strip() or None
        except OSError:
            return None

    def log_epoch(self, epoch: EpochLog) -> None:
        if self.run is None:
            return
        try:
            self.run.log({"epoch": epoch.epoch, "train/loss": epoch.loss, f"valid/{self.valid_metric}": epoch.valid_metric,
                          "epoch_seconds": epoch.seconds}, step=epoch.epoch)
        except Exception as e:
            self._give_up("log", e)

    def finish(self, record_tmp: Path, metrics: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            import wandb

            summary = {f"{split}/{name}": value for split in ("test", "valid") for name, value in metrics.get(split, {}).items()}
            summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
            self.run.summary.update(summary)
            table = wandb.Artifact(f"per_user-{self.run_name}", type="per_user_metrics",
                                   description="one row per evaluated user (per_user.parquet of the run record)")
            table.add_file(str(record_tmp / "per_user.parquet"))
            self.run.log_artifact(table)
            # <wandb dir>/wandb/offline-run-*/files: the run's own folder, named once the record is published
            offline = self.files / Path(self.run.dir).parent.name if self.run.settings.mode == "offline" else None
            self.run.finish()
            self.run = None
            if self.staging is not None:  # wandb writes <dir>/wandb/offline-run-*: keep that level only
                shutil.move(str(self.staging / "wandb"), str(record_tmp / "wandb"))
                shutil.rmtree(self.staging, ignore_errors=True)
            if offline:  # nothing was uploaded: say where the run is kept and how to upload it
                log.info("wandb: offline run saved in %s; upload it with `wandb sync %s`", offline, offline)
        except Exception as e:
            self._give_up("finish", e)

    def abort(self) -> None:
        if self.run is not None:
            try:
                self.run.finish(exit_code=1)
            except Exception:  # the run failed already; wandb must not mask why
                pass
            self.run = None

    def _give_up(self, stage: str, error: Exception) -> None:
        log.warning("wandb: %s failed (%s); the run goes on without wandb", stage, _first_line(error))
        self.abort()
        if self.staging is not None:  # nothing of it will be moved into the record
            shutil.rmtree(self.staging, ignore_errors=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
