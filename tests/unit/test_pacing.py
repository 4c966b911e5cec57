"""The pacer follows ARM's signals: bucket mirrors fed by the rate-limit headers, 429s, pushback, caps."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.executor.pacing import Pacer, PacingPolicy
from orchestrator.gateway import CallInfo


class FakeTime:
    """A fake clock. `auto`: a sleep advances it; otherwise a sleep lasts until the test advances it."""

    def __init__(self, *, auto: bool = True) -> None:
        self.now = 0.0
        self.auto = auto
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        target = self.now + seconds
        if self.auto:
            self.now = max(self.now, target)
        while self.now < target:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)


def pacer(time: FakeTime, **policy: float) -> Pacer:
    return Pacer(policy=PacingPolicy(**policy), clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]


async def started(tasks: list[asyncio.Task[None]]) -> int:
    for _ in range(5):
        await asyncio.sleep(0)
    return sum(1 for t in tasks if t.done())


async def test_unreported_bucket_and_default_settings_do_not_limit() -> None:
    time = FakeTime()
    p = pacer(time)
    assert p.global_limit is None and p.per_subscription is None
    for _ in range(1000):
        await p.sending("t", "sub", "PUT")
    assert time.slept == []


async def answer(p: Pacer, method: str, status: int, info: CallInfo, sub: str = "sub") -> None:
    """A request the pacer lets go, then ARM's answer to it (as the gateway reports them)."""
    await p.sending("t", sub, method)
    p.observe_response("t", sub, method, status, info)


async def test_mirror_admits_what_arm_reports_then_probes_one_at_a_time() -> None:
    time = FakeTime(auto=False)
    p = pacer(time, reserve=20)
    await answer(p, "PUT", 201, CallInfo(remaining_writes=25))  # a call out alone: its count is exact
    tasks = [asyncio.create_task(p.sending("t", "sub", "PUT")) for _ in range(12)]
    assert await started(tasks) == 5  # 25 reported - 20 reserve: five go at once, the rest queue
    # Answers to calls out together: ARM may have counted the others already, or not, so the mirror
    # only goes down (by the call answered, or to ARM's count when lower) and none goes.
    for left in (23, 22, 21, 20, 24):
        p.observe_response("t", "sub", "PUT", 201, CallInfo(remaining_writes=left))
    # Nothing is out, the mirror is at the reserve: one call goes as a probe, the others wait for it.
    assert await started(tasks) == 6
    p.observe_response("t", "sub", "PUT", 201, CallInfo(remaining_writes=24))  # alone: exact
    assert await started(tasks) == 10  # 24 - 20: four more
    # Reads of the same subscription are another bucket: not held up.
    await asyncio.wait_for(p.sending("t", "sub", "GET"), 1)


async def test_a_burst_in_flight_does_not_overdraw_the_bucket() -> None:
    """ARM's count in an answer may not include the calls still unanswered: the mirror takes them off
    until their own answers come, so a burst cannot spend the same tokens twice."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=10))
    tasks = [asyncio.create_task(p.sending("t", "sub", "GET")) for _ in range(30)]
    assert await started(tasks) == 10
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=9))
    assert await started(tasks) == 10  # 9 left less 9 unanswered: not nine more calls
    for _ in range(9):
        p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=5))
    assert await started(tasks) == 11  # all answered, the mirror spent: a probe reads the bucket
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=5))
    assert await started(tasks) == 16  # the five ARM says are left


async def test_an_older_count_arriving_late_does_not_raise_the_mirror() -> None:
    """Answers overtake each other: with two calls out, neither answer's count is exact."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=10))
    await p.sending("t", "sub", "GET")
    await p.sending("t", "sub", "GET")
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=5))  # the second, counted last
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=6))  # the first, answered last
    tasks = [asyncio.create_task(p.sending("t", "sub", "GET")) for _ in range(10)]
    assert await started(tasks) == 4  # 5, less the late answer's call: never back up to 6


async def burst(p: Pacer, calls: int, *, left: int) -> None:
    """Reads out together, then their answers, each with ARM's count `left` (none of them exact)."""
    for _ in range(calls):
        await p.sending("t", "sub", "GET")
    for _ in range(calls):
        p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=left))


