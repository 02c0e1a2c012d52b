"""Node checks: one module per area, discovered automatically.

Every module below this package is imported by :func:`conformance.discover` before
a node run. A module registers its checks by case id; the case's titles, clause and
level are in ``conformance/manifests/node.ttl``::

    from conformance import NodeContext, case

    @case("OPS-01")
    def health_answers(ctx: NodeContext) -> None:
        channel = ctx.shared("channel", lambda: make_channel(ctx.target))  # once per run
        ...
        ctx.check(status == SERVING, f"health says {status}, expected SERVING")

``async def`` checks are run on one event loop shared by the run.

Modules: :mod:`.catalog` (CAT-01, CAT-02), :mod:`.access` (QRY-01, ACC-01..05),
:mod:`.push` (PSH-01..03, SUB-01), :mod:`.ops` (OPS-01, OPS-02, INP-01), :mod:`.tls`
(TLS-01, TLS-02); :mod:`._support` holds what they share (the kit's identities, synchronous
gRPC calls over the public wire contract, independent references for masking and batch
signatures). The checks read facts about the node from parameters (``--params FILE``
written by ``shulian-conform fixture load``, or ``--param NAME=VALUE``; see
:data:`conformance.fixture.PARAMS`). KFK-01 and KFK-02 have no check yet: they are
reported "not run".
"""
