"""Code crosswalks (local code -> standard code), from a mapping table or a published SKOS scheme."""

from __future__ import annotations

from adapters.crosswalk._skos import CODE_BASE, crosswalk_to_skos, load_skos_crosswalk, standard_code
from adapters.crosswalk._table import Crosswalk

__all__ = ["CODE_BASE", "Crosswalk", "crosswalk_to_skos", "load_skos_crosswalk", "standard_code"]
