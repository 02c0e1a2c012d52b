"""Node checks: one module per area (catalog, access, push, tls, kafka ...), discovered automatically.

Every module below this package is imported by :func:`conformance.discover` before
a node run. A module registers its checks by case id; the case's titles, clause and
level are in ``conformance/manifests/node.ttl``::

    from conformance import NodeContext, case

    @case("OPS-01")
    def health_answers(ctx: NodeContext) -> None:
        channel = ctx.shared("channel", lambda: make_channel(ctx.target))  # once per run
        ...
        ctx.check(status == SERVING, f"health says {status}, expected SERVING")

``async def`` checks are run on one event loop shared by the run. No checks are
implemented yet: every node case is reported "not run".
"""
