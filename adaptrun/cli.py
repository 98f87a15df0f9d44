"""The ``adaptrun`` command: Hydra composes the config, ``run`` does the work."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from adaptrun.errors import UserError
from adaptrun.resolvers import register_resolvers
from adaptrun.run import run


def config_dir() -> Path:
    """The config tree: inside an installed wheel, else the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "conf"


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    overrides = dict(o.split("=", 1) for o in hydra_cfg.overrides.task if "=" in o)
    try:
        run(cfg, Path(hydra_cfg.runtime.output_dir), overrides)
    except UserError as exc:
        if hydra_cfg.verbose:  # hydra.verbose=true: the full traceback too
            raise
        print(f"adaptrun: error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    _main()


if __name__ == "__main__":
    main()
