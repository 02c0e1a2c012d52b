"""What the store knows about a dataset: how many records, when it last changed, when it was registered."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from node.errors import NotFound

if TYPE_CHECKING:
    from node.store import Store

__all__ = ["DatasetStats", "dataset_stats"]


@dataclass(frozen=True, slots=True)
class DatasetStats:
    """``records``: current (not deleted) records; ``modified``: the latest change to any record,
    deletions included (None when nothing was ever stored); ``registered``: when the dataset was
    registered in the store (None when it is only in the configuration)."""

    records: int = 0
    modified: dt.datetime | None = None
    registered: dt.datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "records": self.records,
            "modified": self.modified.isoformat() if self.modified else None,
            "registered": self.registered.isoformat() if self.registered else None,
        }


def dataset_stats(store: Store | None, dataset_id: str) -> DatasetStats:
    """Counts and dates of one dataset (all zero/None without a store or when it is not registered)."""
    if store is None:
        return DatasetStats()
    from node.store import us_to_datetime

    try:
        info = store.get_dataset(dataset_id)
    except NotFound:
        return DatasetStats()
    count, latest = store.record_stats(dataset_id)
    return DatasetStats(records=int(count), modified=us_to_datetime(latest) if latest is not None else None,
                        registered=info.created)
