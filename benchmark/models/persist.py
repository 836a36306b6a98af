"""A fitted model to a file and back, without pickling code: the file holds only tensors and plain values
(loaded with ``weights_only=True``), and the model is rebuilt from its record's config, then given its
fitted attributes back (``Recommender.restore``).

Attributes are encoded by type: tensors as they are; numpy arrays, scipy sparse matrices, ``Sequences`` and
torch modules (their state dict) as tagged dicts of tensors; devices by name; plain values and containers
of them as they are. A model holding anything else cannot be saved, and says which attribute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from benchmark.data.split import Sequences
from benchmark.errors import BenchmarkError

TAG = "__kind__"


class ModuleState(dict):
    """The state dict of a torch module attribute: the model rebuilds the module and loads it (``restore``)."""


def encode(value: Any, where: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {TAG: "numpy", "array": torch.from_numpy(np.ascontiguousarray(value))}
    if sp.issparse(value):
        x = sp.csr_matrix(value)
        return {TAG: "csr", "data": torch.from_numpy(x.data), "indices": torch.from_numpy(x.indices),
                "indptr": torch.from_numpy(x.indptr), "shape": list(x.shape)}
    if isinstance(value, Sequences):
        return {TAG: "sequences", **{k: torch.from_numpy(getattr(value, k)) for k in ("items", "offsets", "times")}}
    if isinstance(value, nn.Module):
        return {TAG: "module", "state": {k: v.detach().cpu() for k, v in value.state_dict().items()}}
    if isinstance(value, torch.device):
        return {TAG: "device", "name": str(value)}
    if isinstance(value, dict):
        return {str(k): encode(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BenchmarkError(f"cannot save the model: {where} is a {type(value).__name__}, which a weights-only file "
                         "cannot hold (give the model a restore() that rebuilds it)")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if kind == "numpy":
        return value["array"].numpy()
    if kind == "csr":
        return sp.csr_matrix((value["data"].numpy(), value["indices"].numpy(), value["indptr"].numpy()),
                             shape=tuple(value["shape"]))
    if kind == "sequences":
        return Sequences(value["items"].numpy(), value["offsets"].numpy(), value["times"].numpy())
    if kind == "module":
        return ModuleState(value["state"])
    if kind == "device":
        return torch.device("cpu")  # a loaded model runs on the CPU, whatever it was trained on
    return {k: decode(v) for k, v in value.items()}


def save_model(model: Any, path: Path) -> None:
    """The fitted attributes of ``model`` into ``path`` (tensors and plain values only)."""
    skip = getattr(model, "not_saved", ())  # rebuilt from the config (e.g. a training-time sampler)
    torch.save({k: encode(v, k) for k, v in vars(model).items() if k not in skip}, path)


def load_model(path: Path, model_config: dict[str, Any]) -> Any:
    """The model ``model_config`` builds, given back the fitted attributes ``save_model`` wrote into ``path``."""
    from benchmark.run import build_model

    try:
        attributes = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or pickled code (refused): unusable either way
        raise BenchmarkError(f"{path} cannot be read as a saved model ({type(e).__name__}: not a weights-only "
                             "file of this version); re-run the record with trainer.save_model=true") from None
    model = build_model(model_config)
    model.restore({k: decode(v) for k, v in attributes.items()})
    return model
