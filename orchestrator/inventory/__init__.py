"""Inventory: read the fleet through an `ArmGateway` into a `Snapshot`.

`collect` lists each subscription's apps and deny assignments (and reads the customers' application
lists by id); `by_id` is the one by-id reader and the choice of sources (ARM listings, the notification
registry, or both); `files` saves and loads snapshots. Callers import from here.
"""

from orchestrator.inventory.by_id import Limits, Source, choose_source, read_apps_by_id, registry_app_ids
from orchestrator.inventory.collect import InventoryProgress, ProgressCallback, collect_snapshot
from orchestrator.inventory.files import SnapshotFileError, load_snapshot, save_snapshot

__all__ = [
    "InventoryProgress",
    "Limits",
    "ProgressCallback",
    "SnapshotFileError",
    "Source",
    "choose_source",
    "collect_snapshot",
    "load_snapshot",
    "read_apps_by_id",
    "registry_app_ids",
    "save_snapshot",
]
