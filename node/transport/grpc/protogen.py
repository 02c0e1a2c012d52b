"""Generate the Python code for the wire contract (``make proto``).

    python -m node.transport.grpc.protogen            # regenerate node/_generated
    python -m node.transport.grpc.protogen --out DIR  # generate elsewhere (the drift test does)

The ``.proto`` files live in ``schemas/proto/shulian/v1/`` (package ``shulian.v1``).
``grpc_tools.protoc`` writes ``shulian/v1/*_pb2.py``, ``*_pb2.pyi`` and
``*_pb2_grpc.py`` whose imports say ``from shulian.v1 import ...``; they are
rewritten to ``from node._generated.shulian.v1 import ...`` so the generated code
is an ordinary subpackage of ``node``. Output is deterministic: the test in
``tests/grpc`` regenerates into a temporary folder and compares bytes.
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path

from node.errors import StandardError

__all__ = ["generate", "proto_root", "generated_root", "PACKAGE", "main"]

log = logging.getLogger(__name__)

PACKAGE = "node._generated"
_REPO = Path(__file__).resolve().parents[3]
_IMPORT_RE = re.compile(r"^from shulian\.v1 import ", re.MULTILINE)
_MODULE_RE = re.compile(r"BuildTopDescriptorsAndMessages\(DESCRIPTOR, 'shulian\.v1\.")
_INIT_DOC = {
    "": '"""Code generated from schemas/proto by ``make proto`` (node.transport.grpc.protogen). Do not edit."""\n',
    "shulian": '"""Generated: package ``shulian`` of the wire contract. Do not edit."""\n',
    "shulian/v1": '"""Generated: package ``shulian.v1`` of the wire contract. Do not edit."""\n',
}


def proto_root() -> Path:
    """The folder holding ``shulian/v1/*.proto``."""
    from node.standard._paths import schemas_dir

    return schemas_dir() / "proto"


def generated_root() -> Path:
    """``node/_generated`` in this source tree."""
    return _REPO / "node" / "_generated"


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    well_known = Path(str(importlib.resources.files("grpc_tools") / "_proto"))
    code = protoc.main(["grpc_tools.protoc", f"-I{well_known}", *args])
    if code != 0:
        raise StandardError(f"protoc failed (exit {code}) on {args[-1]} ...; see the messages above")


def generate(out: Path | None = None, root: Path | None = None) -> list[Path]:
    """Generate into ``out`` (default ``node/_generated``); returns the files written, sorted."""
    src = (root or proto_root()).resolve()
    dest = (out or generated_root()).resolve()
    protos = sorted(p.relative_to(src).as_posix() for p in (src / "shulian" / "v1").glob("*.proto"))
    if not protos:
        raise StandardError(f"no .proto files under {src / 'shulian' / 'v1'}")
    with tempfile.TemporaryDirectory(prefix="shulian-protogen-") as tmp:
        work = Path(tmp)
        _protoc([f"-I{src}", f"--python_out={work}", f"--pyi_out={work}", f"--grpc_python_out={work}", *protos])
        files: dict[str, bytes] = {}
        for path in sorted(work.rglob("*")):
            if path.is_file():
                rel = path.relative_to(work).as_posix()
                text = path.read_text(encoding="utf-8")
                text = _IMPORT_RE.sub(f"from {PACKAGE}.shulian.v1 import ", text)
                text = _MODULE_RE.sub(f"BuildTopDescriptorsAndMessages(DESCRIPTOR, '{PACKAGE}.shulian.v1.", text)
                files[rel] = text.encode("utf-8")
    for sub, doc in _INIT_DOC.items():
        files[f"{sub}/__init__.py".lstrip("/")] = doc.encode("utf-8")
    # clear what an earlier run left (a removed .proto must not leave its module behind)
    stale = dest / "shulian"
    if stale.exists():
        shutil.rmtree(stale)
    written: list[Path] = []
    for rel, data in sorted(files.items()):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    log.info("generated %d files into %s", len(written), dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m node.transport.grpc.protogen",
        description="Generate node/_generated from schemas/proto (example: make proto).",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: node/_generated)")
    args = parser.parse_args(argv)
    try:
        written = generate(args.out)
    except StandardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"generated {len(written)} files into {(args.out or generated_root()).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
