"""``python -m node.transport.kafka._helper``: the consumer's check helper process (see ``_pool``)."""

from __future__ import annotations

from node.transport.kafka._pool import helper_main

if __name__ == "__main__":
    helper_main()