async def test_a_dry_bucket_is_probed_at_the_pace_arm_refills_it() -> None:
    """Two exact counts (of calls out alone) and the tokens taken between them give ARM's refill
    rate. Dry, the next probe then waits for a token to come back instead of going at once: one
    probe per round trip would outpace the refill and draw a 429 on every other one."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=49))  # alone: exact
    await burst(p, 40, left=9)
    time.now = 2.0
    await answer(p, "GET", 200, CallInfo(remaining_reads=28))  # a probe: 49 - 41 taken + 20 refilled
    tasks = [asyncio.create_task(p.sending("t", "sub", "GET")) for _ in range(40)]
    assert await started(tasks) == 28
    for _ in range(28):
        p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=0))
    assert await started(tasks) == 28  # dry, nothing out: a token comes back in 1/10 s
    time.now = 2.05
    assert await started(tasks) == 28
    time.now = 2.1
    await asyncio.wait_for(tasks[28], 1)
    assert await started(tasks) == 29


async def test_a_429_on_a_probe_halves_the_refill_rate_it_went_by() -> None:
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0, default_retry_after=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=49))
    await burst(p, 40, left=9)
    time.now = 2.0
    await answer(p, "GET", 200, CallInfo(remaining_reads=16))  # 49 - 41 + 8 refilled: 4 a second
    await burst(p, 16, left=0)
    time.now = 2.25
    await asyncio.wait_for(p.sending("t", "sub", "GET"), 1)  # a token is due: the probe goes
    p.observe_response("t", "sub", "GET", 429, CallInfo(remaining_reads=0))  # others drew on it
    probe = asyncio.create_task(p.sending("t", "sub", "GET"))
    time.now = 2.6  # a token at 4 a second would be back
    assert await started([probe]) == 0
    time.now = 2.75  # at 2 a second
    await asyncio.wait_for(probe, 1)


async def test_a_full_bucket_teaches_no_refill_rate() -> None:
    """A count at the bucket's size says nothing of how fast it refilled (it may have been full for
    a while): dry again, the probe goes at once, as before any rate was known."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=49))
    await burst(p, 40, left=9)
    time.now = 100.0
    await answer(p, "GET", 200, CallInfo(remaining_reads=49))  # full again
    tasks = [asyncio.create_task(p.sending("t", "sub", "GET")) for _ in range(60)]
    assert await started(tasks) == 49
    for _ in range(49):
        p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=0))
    assert await started(tasks) == 50


async def test_answers_without_a_count_and_calls_that_never_leave_are_accounted() -> None:
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "GET", 200, CallInfo(remaining_reads=3))
    tasks = [asyncio.create_task(p.sending("t", "sub", "GET")) for _ in range(5)]
    assert await started(tasks) == 3
    # An answer without a count: ARM took its token all the same (2 left, less 2 unanswered).
    p.observe_response("t", "sub", "GET", 200, CallInfo())
    assert await started(tasks) == 3
    # No answer at all (a reset, a cancelled call): its place is freed and nothing is taken off.
    p.observe_response("t", "sub", "GET", 0, CallInfo())
    assert await started(tasks) == 4


