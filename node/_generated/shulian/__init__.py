"""Generated: package ``shulian`` of the wire contract. Do not edit."""
