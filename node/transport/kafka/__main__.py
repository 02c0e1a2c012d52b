"""``python -m node.transport.kafka run --config node.toml``."""

from __future__ import annotations

from node.transport.kafka._runner import main

if __name__ == "__main__":
    main()