async def test_a_write_reserved_ahead_of_its_read_goes_at_once_and_others_wait() -> None:
    """`reserve` admits an app's write before the re-read it depends on: that app's PUT then takes
    the place, while a request reserved by no one (a retry, a resumed write) waits its turn."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    await answer(p, "PUT", 201, CallInfo(remaining_writes=2))
    read = asyncio.Event()

    async def app() -> None:  # as `Writing.fresh`: reserve, re-read, PUT (the SDK sends in this task)
        await p.reserve("t", "sub", "write")
        await read.wait()
        await p.sending("t", "sub", "PUT")

    apps = [asyncio.create_task(app()) for _ in range(2)]
    await started(apps)
    other = asyncio.create_task(p.sending("t", "sub", "PUT"))
    assert await started([other]) == 0  # both places are the apps'
    read.set()
    assert await started(apps) == 2  # each app's PUT goes at once, ahead of the request waiting
    assert await started([other]) == 0
    for _ in apps:
        p.observe_response("t", "sub", "PUT", 201, CallInfo(remaining_writes=0))
    assert await started([other]) == 1  # nothing out: it goes as the probe


async def test_a_reserved_call_that_is_not_made_frees_its_place() -> None:
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0, send_grace=5)
    await answer(p, "PUT", 201, CallInfo(remaining_writes=2))

    async def refused() -> None:  # reserved, then refused before the wire (the token guard)
        await p.reserve("t", "sub", "write")

    async def stale() -> None:  # reserved, then the re-read finds nothing to write
        await p.reserve("t", "sub", "write")
        p.unused("t", "sub", "write")

    await asyncio.create_task(refused())
    await asyncio.create_task(stale())
    first = asyncio.create_task(p.sending("t", "sub", "PUT"))
    assert await started([first]) == 1  # the stale app's place came back at once
    second = asyncio.create_task(p.sending("t", "sub", "PUT"))
    assert await started([second]) == 0  # the refused app's place is held
    time.now = 5  # until the send grace
    await asyncio.wait_for(second, 1)


async def test_a_probe_that_never_leaves_frees_its_turn_after_the_grace() -> None:
    time = FakeTime()
    p = pacer(time, reserve=0, send_grace=2)
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=0))
    await p.reserve("t", "sub", "read")  # the probe; refused before the wire, it never leaves
    await asyncio.wait_for(p.reserve("t", "sub", "read"), 1)
    assert time.now >= 2


async def test_429_closes_the_empty_bucket_until_retry_after() -> None:
    time = FakeTime()
    p = pacer(time)
    p.observe_response("t", "hot", "GET", 429, CallInfo(remaining_reads=0, retry_after=30.0))
    await p.sending("t", "cold", "GET")  # another subscription is not slowed
    assert time.now == 0
    await p.sending("t", "hot", "PUT")  # nor another kind of call in the same subscription
    assert time.now == 0
    await p.sending("t", "hot", "GET")
    assert time.now >= 30
    assert p.throttle_events == 1


async def test_tenant_bucket_is_shared_by_the_tenants_subscriptions() -> None:
    time = FakeTime()
    p = pacer(time)
    p.name_tenants({"sub-a": "tenant", "sub-b": "tenant"})  # from the plan
    # Answers come under the calling identity (a publisher's, say), not the customer's tenant.
    p.observe_response("publisher", "sub-b", "GET", 429, CallInfo(tenant_remaining_reads=0, retry_after=5.0))
    await p.sending("publisher", "sub-a", "GET")  # sub-a's first call meets its tenant's bucket
    assert time.now >= 5  # sub-a's own bucket is fine; its tenant's is not


async def test_one_identity_across_tenants_mirrors_each_customer_tenants_bucket() -> None:
    """A publisher identity (Lighthouse) calls into many customer tenants: ARM meters each call in
    the subscription's own tenant, so the answers the gateway reports under the one identity feed
    the bucket of the tenant the plan names."""
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    p.name_tenants({"sub-a": "tenant-a", "sub-a2": "tenant-a", "sub-a3": "tenant-a"})
    p.name_tenants({"sub-b": "tenant-b", "sub-b2": "tenant-b"})
    for sub in ("sub-a", "sub-b"):
        await p.sending("publisher", sub, "GET")
    p.observe_response("publisher", "sub-a", "GET", 200, CallInfo(tenant_remaining_reads=0))
    p.observe_response("publisher", "sub-b", "GET", 200, CallInfo(tenant_remaining_reads=50))
    await asyncio.wait_for(p.sending("publisher", "sub-b2", "GET"), 1)  # tenant b has room
    probe = asyncio.create_task(p.sending("publisher", "sub-a2", "GET"))
    assert await started([probe]) == 1  # tenant a's bucket is dry: one call goes as a probe
    held = asyncio.create_task(p.sending("publisher", "sub-a3", "GET"))
    assert await started([held]) == 0  # and the next waits for its answer
    p.observe_response("publisher", "sub-a2", "GET", 200, CallInfo(tenant_remaining_reads=0))  # dry
    assert await started([held]) == 1  # the next probe


async def test_pushback_halves_the_window_and_accepted_writes_widen_it() -> None:
    time = FakeTime()
    p = pacer(time, decrease_gap=10)
    holders: list[asyncio.Event] = [asyncio.Event() for _ in range(8)]

    async def app(i: int) -> None:
        async with p.slot("sub"):
            await holders[i].wait()

    first = [asyncio.create_task(app(i)) for i in range(8)]
    await started([])
    assert p.in_flight == 8 and p.window("sub") is None
    p.observe_response("t", "sub", "PUT", 503, CallInfo())
    assert p.window("sub") == 4.0
    p.observe_response("t", "sub", "PUT", 409, CallInfo())  # same burst: no second decrease
    assert p.window("sub") == 4.0 and p.pushbacks == 2
    for i in range(6):
        holders[i].set()
    await asyncio.gather(*first[:6])
    more = [asyncio.Event() for _ in range(3)]

    async def later(i: int) -> None:
        async with p.slot("sub"):
            await more[i].wait()

    waiting = [asyncio.create_task(later(i)) for i in range(3)]
    await started([])
    assert p.in_flight == 4  # two still held, the window (4) lets two more in; the third waits
    p.observe_response("t", "sub", "PUT", 201, CallInfo())  # an accepted write widens the window
    assert p.window("sub") == pytest.approx(4.25)
    assert p.in_flight == 4
    for _ in range(4):
        p.observe_response("t", "sub", "PUT", 201, CallInfo())
    assert (p.window("sub") or 0) > 5
    await started([])
    assert p.in_flight == 5
    for event in (*holders, *more):
        event.set()
    await asyncio.gather(*first[6:], *waiting)
    time.now += 10
    p.observe_response("t", "sub", "PUT", 503, CallInfo())
    assert (p.window("sub") or 0) == pytest.approx(2.56, abs=0.01)  # 5.12 halved, a round later


async def test_user_caps_still_hold_when_set() -> None:
    p = Pacer(global_limit=3, per_subscription=2)
    peak = 0
    per_sub: dict[str, int] = {}
    peak_sub = 0

    async def app(sub: str) -> None:
        nonlocal peak, peak_sub
        async with p.slot(sub):
            per_sub[sub] = per_sub.get(sub, 0) + 1
            peak, peak_sub = max(peak, p.in_flight), max(peak_sub, per_sub[sub])
            await asyncio.sleep(0)
            per_sub[sub] -= 1

    await asyncio.gather(*(app(f"s{i % 2}") for i in range(30)))
    assert peak == 3 and peak_sub == 2
    with pytest.raises(ValueError):
        Pacer(global_limit=0)


async def test_head_start_follows_the_shortest_operation_seen() -> None:
    time = FakeTime()
    p = pacer(time, head_start_share=0.9)
    assert p.head_start_seconds() == 0  # nothing seen yet: poll from the start
    p.observe_response("t", "sub", "PUT", 201, CallInfo(retry_after=10.0))
    p.operation_took(320.0)
    p.operation_took(300.0)
    p.operation_took(0.0)  # nonsense is ignored
    assert p.head_start_seconds() == pytest.approx(300 * 0.9)  # Retry-After is not taken off
    await p.head_start()
    assert time.slept == [pytest.approx(270.0)]


async def test_a_429_that_reached_the_engine_closes_the_subscription_until_retry_after() -> None:
    time = FakeTime(auto=False)
    p = pacer(time, reserve=0)
    p.throttled("sub", 3.0)
    blocked = [asyncio.create_task(p.sending("t", "sub", method)) for method in ("GET", "PUT")]
    p.observe_response("t", "sub", "GET", 200, CallInfo(remaining_reads=50, remaining_writes=50))
    assert await started(blocked) == 0  # closed until the Retry-After, whatever the count says
    await asyncio.wait_for(p.sending("t", "other", "PUT"), 1)  # another subscription is not
    await answer(p, "PUT", 201, CallInfo(), sub="other")
    time.now = 3
    await asyncio.wait_for(asyncio.gather(*blocked), 1)


async def test_before_any_end_a_few_operations_probe_and_the_rest_wait_for_the_first_end() -> None:
    p = pacer(FakeTime(), probes=2)
    await p.head_start()
    await p.head_start()  # two probes poll from the start
    waiting = asyncio.ensure_future(p.head_start())
    await asyncio.sleep(0)
    assert not waiting.done()  # the third waits for an end
    p.operation_ended()  # any end: a failure releases them too
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(p.head_start(), 1)  # from then on nobody waits for it
