"""The shared standard: locating it, reading its shapes and code lists."""

from node.standard._paths import ontology_dir, schemas_dir

__all__ = ["ontology_dir", "schemas_dir"]
