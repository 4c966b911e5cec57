"""The HTML pages: what a reviewer must see, everything escaped, nothing fetched at view time."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

from orchestrator.models import AppState, Decision
from orchestrator.render.html import render_plan_html, render_run_html
from tests.html_samples import EVIL_APP, EVIL_TENANT, GENERATED, START, sample_plan, sample_run


class _Collector(HTMLParser):
    """Every tag, attribute and text node, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((k, v or "") for k, v in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser


def _text(page: str) -> str:
    return " ".join(" ".join(_parse(page).text).split())


def test_plan_page_shows_the_counts() -> None:
    plan = sample_plan()
    text = _text(render_plan_html(plan, generated_at=GENERATED))
    counts = {d: sum(1 for i in plan.items if i.decision == d) for d in Decision}
    assert counts[Decision.UPDATE] and counts[Decision.CURRENT] and counts[Decision.SKIP]
    assert f"{len(plan.items)} apps" in text
    assert "3 tenants" in text
    for decision, n in counts.items():
        assert f"{n} {decision.value}" in text
    for wave in plan.waves:
        assert wave.name in text


def test_plan_page_lists_every_risk_with_its_app_high_first() -> None:
    plan = sample_plan()
    text = _text(render_plan_html(plan, generated_at=GENERATED))
    # One row per kind of risk, with how many apps and tenants carry it (not one row per app).
    assert "high widens-write 3 3" in text and "medium broad-wildcard 3 3" in text
    assert "low tightens 3 3" in text
    assert "adds Microsoft.Web/sites/write" in text
    assert text.index("adds Microsoft.Web/sites/write") < text.index("adds Microsoft.Storage/*")
    assert text.index("adds Microsoft.Storage/*") < text.index("removes config/list from exclusions")
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in text  # the change itself
    assert "could not list subscriptions" in text  # plan notes reach the reviewer


def test_plan_page_leads_with_the_change_and_shows_the_whole_digest() -> None:
    plan = sample_plan()
    text = _text(render_plan_html(plan, generated_at=GENERATED))
    first = text.index("What changes")
    assert first < text.index("Risks, by kind") < text.index("Not updated, by reason") < text.index("Summary")
    change = text[first : text.index("Risks, by kind")]
    assert "No longer denied" in change and "Denied from now on" in change
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action 24 3:" in change
    assert "Microsoft.Web/sites/config/list/action 3 3:" in change
    assert text.count(plan.digest) >= 2  # in the header and, selectable whole, in the summary
    held = text[text.index("Not updated, by reason") : text.index("Summary")]
    assert "skip 3 3 no write access" in held
    # Skipped apps never show a change in the per-app detail.
    every = text[text.index("Every app") :]
    assert "app-0-5" in every and "not updated" in every


def test_plan_page_colours_each_app_by_decision_per_tenant() -> None:
    plan = sample_plan()
    page = render_plan_html(plan, generated_at=GENERATED)
    cells = re.findall(r'<span class="cell" style="background:(#[0-9a-f]{6})" title="([^"]*)"', page)
    assert len(cells) == len(plan.items)
    drifted = [title for colour, title in cells if colour == "#ea580c"]
    assert len(drifted) == 1 and "drifted" in drifted[0]


def test_malicious_names_are_escaped_everywhere() -> None:
    for page in (
        render_plan_html(sample_plan(), generated_at=GENERATED),
        render_run_html(sample_run(), generated_at=GENERATED),
    ):
        parsed = _parse(page)
        assert "script" not in parsed.tags and "img" not in parsed.tags
        assert not any(k.startswith("on") for k, _ in parsed.attrs)
        assert "<script>" not in page and "<img" not in page
        assert "&lt;script&gt;" in page or "&lt;img" in page
        assert "Contoso &amp; &#34;Partners&#34; &lt;b&gt;" in page
        text = " ".join(parsed.text)
        assert EVIL_TENANT in text
    plan_page = render_plan_html(sample_plan(), generated_at=GENERATED)
    assert EVIL_APP in " ".join(_parse(plan_page).text)
    assert "(AuthorizationFailed) &lt;i&gt;" in plan_page


def test_pages_load_nothing_from_the_network() -> None:
    for page in (
        render_plan_html(sample_plan(), generated_at=GENERATED),
        render_run_html(sample_run(), generated_at=GENERATED),
    ):
        assert "@import" not in page and "url(" not in page
        # The only URL is the SVG namespace, which is an identifier and never fetched.
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
        assert urls <= {"http://www.w3.org/2000/svg"}
        assert "default-src 'none'" in page  # and the browser is told to refuse any fetch
        parsed = _parse(page)
        assert not {"link", "script", "iframe", "img", "object", "embed"} & set(parsed.tags)
        assert not {"src", "href", "srcset", "action", "data"} & {k for k, _ in parsed.attrs}


def test_run_page_shows_states_problems_and_waves_over_time() -> None:
    run = sample_run()
    page = render_run_html(run, generated_at=GENERATED, wave_names={0: "canary", 1: "wave-1", 2: "wave-2"})
    text = _text(page)
    states = {s: sum(1 for a in run.apps if a.state == s) for s in AppState}
    for state, n in states.items():
        if n:
            assert f"{n} {state.value}" in text
    assert "ApplicationUpdateFailed" in text and "0f9c1c2e-aaaa-bbbb-cccc-000000000001" in text
    assert "running" in text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count("<rect") >= sum(1 for a in run.apps if a.started_at)
    for name in ("canary", "wave-1", "wave-2"):
        assert f">{name}</text>" in svg
    # In-flight apps stretch to the run's last update instead of collapsing to a dot.
    assert "22m00s in all" in text


def test_run_page_timeline_orders_bars_by_time() -> None:
    run = sample_run()
    page = render_run_html(run, generated_at=GENERATED)
    bars = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="6"', page)
    timed = sorted(a.started_at for a in run.apps if a.started_at)
    assert len(bars) == len(timed)
    xs = sorted(float(x) for x, _ in bars)
    assert xs[0] < xs[-1]  # canary first, wave-2 last
    assert all(float(w) >= 2.0 for _, w in bars)


def test_run_page_without_started_apps_says_so() -> None:
    run = sample_run()
    pending = tuple(
        a.model_copy(update={"state": AppState.PENDING, "started_at": None, "finished_at": None})
        for a in run.apps
    )
    page = render_run_html(
        run.model_copy(update={"apps": pending, "updated_at": START + timedelta(seconds=1)}),
        generated_at=GENERATED,
    )
    assert "No app has started yet." in _text(page)
    assert "<svg" not in page


def test_empty_plan_renders() -> None:
    plan = sample_plan().model_copy(update={"items": (), "waves": (), "notes": ()})
    text = _text(render_plan_html(plan, generated_at=GENERATED))
    assert "0 apps" in text and "No risks" in text and "No waves" in text


def test_the_same_input_renders_the_same_bytes() -> None:
    """The generation time is given, never read inside: a page can be diffed, hashed and reproduced."""
    run = sample_run()
    assert render_plan_html(sample_plan(), generated_at=GENERATED) == render_plan_html(
        sample_plan(), generated_at=GENERATED
    )
    page = render_run_html(run, generated_at=GENERATED, wave_names={0: "canary"})
    assert page == render_run_html(run, generated_at=GENERATED, wave_names={0: "canary"})
    assert "Generated by managedapp-orchestrator at 2026-11-29 08:30:00 UTC." in _text(page)
    later = render_run_html(run, generated_at=GENERATED + timedelta(hours=1), wave_names={0: "canary"})
    assert later != page and later.replace("09:30:00", "08:30:00") == page


def test_every_printed_value_is_cleaned_then_escaped() -> None:
    """Controls and bidi overrides from outside become visible escapes before autoescape, in text and
    in attributes (the grid's tooltips), with no renderer asking for it."""
    plan = sample_plan()
    hostile = "\x1b[2J\u202e<i>\x9b"
    items = tuple(i.model_copy(update={"app_name": i.app_name + hostile}) for i in plan.items)
    page = render_plan_html(
        plan.model_copy(update={"items": items, "notes": (hostile,)}), generated_at=GENERATED
    )
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", page)
    assert "\\x1b[2J\\u202e&lt;i&gt;\\x9b" in page
    titles = re.findall(r'<span class="cell" style="background:#[0-9a-f]{6}" title="([^"]*)"', page)
    assert titles and all("\\x1b[2J\\u202e&lt;i&gt;" in t for t in titles)


def test_every_template_ships_as_package_data() -> None:
    """The container image installs the wheel: a template left out of package-data is a crash there."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["orchestrator"]
    shipped = {p for pattern in patterns for p in (root / "orchestrator").glob(pattern)}
    templates = [p for p in (root / "orchestrator" / "render" / "templates").iterdir() if p.is_file()]
    assert templates and not [p.name for p in templates if p not in shipped]
