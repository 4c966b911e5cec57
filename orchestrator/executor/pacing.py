"""How fast a wave goes: as fast as ARM's own signals allow, not a constant.

Within a wave nothing but ARM decides how many apps are in progress. ARM gives three kinds of signal,
and the pacer follows each with its own mechanism:

* **Rate.** ARM meters requests with token buckets per subscription and per tenant, reads and writes
  apart, and every response says what is left (`x-ms-ratelimit-remaining-{subscription,tenant}-
  {reads,writes}`). `_Bucket` mirrors one of them: the count ARM last reported, less every call of
  this process that count may not include yet: those admitted and not yet sent, and those sent and
  not yet answered (ARM may have taken their tokens after it counted; assuming it has not would let
  a burst of hundreds of calls in flight overdraw the bucket by as many). Every request the gateway
  sends waits here first (`sending`): the engine's reads, the SDK poller's polls and final reads,
  and each transport retry of a 429 alike. A request that did not wait would take a token the mirror
  never granted, and a wave's operations ending together, each followed by a poll, a final read and
  a verification, overdrew the tenant's read bucket that way. A call goes at once while the mirror
  holds more than `reserve` (room for other clients of the same subscription). When it runs dry, one
  call at a time goes as a probe; its answer carries the new count and releases as many queued calls
  as that count allows. The mirror takes ARM's count as it is only from a call that was out alone
  (see `observe_response`), and two such counts, with the tokens this process took between them,
  give the rate ARM refills the bucket at (`_learn_refill`). Once it is known, the mirror adds the
  refill between answers, and a probe waits for a token to come back: probing once per round trip
  outpaced the refill, drained the bucket to nothing and drew a 429 on every other probe (hundreds
  per wave at time scale 0.2). The client so drains a bucket at the pace ARM refills it without
  being told the refill rate, and a bucket shared with other clients is read, not assumed (their
  calls make the rate look slower, never faster). A 429 closes the bucket until its Retry-After and
  halves the rate the mirror went by. A subscription's calls count in its own tenant's bucket, named
  from the plan (`name_tenants`). The one call admitted ahead of its request is a write whose
  re-read comes first (`reserve`): the PUT then follows that read at once.
* **Pushback.** A 409 or 503 (or a 429 on a write, which the transport does not retry) halves the
  subscription's window of apps in progress, at most once per `decrease_gap` (multiplicative
  decrease); each write ARM accepts widens it by 1/window, about one app more per round of writes
  (additive increase). The window starts unset, i.e. unlimited, until ARM first pushes back.
* **Operation time.** The SDK poller waits each operation's Retry-After between polls. Right after
  this process submits a write, `head_start()` first sleeps through the shortest operation already
  seen to succeed in this run (learned from ARM, not configured: the operation's own `endTime -
  startTime` when its status gives both, else measured up to the poll that saw it end, which is up
  to one Retry-After late). A 300 s update polled every 10 s costs ~30 polls otherwise and one
  this way when updates take about as long; a longer one is then polled at its Retry-After, so its
  end is seen within one Retry-After, as with polling from the start. (Sleeping one Retry-After
  less, as before, saw no end sooner when operations take alike: it cost every app a poll, 3,500
  requests in a 10,000-app run.)

`global_limit` and `per_subscription` remain as the user's explicit blast-radius limits; both are unset
by default. Waiting calls queue per bucket (FIFO) and are woken one by one: 10,000 apps waiting on a
dry bucket cost nothing until a report frees tokens, and at most one timer task per bucket exists.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.executor.durations import scaled, seconds
from orchestrator.gateway import CallInfo

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
CallKind = Literal["read", "write"]

# The places `Pacer.reserve` admitted for the current task: (pacer, subscription, kind, when).
_RESERVED: ContextVar[tuple[tuple[Pacer, str, CallKind, float], ...]] = ContextVar("reserved", default=())

# Two exact counts make a sample of a bucket's refill rate once ARM refilled this many tokens between
# them: its counts are whole tokens, so samples closer together would mostly measure the rounding.
_REFILL_SAMPLE_TOKENS = 8

# Statuses that say "slow down" about the subscription (409: another operation holds the resource or
# the service is busy; 503: ARM or the resource provider sheds load).
_PUSHBACK = frozenset({409, 503})


@dataclass(frozen=True)
class PacingPolicy:
    # Tokens the mirror leaves in a bucket for calls it does not see (other clients).
    reserve: int = 20
    # An admitted call not seen sent within this long is taken not to go (refused before the wire).
    send_grace: float = seconds(30.0)
    # A 429 without Retry-After closes the bucket this long.
    default_retry_after: float = seconds(1.0)
    # At most one multiplicative decrease of a subscription's window per this many seconds.
    decrease_gap: float = seconds(5.0)
    # The first poll of a fresh operation waits through this share of the shortest one seen.
    head_start_share: float = 1.0
    # Before any operation of the run was seen to end: operations polled from the start (the others
    # wait for the first end; see `head_start`).
    probes: int = 3

    def scaled(self, factor: float) -> PacingPolicy:
        return scaled(self, factor)


@dataclass
class _Bucket:
    """The client's mirror of one ARM token bucket."""

    # ARM's count as the mirror keeps it, as of `counted_at` (see `Pacer.observe_response`); None: no
    # count yet. Between answers the mirror adds what ARM refills meanwhile (`_level`).
    remaining: float | None = None
    counted_at: float = 0.0
    size: int = 0  # the highest count ARM reported: the bucket's size, as near as the mirror knows
    last: tuple[float, int] | None = None  # the latest answer's count, and when it came
    refill: float = 0.0  # tokens per second ARM adds, learned from its exact counts (0: not yet)
    # The exact count the next refill sample is measured from: when, the count, and the tokens this
    # process's calls took since (see `Pacer._learn_refill`).
    since: tuple[float, int, int] | None = None
    admitted: deque[float] = field(default_factory=deque)  # when each admitted call not yet sent was
    sent: int = 0  # calls sent and not yet answered
    alone: bool = False  # the call out went when no other was out, and none went since
    closed_until: float = 0.0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    timer: asyncio.Task[None] | None = None
    timer_due: float = math.inf


