"""Adds the ``conf/`` folder of each SEQREC_USER_DIR folder to Hydra's config search path, after the
package's own, so that ``seqrec model=attn_gru`` finds ``<user dir>/conf/model/attn_gru.yaml``
(benchmark/userdir.py imports the folder's Python modules)."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class UserDirSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from benchmark.userdir import config_dirs

        for folder in config_dirs():
            search_path.append(provider="SEQREC_USER_DIR", path=f"file://{folder}")
