"""What one run is asked to do (``RunOptions``), separate from where it runs (``config.Settings``).

Options are plain values (they pickle to parse worker processes as they are): how hard the run works is
its ``tuning`` (``pipeline.run.tuning.Tuning``), and live clients (OpenSearch, S3) travel beside the
options, as arguments of ``pipeline.run.flow``'s functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import VanishedFolderError
from pipeline.run.tuning import Tuning
from pipeline.stages.parse import ParseConfig

if TYPE_CHECKING:  # a run that checks images imports the checker; planning and the DAG's context do not
    from pipeline.stages.images.config import ImageCheckConfig

DEFAULT_MAX_BATCHES = 4


@dataclass(frozen=True)
class VanishGuard:
    """Refuse to delete when more than ``share`` of the known files and more than ``min_files`` vanish."""

    share: float = 0.2
    min_files: int = 10

    def check(self, vanished: int, known: int, root: str, moved: int = 0) -> None:
        """``vanished``: files whose content is nowhere in the listing; ``moved``: files whose content
        reappears at another path (not counted, only mentioned)."""
        if vanished > self.min_files and vanished > self.share * known:
            also = f"; {moved} more moved within it" if moved else ""
            raise VanishedFolderError(
                f"{vanished} of the {known} seed files the ledger knows in {root} are gone (more than "
                f"{self.share:.0%} and more than {self.min_files}{also}): the folder may be unmounted or half-copied, "
                "so nothing was deleted. If the files were removed on purpose, run again with "
                "--allow-mass-delete (DAG Param allow_mass_delete)."
            )


@dataclass(frozen=True)
class RunOptions:
    seed_dir: str  # a folder, or s3://bucket/prefix (pipeline.sources)
    full_rebuild: bool = False
    dry_run: bool = False
    check_images: bool = True
    max_batches: int = DEFAULT_MAX_BATCHES
    min_batch_files: int = 1  # fewer batches than max_batches when each would hold fewer files (the DAG's)
    skip_unchanged: bool = True  # False: process every file again (the ledger is still written)
    replay_dead_letters: bool = False
    allow_mass_delete: bool = False  # lift the vanish guard for this run (deletions were on purpose)
    vanish_guard: VanishGuard = field(default_factory=VanishGuard)
    run_id: str = ""  # names this run in the ledger; the DAG passes Airflow's run_id
    parse: ParseConfig = field(default_factory=ParseConfig)
    image_config: ImageCheckConfig | None = None  # None: its defaults
    tuning: Tuning = field(default_factory=Tuning)  # chunk size, overlap, workers, bulk shape; read once at the edge
