"""Generated: package ``shulian.v1`` of the wire contract. Do not edit."""
