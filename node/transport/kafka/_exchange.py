"""KafkaExchange: the node's Kafka side, an async context manager.

    async with KafkaExchange(cfg=cfg, store=store, evidence=evidence, validator=validator,
                             policy=policy, directory=directory) as kx:
        ...                     # the rest of the node runs meanwhile
        kx.health()             # KafkaHealth(status="serving" | "degraded" | ...)

Entering never waits for the broker: the exchange connects in the background,
retries with back-off while the broker is unreachable (health ``degraded``), and
catches up when it comes back. ``policy`` and ``directory`` may be values or
zero-argument callables returning the current value (so a daemon can reload them).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import repeat
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from node.config import NodeConfig
from node.errors import Unavailable
from node.evidence import EvidenceLog
from node.federation import FederationDirectory
from node.pki import load_encryption_key, load_signing_key
from node.policy import ResponsibilityList
from node.store import Store
from node.transport.kafka._clients import DEFAULT_PARTITIONS, Backoff, TopicManager, client_kwargs
from node.transport.kafka._inbox import ensure_inbox
from node.transport.kafka._pool import CheckPool, HelperError, unpack_outcomes
from node.transport.kafka._publisher import PreparedBatch, Publisher, partition_for
from node.transport.kafka._receiver import Accepted, BatchResult, CheckedBatch, Incoming, Receiver, Rejected
from node.transport.kafka._routes import RoutePlanner
from node.transport.kafka._topics import dead_letter_topic
from node.validation import Validator

__all__ = ["KafkaExchange", "KafkaHealth", "KafkaOptions"]

log = logging.getLogger(__name__)

PolicySource = ResponsibilityList | Callable[[], ResponsibilityList | None] | None
DirectorySource = FederationDirectory | Callable[[], FederationDirectory]


@dataclass(frozen=True)
class KafkaOptions:
    """Tuning knobs (the defaults suit a node; tests and benchmarks change a few)."""

    publish: bool = True  # drain the outbox to Kafka
    consume: bool = True  # read the subscriptions
    outbox_batch: int = 5000  # outbox rows per published (and signed) batch
    max_records: int = 2000  # messages per consumed batch
    poll_interval: float = 0.2  # seconds between outbox polls when it is empty
    metadata_interval: float = 1.0  # seconds between looks for subscribed topics that do not exist yet
    probe_interval: float = 3.0  # seconds between broker health probes
    partitions: int = DEFAULT_PARTITIONS  # for topics this node creates
    request_timeout_ms: int = 15000
    max_backoff: float = 15.0
    group_id: str | None = None  # default shulian-<department code>
    check_process: bool = True  # check consumed batches in a helper process (a second core), where it can
    check_process_min_batch: int = 64  # smaller batches are checked in this process (not worth the round trip)
    check_ahead: int = 2  # batches read and being checked while an earlier one is stored (at least 1)
    # how long the broker may hold a fetch for partitions with nothing new (Kafka's default: 500 ms); a
    # fetch held for caught-up partitions holds back the next fetch of the others, which are read in
    # batches of max_records
    fetch_max_wait_ms: int = 100
    check_process_start_timeout: float = 30.0  # seconds a batch waits for a helper still starting, then checked here


@dataclass(frozen=True)
class KafkaHealth:
    """What ``KafkaExchange.health()`` reports."""

    status: str  # disabled | starting | serving | degraded | stopped
    detail: str
    connected: bool
    outbox_pending: int | None
    published: int  # messages acknowledged by Kafka since start
    received: int  # messages consumed since start
    stored: int  # received records stored (new provider versions)
    quarantined: int  # received messages quarantined and dead-lettered
    assigned: tuple[str, ...]  # topic/partition the consumer reads
    since: float  # time.time() of the last status change

    @property
    def ok(self) -> bool:
        return self.status in ("serving", "disabled")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["assigned"] = list(self.assigned)
        out["ok"] = self.ok
        return out


def _current(source: Any) -> Any:
    return source() if callable(source) else source


_new: Any = tuple.__new__  # Incoming(...) without its Python-level __new__


_SAMPLE = 16  # a header column whose first values all differ is taken to differ throughout (ids, proofs)


def _plain_messages(data: dict[Any, list[Any]]) -> list[tuple[Any, ...]]:
    """The consumed messages as plain tuples (the fields of Incoming), so the consumer's records are
    let go at once and the collector stops tracking them. A header (name, value) pair that several
    messages carry is one object: a publisher's messages share most of their headers, and the check
    helper is sent each shared pair once (marshal writes a reference to an object it has written).

    A partition's messages are taken header column by header column (a publisher sends its headers
    in one order): a column of equal pairs becomes one pair, a column whose first pairs repeat is shared
    through a dict, one whose first pairs differ (ids, proofs) is left as it is; each message's headers
    are then equal to its own (tests/kafka/test_consume_fast_paths.py).
    Messages of differing header counts take :func:`_plain_messages_general` (as does anything odd).
    """
    out: list[tuple[Any, ...]] = []
    try:
        for tp, batch in data.items():
            n = len(batch)
            if not n:
                continue
            headers = [m.headers for m in batch]
            width = len(headers[0])
            if not width or set(map(len, headers)) != {width}:
                return _plain_messages_general(data)
            topic, partition = tp.topic, tp.partition
            out += [(topic, partition, m.offset, m.key, m.value, h)
                    for m, h in zip(batch, _shared_headers(headers, n), strict=True)]
    except (TypeError, AttributeError):  # not records with sequences of hashable pairs: as the general path says
        return _plain_messages_general(data)
    return out


def _shared_headers(headers: list[Any], n: int) -> Iterator[tuple[Any, ...]]:
    """The headers (``n`` sequences of one length) as tuples, equal pairs of a column made one object."""
    columns: list[Iterable[Any]] = list(zip(*headers, strict=True))
    shared: dict[Any, Any] = {}
    one = shared.setdefault
    for k, column in enumerate(columns):
        col: tuple[Any, ...] = column  # type: ignore[assignment]
        first = col[0]
        if col[-1] == first and col.count(first) == n:
            columns[k] = repeat(first, n)
        else:
            sample = col[:_SAMPLE]
            if len(set(sample)) < len(sample):
                columns[k] = map(one, col, col)
    return zip(*columns, strict=True)


def _plain_messages_general(data: dict[Any, list[Any]]) -> list[tuple[Any, ...]]:
    """:func:`_plain_messages` message by message (every header pair shared through one dict)."""
    shared: dict[tuple[str, bytes | None], tuple[str, bytes | None]] = {}
    one = shared.setdefault
    try:
        return [(tp.topic, tp.partition, m.offset, m.key, m.value, tuple(map(one, m.headers, m.headers)))
                for tp, batch in data.items() for m in batch]
    except TypeError:  # a header that is not a hashable pair: as it came
        return [(tp.topic, tp.partition, m.offset, m.key, m.value, tuple(m.headers))
                for tp, batch in data.items() for m in batch]


@dataclass
class _ConsumeState:
    backoff: Backoff
    assigned: frozenset[Any] = frozenset()
    uncommitted: dict[Any, int] = field(default_factory=dict)


class KafkaExchange:
    """Publishes the outbox and consumes subscriptions; see the module docstring."""

    def __init__(
        self,
        *,
        cfg: NodeConfig,
        store: Store,
        evidence: EvidenceLog,
        validator: Validator,
        policy: PolicySource = None,
        directory: DirectorySource,
        signing_key: ed25519.Ed25519PrivateKey | None = None,
        encryption_key: x25519.X25519PrivateKey | None = None,
        options: KafkaOptions | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.evidence = evidence
        self.validator = validator
        self.options = options or KafkaOptions()
        self._policy_src = policy
        self._directory_src = directory
        self._signing_key = signing_key
        self._encryption_key = encryption_key
        self.me = cfg.department.code
        self._status = "disabled" if cfg.kafka is None else "starting"
        self._since = time.time()
        self._problems: dict[str, str] = {}
        self._connected = False
        self._published = self._received = self._stored = self._quarantined = 0
        self._outbox_pending: int | None = None
        self._assigned: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._kwargs: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pub_exec: concurrent.futures.ThreadPoolExecutor | None = None
        self._fin_exec: concurrent.futures.ThreadPoolExecutor | None = None  # finishing published batches
        self._sub_exec: concurrent.futures.ThreadPoolExecutor | None = None  # storing received batches
        self._chk_exec: concurrent.futures.ThreadPoolExecutor | None = None  # checking them, without a helper
        self._pool: CheckPool | None = None
        self._partition_lists: dict[str, list[int]] = {}  # topic -> its partitions, as last sent to
        self._producer: Any = None
        self._consumer: Any = None
        self._admin: Any = None
        self._topics: TopicManager | None = None
        self.publisher: Publisher | None = None
        self.receiver: Receiver | None = None

    # ---- sources ----------------------------------------------------------------------
    def current_policy(self) -> ResponsibilityList | None:
        value: ResponsibilityList | None = _current(self._policy_src)
        return value

    def current_directory(self) -> FederationDirectory:
        value: FederationDirectory = _current(self._directory_src)
        return value

    # ---- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        kafka = self.cfg.kafka
        if kafka is None:
            log.info("no [kafka] section in %s: the Kafka exchange is off", self.cfg.path)
            return self
        self._kwargs = client_kwargs(kafka)  # a bad security setting fails here, clearly
        signing = self._signing_key or load_signing_key(self.cfg.signing_key)
        encryption = self._encryption_key
        if encryption is None and self.cfg.encryption_key is not None:
            encryption = load_encryption_key(self.cfg.encryption_key)
        self._pub_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shulian-kafka-pub")
        self._fin_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shulian-kafka-fin")
        self._sub_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shulian-kafka-sub")
        self._chk_exec = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shulian-kafka-check")
        planner = RoutePlanner(self.cfg, self.current_policy, self.current_directory)
        self.publisher = Publisher(cfg=self.cfg, store=self.store, evidence=self.evidence, signing_key=signing,
                                   planner=planner)
        self.receiver = Receiver(node_code=self.me, subscriptions=kafka.subscriptions, store=self.store,
                                 evidence=self.evidence, validator=self.validator,
                                 directory=self.current_directory, encryption_key=encryption)
        if self.options.consume and kafka.subscriptions and self.options.check_process and \
                CheckPool.supported(self.validator):
            self._pool = CheckPool(node_code=self.me, subscriptions=kafka.subscriptions, validator=self.validator,
                                   encryption_key=encryption)
            try:  # starts in the background; batches are checked in a thread until it is up
                self._pool.start()
            except Exception as exc:  # noqa: BLE001 - no helper process: check in a thread
                self._pool.fail(exc)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pub_exec, self._prepare_store)
        self._task = asyncio.create_task(self._supervise(), name="shulian-kafka")
        return self

    def _prepare_store(self) -> None:
        ensure_inbox(self.store)
        assert self.publisher is not None
        if self.options.publish:
            self.publisher.sync_publish_flags()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop: loops finish the batch in hand (acknowledged, stored, committed), then clients close."""
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                log.warning("the Kafka exchange did not stop within %s s; cancelling it", timeout)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif not task.cancelled() and task.exception() is not None:
                log.error("the Kafka exchange ended with an error", exc_info=task.exception())
        await self._close_clients()
        for ex in (self._pub_exec, self._fin_exec, self._sub_exec, self._chk_exec):
            if ex is not None:
                await asyncio.get_running_loop().run_in_executor(None, ex.shutdown, True)
        self._pub_exec = self._fin_exec = self._sub_exec = self._chk_exec = None
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.close)
        if self.cfg.kafka is not None:
            self._set_status("stopped")

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once when the exchange is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def notify(self) -> None:
        """Wake the publisher now (e.g. after a write); otherwise it polls the outbox."""
        self._wake.set()

    # ---- health -----------------------------------------------------------------------
    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._since = time.time()

    def _problem(self, area: str, text: str) -> None:
        if self._problems.get(area) != text:
            log.warning("Kafka %s: %s", area, text)
        self._problems[area] = text
        if self._status not in ("stopped", "disabled"):
            self._set_status("degraded")

    def _ok(self, area: str) -> None:
        if self._problems.pop(area, None) is not None:
            log.info("Kafka %s: recovered", area)
        if not self._problems and self._connected and self._status not in ("stopped", "disabled"):
            self._set_status("serving")

    def health(self) -> KafkaHealth:
        if self._status == "disabled":
            detail = "no [kafka] section in the configuration"
        elif self._problems:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(self._problems.items()))
        elif self._status == "starting":
            detail = "connecting to " + ",".join(self.cfg.kafka.bootstrap_servers if self.cfg.kafka else ())
        else:
            detail = ""
        return KafkaHealth(status=self._status, detail=detail, connected=self._connected,
                           outbox_pending=self._outbox_pending, published=self._published,
                           received=self._received, stored=self._stored, quarantined=self._quarantined,
                           assigned=self._assigned, since=self._since)

    # ---- connection -------------------------------------------------------------------
    async def _connect(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.admin import AIOKafkaAdminClient

        common = dict(self._kwargs, client_id=f"shulian-{self.me}")
        self._admin = AIOKafkaAdminClient(**common, request_timeout_ms=self.options.request_timeout_ms)
        await self._admin.start()
        self._topics = TopicManager(self._admin, self.options.partitions)
        self._producer = AIOKafkaProducer(**common, acks="all", linger_ms=5, max_batch_size=512 * 1024,
                                          request_timeout_ms=self.options.request_timeout_ms)
        await self._producer.start()
        if self.options.consume and self.cfg.kafka is not None and self.cfg.kafka.subscriptions:
            self._consumer = AIOKafkaConsumer(
                **common, group_id=self.options.group_id or f"shulian-{self.me}", enable_auto_commit=False,
                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_wait_ms=self.options.fetch_max_wait_ms)
            await self._consumer.start()

    async def _close_clients(self) -> None:
        for name in ("_consumer", "_producer", "_admin"):
            client = getattr(self, name)
            setattr(self, name, None)
            if client is None:
                continue
            try:
                await asyncio.wait_for(client.stop() if name != "_admin" else client.close(), 10)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled
                log.debug("closing the Kafka %s was cancelled inside aiokafka", name[1:])  # broker gone
            except Exception:  # noqa: BLE001 - closing a broken client must not hide the real error
                log.debug("closing the Kafka %s failed", name[1:], exc_info=True)
        self._connected = False
        self._assigned = ()

    async def _supervise(self) -> None:
        from aiokafka.errors import KafkaError

        backoff = Backoff(maximum=self.options.max_backoff)
        servers = ",".join(self.cfg.kafka.bootstrap_servers if self.cfg.kafka else ())
        while not self._stopping.is_set():
            try:
                await self._connect()
            except (TimeoutError, KafkaError, OSError) as exc:
                await self._close_clients()
                self._problem("broker", f"cannot reach {servers} ({exc}); retrying")
                await self._pause(backoff.delay())
                continue
            except Exception as exc:  # noqa: BLE001 - never let the exchange die: report and retry
                log.exception("starting the Kafka clients failed")
                await self._close_clients()
                self._problem("broker", f"starting the Kafka clients failed ({exc!r}); retrying")
                await self._pause(backoff.delay())
                continue
            self._connected = True
            self._ok("broker")
            backoff.reset()
            log.info("Kafka exchange connected to %s", servers)
            loops = [asyncio.create_task(self._probe_loop(), name="kafka-probe")]
            if self.options.publish:
                loops.append(asyncio.create_task(self._publish_loop(), name="kafka-publish"))
            if self._consumer is not None:
                loops.append(asyncio.create_task(self._consume_loop(), name="kafka-consume"))
            try:  # the loops return by themselves when stopping
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    error = task.exception()
                    if error is not None:
                        log.error("Kafka %s stopped: %r; restarting", task.get_name(), error, exc_info=error)
                        self._problem("exchange", f"{task.get_name()} failed: {error}; restarting")
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
                await self._close_clients()
            await self._pause(backoff.delay())
        await self._close_clients()

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._producer.client.fetch_all_metadata(),
                                       self.options.request_timeout_ms / 1000)
                if "broker" in self._problems and self._topics is not None:
                    self._topics.forget()  # back after an outage: check the topics again before use
                self._ok("broker")
            except Exception as exc:  # noqa: BLE001 - any failure means the broker is not reachable now
                self._problem("broker", f"the broker does not answer ({exc!r}); retrying")
            if self.options.publish:
                self._outbox_pending = await loop.run_in_executor(self._pub_exec, self.store.outbox_pending_count)
            await self._pause(self.options.probe_interval)

    # ---- publishing -------------------------------------------------------------------
    async def _publish_loop(self) -> None:
        from aiokafka.errors import KafkaError

        assert self.publisher is not None and self._topics is not None
        loop = asyncio.get_running_loop()
        backoff = Backoff(maximum=self.options.max_backoff)
        try:
            planned = await loop.run_in_executor(self._pub_exec, self.publisher.planned_topics)
            await self._topics.ensure(planned)
            for topic in planned:  # known partitions: the first batch is signed per partition too
                self._partition_lists[topic] = sorted(await self._producer.partitions_for(topic))
            self._ok("topics")
        except Unavailable as exc:
            self._problem("topics", exc.message)
        except KafkaError as exc:
            self._problem("topics", f"cannot create topics: {exc}")
        publisher, limit = self.publisher, self.options.outbox_batch
        pending: asyncio.Future[PreparedBatch | None] | None = None
        # the last acknowledged batch's outbox rows and evidence, being written while the next batch is sent
        finishing: asyncio.Future[None] | None = None
        while True:
            if self._stopping.is_set():
                await asyncio.gather(*(f for f in (pending, finishing) if f is not None), return_exceptions=True)
                return
            # the next batch is prepared (read, projected, signed) while Kafka acknowledges this one
            batch = await (pending or loop.run_in_executor(self._pub_exec, publisher.prepare, limit, 0,
                                                           dict(self._partition_lists)))
            pending = None
            if batch is None:
                self._outbox_pending = 0
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_interval)
                except TimeoutError:
                    pass
                continue
            try:
                acks = await self._send(batch) if batch.messages else []
                pending = loop.run_in_executor(self._pub_exec, publisher.prepare, limit, batch.last_id,
                                               dict(self._partition_lists))
                failures = [r for r in await asyncio.gather(*acks, return_exceptions=True)
                            if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
            except (TimeoutError, KafkaError, Unavailable) as exc:
                if pending is not None:  # start again from the oldest row still in the outbox
                    await asyncio.gather(pending, return_exceptions=True)
                    pending = None
                if finishing is not None:  # (once the batch before is out of it)
                    await finishing
                    finishing = None
                self._topics.forget()
                text = exc.message if isinstance(exc, Unavailable) else repr(exc)
                self._problem("publish", f"publishing {len(batch.messages)} message(s) failed ({text}); "
                              "they stay in the outbox and are retried")
                await self._pause(backoff.delay())
                continue
            if finishing is not None:  # batches are finished in order (and a failure to finish shows here)
                await finishing
            finishing = asyncio.ensure_future(self._finished(batch))
            backoff.reset()
            self._ok("publish")
            self._ok("topics")

    async def _finished(self, batch: PreparedBatch) -> None:
        """Drop an acknowledged batch's outbox rows and log its evidence (in a thread of its own, so
        the next batch is read and signed meanwhile)."""
        assert self.publisher is not None
        await asyncio.get_running_loop().run_in_executor(self._fin_exec, self.publisher.finish, batch)
        self._published += len(batch.messages)

    async def _send(self, batch: PreparedBatch) -> list[asyncio.Future[Any]]:
        """Queue every message of the batch with the producer; returns the acknowledgements to await."""
        assert self._topics is not None
        producer = self._producer
        await self._topics.ensure(batch.topics)
        by_topic: dict[str, list[Any]] = {}
        for m in batch.messages:
            by_topic.setdefault(m.topic, []).append(m)
        futures = []
        for topic, msgs in by_topic.items():
            partitions = sorted(await producer.partitions_for(topic))
            self._partition_lists[topic] = partitions  # the next batches are signed per partition
            by_part: dict[int, list[Any]] = {}
            for m in msgs:
                by_part.setdefault(partition_for(m.key, partitions), []).append(m)
            for partition, part_msgs in by_part.items():
                b = producer.create_batch()
                for m in part_msgs:
                    if b.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                        futures.append(await producer.send_batch(b, topic, partition=partition))
                        b = producer.create_batch()
                        b.append(key=m.key, value=m.value, timestamp=None, headers=m.headers)
                futures.append(await producer.send_batch(b, topic, partition=partition))
        return futures

    # ---- consuming --------------------------------------------------------------------
    async def _refresh_assignment(self, current: frozenset[Any]) -> tuple[frozenset[Any], bool]:
        """Assign every partition of the subscribed topics that exist; (assignment, all topics found)."""
        from aiokafka import TopicPartition

        assert self.receiver is not None
        consumer = self._consumer
        cluster = await self._producer.client.fetch_all_metadata()
        present = cluster.topics()
        wanted = [t for t in self.receiver.topics if t in present]
        tps = frozenset(TopicPartition(t, p) for t in wanted for p in (cluster.partitions_for_topic(t) or ()))
        if tps != current:
            consumer.assign(sorted(tps))
            self._assigned = tuple(sorted(f"{tp.topic}/{tp.partition}" for tp in tps))
            log.info("Kafka consumer reads %d partition(s) of %d topic(s)", len(tps), len(wanted))
        return tps, len(wanted) == len(self.receiver.topics)

    async def _consume_loop(self) -> None:
        """Read, check, store, dead-letter, commit; later batches are checked while an earlier one is stored.

        Up to ``check_ahead`` batches are read and handed to the checks ahead of the one being
        stored, so neither the checks nor the storing wait for the other. Batches are stored in
        the order read, each in one commit; offsets are committed only after the batch is
        stored and its dead letters are in Kafka.
        """
        from aiokafka.errors import KafkaError

        assert self.receiver is not None and self._topics is not None
        loop = asyncio.get_running_loop()
        consumer = self._consumer
        try:  # made at start where allowed, so a refusal shows before the first bad message
            await self._topics.ensure([dead_letter_topic(self.me)])
        except Unavailable as exc:
            self._problem("dead-letter", exc.message)
        except KafkaError as exc:
            self._problem("dead-letter", f"cannot create {dead_letter_topic(self.me)}: {exc!r}")
        state = _ConsumeState(backoff=Backoff(maximum=self.options.max_backoff))
        next_refresh = 0.0
        ahead = max(1, self.options.check_ahead)
        # the batches being checked and stored, oldest first: each stores after the one before it
        finishing: collections.deque[asyncio.Task[bool]] = collections.deque()
        try:
            while not self._stopping.is_set():
                if loop.time() >= next_refresh:
                    try:
                        state.assigned, complete = await self._refresh_assignment(state.assigned)
                        self._ok("subscriptions")
                    except KafkaError as exc:
                        self._problem("subscriptions", f"cannot read topic metadata ({exc!r})")
                        complete = False
                    interval = self.options.metadata_interval
                    next_refresh = loop.time() + (interval if not complete else interval * 10)
                if not state.assigned:
                    await self._pause(self.options.metadata_interval)
                    continue
                data = await consumer.getmany(timeout_ms=500, max_records=self.options.max_records)
                raw = _plain_messages(data)
                ends = {tp: batch[-1].offset + 1 for tp, batch in data.items() if batch}
                del data
                if raw:
                    before = finishing[-1] if finishing else None
                    finishing.append(asyncio.create_task(
                        self._finish(ends, raw, self._start_check(raw), state, before)))
                while finishing and (len(finishing) > ahead or finishing[0].done()):
                    if not await finishing.popleft():
                        return  # stopping before Kafka had the dead letters: offsets stay uncommitted
                if not raw and not finishing and state.uncommitted:
                    await self._commit(state)  # a commit that failed before
            while finishing:  # stopping: the batches in hand are stored and committed first
                await finishing.popleft()
        finally:
            if finishing:  # a store under way still commits; the offsets of the rest are read again later
                for task in finishing:
                    task.cancel()
                await asyncio.gather(*finishing, return_exceptions=True)

    def _start_check(self, raw: list[tuple[Any, ...]]) -> tuple[asyncio.Future[Any], bool]:
        """Start checking a batch: in the helper process (True) where there is one, else in the check thread."""
        pool = self._pool
        if pool is not None and len(raw) >= self.options.check_process_min_batch and pool.usable():
            try:
                return asyncio.wrap_future(pool.submit(raw, self.current_directory())), True
            except Exception as exc:  # noqa: BLE001 - a broken helper: check here
                pool.fail(exc)
        return asyncio.get_running_loop().run_in_executor(self._chk_exec, self._check_here, raw), False

    def _check_here(self, raw: list[tuple[Any, ...]]) -> list[Accepted | Rejected]:
        assert self.receiver is not None
        return self.receiver.check_many([_new(Incoming, m) for m in raw])

    async def _checked(self, raw: list[tuple[Any, ...]], checking: tuple[asyncio.Future[Any], bool]) -> CheckedBatch:
        """The batch checked; what the helper could not check is checked here."""
        future, pooled = checking
        if not pooled:
            local: list[Accepted | Rejected] = await future
            return CheckedBatch.of(local)
        try:
            pool = self._pool
            if pool is not None and not pool.available():  # sent while the helper starts: wait, but not forever
                limit = self.options.check_process_start_timeout
                try:
                    packed = await asyncio.wait_for(asyncio.shield(future), limit)
                except TimeoutError:
                    raise HelperError(f"it did not start within {limit:g} s") from None
            else:
                packed = await future
            return unpack_outcomes(raw, packed)
        except Exception as exc:  # noqa: BLE001 - the helper failed, answered nonsense or never started: check here
            if self._pool is not None:
                self._pool.fail(exc)
        return CheckedBatch.of(await asyncio.get_running_loop().run_in_executor(self._chk_exec, self._check_here, raw))

    async def _finish(self, ends: dict[Any, int], raw: list[tuple[Any, ...]],
                      checking: tuple[asyncio.Future[Any], bool], state: _ConsumeState,
                      before: asyncio.Task[bool] | None = None) -> bool:
        """Store a checked batch, send its dead letters, commit offsets; False: stopping before Kafka had them.

        ``before``: the batch read before this one, which must be stored and committed first.
        """
        assert self.receiver is not None
        checked = await self._checked(raw, checking)
        if before is not None and not await before:
            return False
        result: BatchResult = await asyncio.get_running_loop().run_in_executor(
            self._sub_exec, self.receiver.store_batch, checked)
        self._received += result.received
        self._stored += result.stored
        self._quarantined += len(result.rejected)
        if result.rejected and not await self._dead_letter(result.rejected):
            return False
        state.uncommitted.update(ends)
        await self._commit(state)
        return True

    async def _commit(self, state: _ConsumeState) -> None:
        from aiokafka.errors import KafkaError
        from aiokafka.structs import OffsetAndMetadata

        for tp in [tp for tp in state.uncommitted if tp not in state.assigned]:
            del state.uncommitted[tp]  # no longer read (its topic is gone): nothing to commit there
        if not state.uncommitted:
            return
        try:
            await self._consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in state.uncommitted.items()})
            state.uncommitted.clear()
            self._ok("consume")
            state.backoff.reset()
        except KafkaError as exc:
            self._problem("consume", f"committing offsets failed ({exc!r}); records are stored, the "
                          "offsets are committed again")
            await self._pause(state.backoff.delay())

    async def _dead_letter(self, rejected: list[Rejected]) -> bool:
        """Send refused messages to the dead-letter topic; retried until Kafka has them (False: stopping)."""
        from aiokafka.errors import KafkaError

        assert self._topics is not None
        topic = dead_letter_topic(self.me)
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        backoff = Backoff(maximum=self.options.max_backoff)
        while not self._stopping.is_set():
            try:
                await self._topics.ensure([topic])
                futures = [await self._producer.send(topic, value=r.msg.value if r.msg.value is not None or
                                                     r.msg.key is not None else b"",
                                                     key=r.msg.key, headers=r.dead_letter_headers(self.me, when))
                           for r in rejected]
                failures = [r for r in await asyncio.gather(*futures, return_exceptions=True)
                            if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
                self._ok("dead-letter")
                return True
            except (TimeoutError, KafkaError, Unavailable) as exc:
                self._topics.forget()
                text = exc.message if isinstance(exc, Unavailable) else repr(exc)
                self._problem("dead-letter", f"cannot write {topic} ({text}); the messages are quarantined, "
                              "sending is retried")
                await self._pause(backoff.delay())
        return False

    # ---- helpers for operators and tests ----------------------------------------------
    async def drain(self, timeout: float = 60.0) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pending = await asyncio.to_thread(self.store.outbox_pending_count)
            if pending == 0:
                return True
            self.notify()
            await asyncio.sleep(0.05)
        return False
