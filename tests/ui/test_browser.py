"""The results browser in a real headless Chromium, against a real pipeline run's results.

Each test saves a screenshot of its page under the session's `screenshots` folder, and checks
that the browser logged no console error and asked nothing of any host but the API's.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode, urlsplit

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.ui_stack import BRANCH, EVENT, HOST, Stack

pytestmark = pytest.mark.slow
WAIT_S = 30
LINE_RGB = (0x1F, 0x77, 0xB4)  # the first line colour of Bokeh's Category10 palette


def requests_made(browser: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def open_page(browser: webdriver.Chrome, stack: Stack, path: str) -> None:
    browser.get_log("performance")  # forget earlier pages' requests
    browser.get_log("browser")
    browser.get(stack.url + path)


def check_clean(browser: webdriver.Chrome, stack: Stack, name: str) -> list[str]:
    """Screenshot; no console errors; no sideways scrolling; every request went to the API on
    127.0.0.1."""
    browser.save_screenshot(str(stack.shots / f"{name}.png"))
    wider = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wider <= 0, f"the {name} page is {wider}px wider than the window"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    urls = requests_made(browser)
    api = urlsplit(stack.url)
    outside = [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
               and (urlsplit(u).hostname, urlsplit(u).port) != (api.hostname, api.port)]  # fmt: skip
    assert urls and not outside, outside
    return urls


def wait_for(browser: webdriver.Chrome, script: str) -> object:
    return WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script(script))


def wait_for_plot(browser: webdriver.Chrome) -> None:
    wait_for(browser, "return window.Bokeh && Bokeh.documents.length > 0")
    wait_for(browser, "return document.getElementById('plot').getBoundingClientRect().height > 300")


def line_pixels(browser: webdriver.Chrome) -> int:
    plot = browser.find_element(By.ID, "plot")
    shot = Image.open(io.BytesIO(plot.screenshot_as_png)).convert("RGB")
    return sum(
        1
        for p in shot.get_flattened_data()
        if all(abs(a - b) < 40 for a, b in zip(p, LINE_RGB, strict=True))
    )


def test_root_redirects_and_home_lists_the_refs_of_the_run(browser, stack: Stack) -> None:
    open_page(browser, stack, "/")
    assert urlsplit(browser.current_url).path == "/ui"
    rows = browser.find_elements(By.CSS_SELECTOR, "#refs tr.ref-row")
    assert {r.get_attribute("data-ref") for r in rows} == {"main", BRANCH}
    text = browser.find_element(By.ID, "refs").text
    assert EVENT in text and "COMPLETED" in text.upper()
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a.run-link")]
    dashboard = stack.prefect_url.removesuffix("/api")
    expected = {f"{dashboard}/v2/runs/flow-run/{run['flow_run_id']}" for run in stack.runs.values()}
    assert set(links) == expected
    # These runs carry no agent labels: the run column names commit and env from the results.
    for ref in ("main", BRANCH):
        provenance = stack.db.series.find_one({"ref": ref})["provenance"]
        cell = browser.find_element(
            By.CSS_SELECTOR, f'#refs tr.ref-row[data-ref="{ref}"] td:nth-child(2)'
        ).text
        assert f"commit {provenance['commit'][:12]}" in cell, cell
        assert f"env {provenance['env_key'][:12]}" in cell, cell
        titles = browser.find_elements(
            By.CSS_SELECTOR, f'#refs tr.ref-row[data-ref="{ref}"] td:nth-child(2) code'
        )
        full = {element.get_attribute("title") for element in titles}
        assert full == {provenance["commit"], provenance["env_key"]}  # whole ids on hover
    check_clean(browser, stack, "home")


def test_series_page_draws_and_zoom_fetches_a_new_window(browser, stack: Stack) -> None:
    query = {"ref": "main", "event": EVENT, "stage": "power", "name": "PackPower"}
    open_page(browser, stack, "/ui/series?" + urlencode(query))
    wait_for_plot(browser)
    WebDriverWait(browser, WAIT_S).until(lambda d: line_pixels(d) > 500)
    assert stack.runs["main"]["flow_run_id"] in browser.find_element(By.ID, "provenance").text
    assert "(W)" in browser.find_element(By.TAG_NAME, "body").text  # the units
    before_png = browser.get_screenshot_as_png()
    before_status = browser.find_element(By.ID, "view-status").text
    check_clean(browser, stack, "series")

    canvas_area = browser.find_element(By.ID, "plot")
    ActionChains(browser).scroll_from_origin(
        ScrollOrigin.from_element(canvas_area), 0, -600
    ).perform()
    wait_for(browser, "return (window.sunbeamFetches || 0) >= 1")
    urls = check_clean(browser, stack, "series-zoomed")
    windows = [u for u in urls if "/results/series?" in u and "start=" in u and "end=" in u]
    assert windows, urls
    assert browser.get_screenshot_as_png() != before_png
    after_status = browser.find_element(By.ID, "view-status").text
    assert after_status != before_status and line_pixels(browser) > 200

    # The address follows the view: opened again, the page shows the same window.
    link = urlsplit(browser.current_url)
    assert "start=" in link.query and "end=" in link.query, link
    zoomed = browser.execute_script(
        "const r = Bokeh.documents[0].roots()[0].x_range; return [r.start, r.end]"
    )
    open_page(browser, stack, f"{link.path}?{link.query}")
    wait_for_plot(browser)
    reopened = browser.execute_script(
        "const r = Bokeh.documents[0].roots()[0].x_range; return [r.start, r.end]"
    )
    assert all(abs(a - b) <= 1 for a, b in zip(reopened, zoomed, strict=True)), (reopened, zoomed)
    assert browser.find_element(By.ID, "view-status").text == after_status
    check_clean(browser, stack, "series-linked")


def test_compare_lists_exactly_the_changed_series_first(browser, stack: Stack) -> None:
    digests = {
        (d["ref"], d["stage"], d["name"]): d["stats"]["digest"]
        for d in stack.db.series.find({"event": EVENT})
    }
    changed = {
        f"{EVENT}/{stage}/{name}"
        for (ref, stage, name), digest in digests.items()
        if ref == "main" and digests.get((BRANCH, stage, name)) != digest
    }
    assert changed and all("/efficiency/" in c for c in changed)  # the one stage the branch changed

    open_page(browser, stack, "/ui/compare?" + urlencode({"ref": BRANCH, "base": "main"}))
    rows = browser.find_elements(By.CSS_SELECTOR, "#compare tr.row")
    statuses = [r.get_attribute("data-status") for r in rows]
    first = [r.get_attribute("data-series") for r in rows[: len(changed)]]
    assert set(first) == changed and statuses.count("changed") == len(changed)
    assert set(statuses[len(changed) :]) == {"same"}
    assert (
        f"{len(changed)} of {len(rows)} common series changed"
        in browser.find_element(By.ID, "summary").text
    )
    check_clean(browser, stack, "compare")

    legend = browser.find_element(By.ID, "legend").text
    assert f"every pair reads {BRANCH} / main: the ref first, the base" in legend, legend
    assert "|ref \u2212 base| / |base|" in legend and "main drawn wide and grey beneath" in legend
    assert browser.find_element(By.CSS_SELECTOR, "#compare th small").text == f"{BRANCH} / main"

    rows[0].find_element(By.TAG_NAME, "a").click()  # each row opens an overlay of both refs
    wait_for_plot(browser)
    provenance = browser.find_element(By.ID, "provenance").text
    assert "main" in provenance and BRANCH in provenance
    assert f"{BRANCH} over main" in browser.find_element(By.TAG_NAME, "h1").text
    # Drawn in order: main first (wide, grey: beneath), the branch last (on top), as the legend says.
    drawn = browser.execute_script(
        "return Bokeh.documents[0].roots()[0].renderers.map(r => [r.glyph.line_color.value, r.glyph.line_width.value])"
    )
    assert drawn == [["#9aa3b2", 4], ["#1f77b4", 1.5]], drawn
    assert line_pixels(browser) > 300  # the branch's line shows, over main's
    check_clean(browser, stack, "overlay")


def test_compare_of_a_ref_with_itself_says_so(browser, stack: Stack) -> None:
    open_page(browser, stack, "/ui/compare?ref=main&base=main")
    assert "both 'main'" in browser.find_element(By.ID, "problem").text
    assert browser.find_element(By.ID, "back").get_attribute("href").endswith("/ui")


@pytest.mark.parametrize(
    ("query", "unknown"),
    [
        ({"ref": "nope", "event": EVENT, "stage": "power", "name": "PackPower"}, "unknown ref 'nope'"),
        ({"ref": "main", "event": "Day_0", "stage": "power", "name": "PackPower"}, "unknown event 'Day_0'"),
        ({"ref": "main", "event": EVENT, "stage": "power", "name": "Nope"}, "unknown series 'power/Nope'"),
    ],
)  # fmt: skip
def test_unknown_names_in_a_page_url_are_named_with_a_link_back(
    browser, stack: Stack, query: dict, unknown: str
) -> None:
    open_page(browser, stack, "/ui/series?" + urlencode(query))
    assert unknown in browser.find_element(By.ID, "problem").text
    assert browser.find_element(By.ID, "back").get_attribute("href")


def test_docs_render_their_operations_offline(browser, stack: Stack) -> None:
    open_page(browser, stack, "/docs")
    wait_for(browser, "return document.querySelectorAll('.opblock').length >= 10")
    text = browser.find_element(By.CSS_SELECTOR, ".swagger-ui").text
    assert "/results/compare" in text and "/results/series" in text
    check_clean(browser, stack, "docs")
    open_page(browser, stack, "/redoc")
    wait_for(browser, "return document.querySelectorAll('[data-section-id]').length >= 10")
    check_clean(browser, stack, "redoc")


def test_refs_page_says_where_each_branch_and_its_env_is(browser, stack: Stack) -> None:
    open_page(browser, stack, "/ui/refs")
    rows = browser.find_elements(By.CSS_SELECTOR, "#ref-envs tr.ref-env")
    refs = [r.get_attribute("data-ref") for r in rows]
    assert set(refs) == set(stack.heads)  # every branch of the repository
    assert refs[:3] == ["forgot-lock", "fix/units", "try-me"]  # the newest run first

    def status(ref: str) -> tuple[str | None, str]:
        cell = browser.find_element(
            By.CSS_SELECTOR, f'tr[data-ref="{ref}"] div.host[data-host="{HOST}"]'
        )
        return cell.get_attribute("data-status"), cell.text

    assert status("try-me")[0] == "ready" and status("fix/units")[0] == "building"
    failed, said = status("forgot-lock")
    assert failed == "failed" and "out of date with pyproject.toml" in said, said
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-ref="try-me"]').text
    assert stack.heads["try-me"][:12] in row and ("a1b2c3d4" * 2)[:12] in row
    dashboard = stack.prefect_url.removesuffix("/api")
    link = browser.find_element(By.CSS_SELECTOR, 'tr[data-ref="try-me"] a.run-link')
    assert link.get_attribute("href").startswith(f"{dashboard}/v2/runs/flow-run/")
    check_clean(browser, stack, "refs")