@dataclass
class _Window:
    """Apps in progress in one subscription, and the AIMD window ARM's pushback sets on them."""

    in_flight: int = 0
    peak: int = 0
    limit: float | None = None  # None: no pushback yet, no limit
    last_decrease: float = -math.inf
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Pacer:
    def __init__(
        self,
        *,
        global_limit: int | None = None,
        per_subscription: int | None = None,
        policy: PacingPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for value in (global_limit, per_subscription):
            if value is not None and value < 1:
                raise ValueError("concurrency limits must be at least 1")
        self.global_limit = global_limit
        self.per_subscription = per_subscription
        self.policy = policy or PacingPolicy()
        self._clock = clock
        self._sleep = sleep
        self._global = asyncio.Semaphore(global_limit) if global_limit else None
        self._caps: dict[str, asyncio.Semaphore] = {}
        self._windows: dict[str, _Window] = {}
        self._buckets: dict[tuple[str, str, CallKind], _Bucket] = {}
        self._tenant_of: dict[str, str] = {}
        self._shortest_operation: float | None = None
        self._probing = 0
        self._ended = asyncio.Event()  # some operation of this run was seen to end (any outcome)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.throttle_events = 0
        self.pushbacks = 0

    # -- apps in progress --------------------------------------------------------------------------

    @property
    def peak_per_subscription(self) -> dict[str, int]:
        return {key: w.peak for key, w in self._windows.items()}

    def window(self, subscription_id: str) -> float | None:
        """The subscription's current AIMD window (None: ARM has not pushed back)."""
        found = self._windows.get(subscription_id.lower())
        return found.limit if found else None

    @asynccontextmanager
    async def slot(self, subscription_id: str) -> AsyncIterator[None]:
        """Hold one app's place for its re-read, write and operation."""
        key = subscription_id.lower()
        window = self._windows.setdefault(key, _Window())
        async with _maybe(self._cap(key)), _maybe(self._global):
            if window.waiters or not self._fits(window):
                future = asyncio.get_running_loop().create_future()
                window.waiters.append(future)
                try:
                    await future  # _release counted us in
                except asyncio.CancelledError:
                    if future.done() and not future.cancelled():  # counted in, then cancelled
                        window.in_flight -= 1
                        self._release(window)
                    raise
            else:
                window.in_flight += 1
            window.peak = max(window.peak, window.in_flight)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                window.in_flight -= 1
                self.in_flight -= 1
                self._release(window)

    def _cap(self, key: str) -> asyncio.Semaphore | None:
        if self.per_subscription is None:
            return None
        cap = self._caps.get(key)
        if cap is None:
            cap = self._caps[key] = asyncio.Semaphore(self.per_subscription)
        return cap

    @staticmethod
    def _fits(window: _Window) -> bool:
        return window.limit is None or window.in_flight + 1 <= window.limit

    def _release(self, window: _Window) -> None:
        while window.waiters and self._fits(window):
            future = window.waiters.popleft()
            if not future.done():
                window.in_flight += 1
                future.set_result(None)

    def _pushback(self, subscription_id: str) -> None:
        window = self._windows.setdefault(subscription_id.lower(), _Window())
        now = self._clock()
        self.pushbacks += 1
        if now - window.last_decrease < self.policy.decrease_gap:
            return  # one decrease per round: the other answers of this burst say the same thing
        window.last_decrease = now
        base = window.limit if window.limit is not None else max(window.in_flight, 1)
        window.limit = max(1.0, base / 2)

    def _accepted(self, subscription_id: str) -> None:
        window = self._windows.get(subscription_id.lower())
        if window is not None and window.limit is not None:
            window.limit += 1 / window.limit
            self._release(window)

    # -- calls: the bucket mirrors ---------------------------------------------------------------------

    def name_tenants(self, tenant_of: Mapping[str, str]) -> None:
        """Each subscription's tenant (from the plan): ARM meters a subscription's calls in its own
        tenant's bucket, whichever identity calls (a publisher's over Lighthouse too)."""
        self._tenant_of.update({sub.lower(): tenant.lower() for sub, tenant in tenant_of.items()})

    async def reserve(self, tenant_id: str, subscription_id: str, kind: CallKind) -> None:
        """Admit this task's next call of this kind to the subscription now, ahead of its request:
        when the request comes, `sending` lets it go at once (see `unused`). The place belongs to
        the calling task (the SDK sends in its caller's task): another task's request, a retry of
        someone else's write say, still waits its own turn."""
        self.name_tenants({subscription_id: tenant_id})
        for bucket in self._metered(tenant_id, subscription_id, kind):
            await self._acquire(bucket)
        _RESERVED.set((*_RESERVED.get(), (self, subscription_id.lower(), kind, self._clock())))

    def unused(self, tenant_id: str, subscription_id: str, kind: CallKind) -> None:
        """The call this task reserved will not be made after all: it holds no place any more."""
        if not self._take_reservation(subscription_id, kind):
            return
        for bucket in self._metered(tenant_id, subscription_id, kind):
            if bucket.admitted:
                bucket.admitted.pop()
                self._wake(bucket)

    def _take_reservation(self, subscription_id: str, kind: CallKind) -> bool:
        """Whether this task holds a place `reserve` admitted for this call (it is then used up). One
        older than the send grace holds none: `_admit` has let it go."""
        held = _RESERVED.get()
        for index, (pacer, sub, reserved_kind, at) in enumerate(held):
            if pacer is self and sub == subscription_id.lower() and reserved_kind == kind:
                _RESERVED.set(held[:index] + held[index + 1 :])
                return self._clock() - at < self.policy.send_grace
        return False

    async def sending(self, tenant_id: str, subscription_id: str | None, method: str) -> None:
        """Wait until ARM's buckets for this request have room, then count it sent. The gateway calls
        this right before each request leaves (transport retries and operation polls included), then
        `observe_response` with its answer. `tenant_id`: the calling identity's, for subscriptions
        `name_tenants` did not name."""
        if subscription_id is None:
            return  # tenant-level requests (subscription listings) are not mirrored
        tenant = self._tenant(tenant_id, subscription_id)
        kind = _kind(method)
        metered = self._metered(tenant, subscription_id, kind)
        if not self._take_reservation(subscription_id, kind):
            for bucket in metered:
                await self._acquire(bucket)
        for bucket in metered:
            if bucket.admitted:  # most likely the call admitted first; this one's is counted all the same
                bucket.admitted.popleft()
            bucket.alone = not bucket.sent
            bucket.sent += 1

    def _bucket(self, scope: str, key: str, kind: CallKind) -> _Bucket:
        found = self._buckets.get((scope, key, kind))
        if found is None:
            found = self._buckets[(scope, key, kind)] = _Bucket()
        return found

    async def _acquire(self, bucket: _Bucket) -> None:
        if not bucket.waiters and self._admit(bucket):
            return
        future = asyncio.get_running_loop().create_future()
        bucket.waiters.append(future)
        self._schedule(bucket)
        await future  # _wake admitted us

    def _admit(self, bucket: _Bucket) -> bool:
        now = self._clock()
        if bucket.closed_until > now:
            return False
        while bucket.admitted and now - bucket.admitted[0] >= self.policy.send_grace:
            bucket.admitted.popleft()
        unanswered = len(bucket.admitted) + bucket.sent
        level = self._level(bucket, now)
        # No count yet: nothing to go by (ARM's first answers will say). Dry, or about to be: one
        # call goes as a probe to find out what ARM has refilled, once no other call is out (their
        # answers will say as much; the gateway reports each one's) and, when the refill rate is
        # known, once a token has come back: probing faster than ARM refills drains the bucket to
        # nothing and draws a 429 on every other probe.
        probe = not unanswered and (not bucket.refill or self._refilled_at(bucket) <= now)
        if level is None or level - unanswered >= self.policy.reserve + 1 or probe:
            bucket.admitted.append(now)
            return True
        return False

    @staticmethod
    def _refilled_at(bucket: _Bucket) -> float:
        """With nothing out and the refill rate known: when ARM will have a token for a probe, going
        by its latest count (the mirror's own count, lowered by every answer while many calls were
        out, can be far below it)."""
        if bucket.last is None or not bucket.refill:
            return -math.inf
        at, count = bucket.last
        return at + max(0.0, 1 - count) / bucket.refill

    @staticmethod
    def _level(bucket: _Bucket, now: float) -> float | None:
        """What the mirror says is in the bucket now, before the calls still unanswered: ARM's count
        as kept, plus its refill since (never above the bucket's size)."""
        if bucket.remaining is None:
            return None
        refilled = bucket.remaining + bucket.refill * (now - bucket.counted_at)
        return min(refilled, max(float(bucket.size), bucket.remaining))

    def _wake(self, bucket: _Bucket) -> None:
        while bucket.waiters:
            if bucket.waiters[0].done():  # its task was cancelled
                bucket.waiters.popleft()
                continue
            if not self._admit(bucket):
                break
            bucket.waiters.popleft().set_result(None)
        if bucket.waiters:
            self._schedule(bucket)
        elif bucket.timer is not None:  # nothing waits: no timer left behind
            bucket.timer.cancel()
            bucket.timer, bucket.timer_due = None, math.inf

    def _schedule(self, bucket: _Bucket) -> None:
        """Make sure something wakes the bucket's queue: its reopening, an admitted call's grace
        running out, or, with nothing out, the refill of the token a probe waits for (the answers to
        the calls out wake it too)."""
        now = self._clock()
        if bucket.closed_until > now:
            due = bucket.closed_until
        elif bucket.admitted:  # an admitted call that never leaves frees its place after the grace
            due = bucket.admitted[0] + self.policy.send_grace
        elif not bucket.sent and bucket.refill:
            due = self._refilled_at(bucket)
        else:
            return  # the answers to the calls out wake the queue
        if bucket.timer is not None and not bucket.timer.done():
            if bucket.timer_due <= due:
                return
            bucket.timer.cancel()
        bucket.timer_due = due
        bucket.timer = asyncio.get_running_loop().create_task(self._wake_at(bucket, due - now))

    async def _wake_at(self, bucket: _Bucket, delay: float) -> None:
        await self._sleep(max(delay, 0.0))
        bucket.timer, bucket.timer_due = None, math.inf
        self._wake(bucket)

    # -- what ARM said -----------------------------------------------------------------------------------

    def _tenant(self, identity_tenant: str, subscription_id: str) -> str:
        """The tenant whose bucket a call to the subscription takes from: the one `name_tenants`
        named, else the tenant the gateway reports (the identity's)."""
        return self._tenant_of.get(subscription_id.lower()) or identity_tenant.lower()

    def _metered(self, tenant: str, subscription_id: str, kind: CallKind) -> tuple[_Bucket, _Bucket]:
        """The subscription's and the tenant's bucket a call of this kind takes a token from."""
        return (
            self._bucket("subscription", subscription_id.lower(), kind),
            self._bucket("tenant", tenant.lower(), kind),
        )

    def observe_response(
        self,
        tenant_id: str,
        subscription_id: str | None,
        method: str,
        status: int,
        info: CallInfo,
    ) -> None:
        """ARM's answer to a request `sending` let go (status 0: none came).

        ARM's count in an answer is exact only for a call that was out alone: with others out, ARM
        may have counted some of them already, and answers overtake each other (an older, higher
        count can come last). So the mirror takes a count as it is only from such an answer (a
        probe's); otherwise it goes down by the answered call, or to ARM's count when that is lower.
        It rises again by ARM's refill, once its rate is known, and when a probe reads the bucket
        afresh."""
        if subscription_id is None:
            return
        sub = subscription_id.lower()
        tenant = self._tenant(tenant_id, sub)
        kind = _kind(method)
        reports: tuple[tuple[str, str, CallKind, int | None], ...] = (
            ("subscription", sub, "read", info.remaining_reads),
            ("subscription", sub, "write", info.remaining_writes),
            ("tenant", tenant, "read", info.tenant_remaining_reads),
            ("tenant", tenant, "write", info.tenant_remaining_writes),
        )
        now = self._clock()
        for bucket in self._metered(tenant, sub, kind):
            bucket.sent = max(0, bucket.sent - 1)
        for scope, key, bucket_kind, count in reports:
            bucket = self._bucket(scope, key, bucket_kind)
            mine = bucket_kind == kind  # this call took a token from it
            exact = mine and bucket.alone and not bucket.sent
            if count is not None:
                bucket.size, bucket.last = max(bucket.size, count), (now, count)
            if mine:
                self._learn_refill(bucket, count if exact else None, now, took=status not in (0, 429))
            level = self._level(bucket, now)
            remaining = None if count is None else float(count)
            if level is not None and (not exact or count is None):
                remaining = min(level - (1 if mine and status else 0), level if count is None else count)
            if remaining is not None:
                bucket.remaining, bucket.counted_at = remaining, now
            if remaining is not None or mine:
                self._wake(bucket)
        if status == 429:
            self.throttle_events += 1
            # Close the bucket ARM says is empty; when the headers do not say, the subscription's.
            empty = [(s, k, bk) for s, k, bk, r in reports if r is not None and r <= 0 and bk == kind]
            for scope, key, bucket_kind in empty or [("subscription", sub, kind)]:
                bucket = self._bucket(scope, key, bucket_kind)
                bucket.refill /= 2  # it refills slower than the mirror thought (or others draw on it)
                self._close(bucket, info.retry_after)
        if status in _PUSHBACK or (status == 429 and kind == "write"):
            self._pushback(sub)
        elif kind == "write" and method.upper() in ("PUT", "PATCH") and status in (200, 201, 202):
            self._accepted(sub)

    @staticmethod
    def _learn_refill(bucket: _Bucket, exact: int | None, now: float, *, took: bool) -> None:
        """Follow the tokens this process's calls took between two exact counts (those of calls out
        alone); once ARM refilled `_REFILL_SAMPLE_TOKENS` between them, their difference over the
        time between is the refill rate. A count at the bucket's size starts afresh: a full bucket
        hides how fast it refills. Other clients' calls make the rate look slower, never faster."""
        if bucket.since is None:
            if exact is not None:
                bucket.since = (now, exact, 0)
            return
        start, counted, taken = bucket.since
        taken += 1 if took else 0
        if exact is None:
            bucket.since = (start, counted, taken)
        elif exact >= bucket.size:
            bucket.since = (now, exact, 0)
        elif exact - counted + taken >= _REFILL_SAMPLE_TOKENS and now > start:
            bucket.refill = (exact - counted + taken) / (now - start)
            bucket.since = (now, exact, 0)
        else:
            bucket.since = (start, counted, taken)

    def _close(self, bucket: _Bucket, retry_after: float | None) -> None:
        wait = retry_after if retry_after is not None else self.policy.default_retry_after
        bucket.closed_until = max(bucket.closed_until, self._clock() + wait)
        if bucket.waiters:
            self._schedule(bucket)

    def throttled(self, subscription_id: str, retry_after: float | None) -> None:
        """A 429 reached the engine (the transport's retries were spent): close the subscription's
        buckets until its Retry-After."""
        sub = subscription_id.lower()
        for kind in ("read", "write"):
            self._close(self._bucket("subscription", sub, kind), retry_after)

    # -- operation time --------------------------------------------------------------------------------

    def head_start_seconds(self) -> float:
        """How long a freshly submitted operation can go unpolled (0 until one has been seen to end)."""
        if self._shortest_operation is None:
            return 0.0
        return self._shortest_operation * self.policy.head_start_share

    async def head_start(self) -> None:
        """Wait before the first poll of an operation this process just started.

        Once an operation was seen to succeed: its duration (`head_start_seconds`). Before any was
        seen to end, the first `probes` operations are polled from the start and the others wait
        for the first of any to end, then poll: theirs started no earlier than the probes', so the
        wave's last end is seen no later, and a canary wave of 200 apps polls ~30 times per probe
        instead of ~30 times per app. Any end counts (`operation_ended`), a failure too."""
        delay = self.head_start_seconds()
        if delay > 0:
            await self._sleep(delay)
            return
        if self._shortest_operation is not None or self._ended.is_set():
            return
        if self._probing < self.policy.probes:
            self._probing += 1
            return
        await self._ended.wait()

    def operation_ended(self) -> None:
        """Following an operation ended (succeeded, failed, or could not go on): release the waiters."""
        self._ended.set()

    def operation_took(self, seconds: float) -> None:
        """A write this process submitted was seen to succeed `seconds` after ARM accepted it."""
        if seconds > 0 and (self._shortest_operation is None or seconds < self._shortest_operation):
            self._shortest_operation = seconds


def _kind(method: str) -> CallKind:
    """Which of ARM's buckets a request of this HTTP method takes from."""
    return "read" if method.upper() == "GET" else "write"


@asynccontextmanager
async def _maybe(semaphore: asyncio.Semaphore | None) -> AsyncIterator[None]:
    if semaphore is None:
        yield
        return
    async with semaphore:
        yield
