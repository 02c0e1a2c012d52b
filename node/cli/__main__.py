"""``python -m node.cli`` runs the admin CLI."""

from node.cli import main

main()
