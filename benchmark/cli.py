"""The `seqrec` command: a thin Hydra entry point around run_experiment.

Every user error ends as one line ``seqrec: error: ...`` on stderr and exit code 2: our own
BenchmarkErrors, and Hydra's composition errors (unknown override key, unknown config option,
override syntax), which Hydra would otherwise print as several lines with exit code 1.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from benchmark.errors import BenchmarkError
from benchmark.progress import ENV as PROGRESS_ENV
from benchmark.tuning import RunResult, job_result

# conf/ lives at the repository root (editable installs); a wheel carries it inside the package.
_ROOT_CONF = Path(__file__).resolve().parent.parent / "conf"
CONF_DIR = str(_ROOT_CONF if _ROOT_CONF.is_dir() else Path(__file__).resolve().parent / "conf")
EXIT_USAGE = 2
job_started = False  # set by run(): an OSError before any job is Hydra failing to create its output dir


def fail(message: str) -> None:
    print(f"seqrec: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def run(cfg: DictConfig) -> RunResult:
    """What the command does with a composed config (tests call this in-process)."""
    from omegaconf.errors import OmegaConfBaseException

    from benchmark.run import run_experiment
    from benchmark.userdir import load_user_dirs

    global job_started
    job_started = True
    sweeping = in_multirun()
    if sweeping and not in_launching_process():
        os.environ.setdefault(PROGRESS_ENV, "0")  # parallel workers' bars would interleave
    try:
        load_user_dirs()  # a sweep's job process (joblib, submitit) imports the user's models itself
        return job_result(run_experiment(cfg))
    except (BenchmarkError, OmegaConfBaseException) as e:  # OmegaConf: e.g. ${oc.env:VAR} with VAR unset
        if sweeping:  # Hydra marks this job failed; the other runs of the sweep go on
            raise
        discard_hydra_output(cfg)
        fail(str(e) if isinstance(e, BenchmarkError) else hydra_error_line(e))


def discard_hydra_output(cfg: DictConfig) -> None:
    """A refused run leaves no trace: Hydra wrote its output folder (the composed config, the log)
    before the run was checked. That folder goes, and the parents it left empty up to results_dir."""
    import shutil

    from omegaconf import OmegaConf

    if not HydraConfig.initialized():  # called in-process (tests): Hydra wrote nothing
        return
    out = Path(HydraConfig.get().runtime.output_dir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    results_dir = OmegaConf.select(cfg, "results_dir", throw_on_resolution_failure=False)
    if not isinstance(results_dir, str):
        return
    top = Path(results_dir).resolve()
    for parent in out.parents:
        if top != parent and top not in parent.parents:
            break
        try:
            parent.rmdir()  # only when empty: a results_dir holding records stays
        except OSError:
            break


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def app(cfg: DictConfig) -> RunResult:
    return run(cfg)


def hydra_error_line(error: BaseException) -> str:
    """One line from Hydra's or OmegaConf's multi-line composition error."""
    from benchmark.config import static_keys

    cause = error.__cause__
    if "not in struct" in str(cause) and getattr(cause, "full_key", None):
        key = cause.full_key
        group = key.rsplit(".", 1)[0] if "." in key else ""
        known = static_keys(group)
        allowed = f"{group or 'the config'} takes: {', '.join(known)}" if known else f"see the keys of {group} with `seqrec --cfg job`"
        return f"unknown key {key}; {allowed}"
    text = str(error).split("Config search path:")[0]
    options = re.search(r"Available options in '([^']+)':\s*\n((?:\s*\S+\n?)+)", text)
    head = text.split("Available options")[0]
    lines = [s.strip() for s in head.splitlines() if s.strip() and not s.strip().startswith("object_type=")]
    line = " ".join(f"(key {s[len('full_key: '):]})" if s.startswith("full_key: ") else s for s in lines)
    if options:
        line += f"; available options in '{options.group(1)}': {', '.join(options.group(2).split())}"
    return re.sub(r"^In '[^']+': ", "", line)


def yaml_error_line(error: BaseException) -> str:
    """One line from a YAML syntax error in a config file: the file, line, column and the problem."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = " ".join(str(getattr(error, "problem", None) or error).split())
    if mark is None:
        return f"a config file is not valid YAML: {problem}"
    return f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {problem}"


def in_multirun() -> bool:
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def in_launching_process() -> bool:
    """Whether jobs run one after another in the `seqrec` process itself (Hydra's basic launcher)."""
    return HydraConfig.get().launcher._target_.endswith("BasicLauncher")


def main() -> None:
    if sys.argv[1:2] == ["explain"]:  # `seqrec explain RECORD user=U`: no Hydra, a record is its input
        from benchmark.report.attribution import explain_main

        sys.exit(explain_main(sys.argv[2:]))
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from benchmark.userdir import load_user_dirs

    user_wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's multi-line report
    try:
        load_user_dirs()  # before composing: the sweep's report reads the user's encoders too
        app()
    except KeyboardInterrupt:  # Ctrl-C: the interrupted run left no record, finished ones are kept
        print("seqrec: interrupted; complete run records are kept, run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)
    except (BenchmarkError, HydraException, OmegaConfBaseException) as e:  # BenchmarkError: a failed run of a sweep
        if user_wants_traceback:
            raise
        # Hydra wraps what a plugin's constructor raises (the sweeper's check of its settings).
        ours = e if isinstance(e, BenchmarkError) else e.__cause__ if isinstance(e.__cause__, BenchmarkError) else None
        fail(str(ours) if ours else hydra_error_line(e))
    except OSError as e:
        if job_started or e.filename is None or user_wants_traceback:
            raise
        fail(f"cannot create Hydra's output directory {e.filename}: {e.strerror}; hydra.run.dir and "
             "hydra.sweep.dir lie under results_dir unless set, so choose a writable results_dir")
    except yaml.YAMLError as e:  # a config file Hydra loads is broken YAML (Hydra does not wrap the error)
        if user_wants_traceback:
            raise
        fail(yaml_error_line(e))


if __name__ == "__main__":
    main()
