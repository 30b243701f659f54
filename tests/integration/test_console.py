"""The web console in a real browser against a real server: OpenID Connect sign-in (code +
PKCE, against the test provider on loopback), a registry created and deleted through the pages,
an image pushed with skopeo and found in the tree, credentials taken from the page and pulled
with. Each page's screenshot goes to test-artifacts/console/ for review."""

from __future__ import annotations

import re
import secrets
import time

import pytest
import requests

from tests.support.browser import page_errors, screenshot, start_chromium
from tests.support.dns_server import DnsServer
from tests.support.idp import IdentityProvider
from tests.support.management import Api
from tests.support.oci_layout import OCILayout
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

pytestmark = pytest.mark.clients

HOSTILE = "<img src=x id=injected onerror=\"document.title='pwned'\"><b>bold</b>"


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    provider.user, provider.user_claims = "alice", {"orgs": {"default": "owner"}}
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def dns():
    server = DnsServer().restart()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory, idp, dns):
    srv = Server(
        tmp_path_factory.mktemp("console") / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={**idp.console_env(), "BERTH_DNS_RESOLVER": dns.address},
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def signed_out(browser, console_server):
    browser.set_window_size(1280, 1000)
    browser.get(console_server.url + "/console/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(console_server.url + "/console/")
    return browser


def wait_for(browser, css: str, text: str | None = None, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(driver):
        for el in driver.find_elements(By.CSS_SELECTOR, css):
            if text is None or text in el.text:
                return el
        return False

    from selenium.common.exceptions import StaleElementReferenceException

    return WebDriverWait(
        browser, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    ).until(found, message=f"no {css!r} with {text!r}; page: {browser.find_element(By.TAG_NAME, 'main').text[:800]}")


def go(browser, server: Server, fragment: str, heading: str):
    """Open a page by its address and wait for it (not for the page it replaces)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    shown = browser.execute_script("return document.querySelector('main > *')")
    browser.get(f"{server.url}/console/{fragment}")
    if shown is not None:
        WebDriverWait(browser, 30, poll_frequency=0.1).until(expected_conditions.staleness_of(shown))
    return wait_for(browser, "main h1", heading)


def click_link(browser, text: str):
    from selenium.webdriver.common.by import By

    wait_for(browser, "main a", text)
    browser.find_element(By.LINK_TEXT, text).click()


def until(browser, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def column(browser, scope: str, n: int) -> list[str]:
    """The text of the n-th cell (from 1) of each row of the table in `scope`."""
    return browser.execute_script(
        f"return [...document.querySelectorAll('{scope} tbody tr td:nth-child({n})')].map(td => td.textContent)"
    )


def choose(browser, css: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(wait_for(browser, css)).select_by_value(value)


def page_through(browser, list_id: str, per_page: int, n: int = 1) -> list[str]:
    """Column n of a paged list, first page then "More" until there is no more; each page at
    most `per_page` rows, and the first exactly that when there is more."""
    wait_for(browser, f"#{list_id} .page-status")
    shown = column(browser, f"#{list_id}", n)
    more = f"#{list_id} button.more"
    while browser.execute_script(f"return !document.querySelector('{more}').hidden"):
        assert len(shown) % per_page == 0, shown
        wait_for(browser, more).click()
        count = len(shown)
        until(browser, lambda b, count=count: len(column(b, f"#{list_id}", n)) > count)
        added = column(browser, f"#{list_id}", n)
        assert 0 < len(added) - len(shown) <= per_page and added[: len(shown)] == shown
        shown = added
    return shown


def stored_token(browser) -> str | None:
    return browser.execute_script("return sessionStorage.getItem('berth.token')")


def sign_in_with_token(browser, token: str) -> None:
    field = wait_for(browser, "#access-token")
    field.send_keys(token)
    wait_for(browser, "#token-form button[type=submit]").click()
    wait_for(browser, "main h1", "Organizations")


def test_the_console_is_served_under_a_strict_content_security_policy(console_server):
    page = requests.get(console_server.url + "/console/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    for src in re.findall(r'(?:src|href)="([^"#]+)"', page.text):
        assert "//" not in src, src  # every asset from this origin
        asset = requests.get(f"{console_server.url}/console/{src}", timeout=10)
        assert asset.status_code == 200, src
    module = requests.get(console_server.url + "/console/js/main.js", timeout=10)
    assert module.headers["Content-Type"].startswith("text/javascript")
    assert module.headers["Content-Security-Policy"] == csp
    again = requests.get(
        console_server.url + "/console/js/main.js", headers={"If-None-Match": module.headers["ETag"]}, timeout=10
    )
    assert again.status_code == 304
    assert requests.get(console_server.url + "/console/../app/web.py", timeout=10).status_code == 404
    assert requests.get(console_server.url + "/console/js/nothing.js", timeout=10).status_code == 404
    moved = requests.get(console_server.url + "/console", allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/console/")


def test_the_token_exchange_refuses_a_code_without_its_verifier(console_server, idp):
    r = requests.post(
        console_server.url + "/console/oidc/token",
        timeout=10,
        json={"code": "not-a-code", "code_verifier": "x" * 43, "redirect_uri": console_server.url + "/console/"},
    )
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json", r.text
    assert "invalid_grant" in r.json()["detail"]
    r = requests.post(
        console_server.url + "/console/oidc/token",
        timeout=10,
        json={"code": "c", "code_verifier": "v", "redirect_uri": "https://evil.example/callback"},
    )
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "redirect_uri"


def test_sign_in_create_push_browse_pull_and_delete_in_a_real_browser(
    signed_out, console_server, idp, skopeo, tmp_path
):
    browser, server = signed_out, console_server
    # Sign in through the provider: code + PKCE, and the code leaves the address bar at once.
    wait_for(browser, "#sign-in-oidc").click()
    wait_for(browser, "main h1", "Organizations")
    access_token = stored_token(browser)
    assert access_token and access_token.count(".") == 2  # the provider's JWT
    assert "code=" not in browser.current_url and access_token not in browser.current_url
    exchange = idp.exchanges[-1]
    assert exchange["grant_type"] == "authorization_code" and len(exchange["code_verifier"]) >= 43
    wait_for(browser, "main td", "owner")
    screenshot(browser, "01-organizations")

    # Create a private registry and watch its operation finish.
    click_link(browser, "default")
    wait_for(browser, "main h1", "Registries of default")
    name = f"console-{secrets.token_hex(3)}"
    wait_for(browser, "#new-registry-name").send_keys(name)
    wait_for(browser, "#create-registry button[type=submit]").click()
    wait_for(browser, "#operation-progress .op-state", "succeeded", timeout=60)
    wait_for(browser, "main td a", name)
    screenshot(browser, "02-registries")

    # Push with skopeo; the manifest carries an annotation holding HTML, and a referrer points at it.
    layout = OCILayout(tmp_path / "layout")
    layout.add_image({"hello.txt": b"console\n"}, tag="v1")
    creds = f"admin:{server.token}"
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{layout.root}:v1",
        f"docker://{server.host}/{name}/team/app:v1",
        timeout=300,
    )
    client = RegistryClient(server.url, server.session())
    digest, _, _ = client.push_image(
        f"{name}/team/app", "annotated", annotations={"org.opencontainers.image.description": HOSTILE}
    )
    client.push_image(
        f"{name}/team/app",
        None,
        layers=[b"an sbom"],
        artifactType="application/spdx+json",
        subject={
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": len(
                client.request(
                    "GET",
                    f"/v2/{name}/team/app/manifests/{digest}",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                ).content
            ),
        },
    )

    # Find it in the tree: registry -> folder -> repository -> tags -> manifest.
    click_link(browser, name)
    wait_for(browser, "main h1", f"Registry {name}")
    screenshot(browser, "03-registry")
    click_link(browser, "Repositories")
    click_link(browser, "team/")
    wait_for(browser, ".crumbs a", "team")
    screenshot(browser, "04-tree")
    click_link(browser, "app")
    wait_for(browser, "main h1", "Repository team/app")
    wait_for(browser, "main td a", "v1")
    pull = wait_for(browser, "main pre", f"docker pull {server.host}/{name}/team/app:v1")
    assert pull.text == f"docker pull {server.host}/{name}/team/app:v1"
    screenshot(browser, "05-tags")
    click_link(browser, "annotated")
    wait_for(browser, "main h1", "Manifest of team/app")
    wait_for(browser, "main td", "application/spdx+json")  # the referrer
    cell = wait_for(browser, "main td", "<img")
    assert cell.text == HOSTILE  # shown as text, not markup
    assert browser.execute_script("return document.getElementById('injected')") is None
    assert browser.execute_script("return document.querySelectorAll('main b').length") == 0
    assert "pwned" not in browser.title
    wait_for(browser, "main pre", f"@{digest}")
    screenshot(browser, "06-manifest")

    # Credentials from the page, then a pull with exactly them.
    go(browser, server, f"#/orgs/default/registries/{name}/credentials", "Credentials for")
    wait_for(browser, "#credentials-form button[type=submit]").click()
    username = wait_for(browser, "#credentials-username").text
    password = wait_for(browser, "#credentials-password code").text
    assert re.fullmatch(r"token-\d+", username) and password
    secret_yaml = wait_for(browser, "#credentials-secret code").text
    assert 'kind: "Secret"' in secret_yaml and "kubernetes.io/dockerconfigjson" in secret_yaml
    assert re.match(r"\d{4}-\d\d-\d\d", wait_for(browser, "#credentials-expires").text)
    screenshot(browser, "07-credentials")
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        f"{username}:{password}",
        f"docker://{server.host}/{name}/team/app:v1",
        f"oci:{tmp_path / 'pulled'}:v1",
        timeout=300,
    )
    assert (tmp_path / "pulled" / "index.json").exists()

    # Usage, with the chart of pulls and pushes per day.
    go(browser, server, f"#/orgs/default/registries/{name}/usage", "Usage of")
    wait_for(browser, "svg.chart rect")
    assert "USD" in wait_for(browser, "#usage-price").text
    screenshot(browser, "08-usage")

    # Delete: the button works only once the name is typed.
    go(browser, server, "#/orgs/default", "Registries of default")
    wait_for(browser, f"button[aria-label='Delete {name}']").click()
    typed = wait_for(browser, f"input[data-confirm-for='{name}']")
    confirm = wait_for(browser, "main button.danger", "Delete for good")
    typed.send_keys(name[:-1])
    assert not confirm.is_enabled()
    typed.send_keys(name[-1])
    confirm.click()
    wait_for(browser, "#operation-progress .op-state", "succeeded", timeout=60)
    assert (
        requests.get(
            f"{server.url}/api/v1/orgs/default/registries/{name}",
            timeout=10,
            headers={"Authorization": f"Bearer {server.token}"},
        ).status_code
        == 404
    )
    assert [e for e in page_errors(browser) if "Content Security Policy" in e] == []

    # Sign out: the token is gone from the tab; it never reached the server's log.
    wait_for(browser, "#sign-out").click()
    wait_for(browser, "#access-token")
    assert stored_token(browser) is None
    logs = server.logs()
    assert access_token not in logs and password not in logs
    # Nor did the one-time code and state the provider sent back in /console/?code=...&state=...
    assert exchange["code"] not in logs and idp.authorizations[-1]["state"] not in logs


def test_members_tokens_audit_and_a_narrow_screen_with_a_pasted_token(signed_out, console_server):
    browser, server = signed_out, console_server
    sign_in_with_token(browser, server.token)
    assert server.token not in browser.current_url

    go(browser, server, "#/orgs/default/members", "Members of default")
    wait_for(browser, "#member-subject").send_keys("bob")
    wait_for(browser, "#member-form button[type=submit]").click()
    wait_for(browser, "main td", "bob")
    screenshot(browser, "09-members")

    go(browser, server, "#/orgs/default/tokens", "Access tokens of default")
    wait_for(browser, "#token-name").send_keys("ci pull")
    wait_for(browser, "#token-form-create button[type=submit]").click()
    assert wait_for(browser, "#token-secret code").text.startswith("berth_")
    wait_for(browser, "main td", "ci pull")
    screenshot(browser, "10-tokens")

    go(browser, server, "#/orgs/default/audit", "Audit log of default")
    wait_for(browser, "main td", "member.set")
    wait_for(browser, "#audit-action").send_keys("token.create")
    wait_for(browser, "#audit-filters button[type=submit]").click()
    # The filtered list replaces the whole one: wait for it rather than read the one it replaces.
    until(browser, lambda b: set(column(b, "#audit-results", 3)) == {"token.create"})
    screenshot(browser, "11-audit")

    browser.set_window_size(375, 900)
    go(browser, server, "#/orgs/default", "Registries of default")
    wait_for(browser, "main td a", "default")
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert width <= 375
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width  # no sideways scroll
    screenshot(browser, "12-registries-375px")


def test_a_reader_sees_no_create_or_delete_controls(signed_out, console_server):
    reader = Api(console_server)("POST", "/tokens", json={"name": "console reader", "scope": "pull"}).json()["token"]
    sign_in_with_token(signed_out, reader)
    go(signed_out, console_server, "#/orgs/default", "Registries of default")
    wait_for(signed_out, "main td a", "default")
    assert signed_out.execute_script("return document.getElementById('create-registry')") is None
    assert signed_out.execute_script("return document.querySelectorAll('main button.danger').length") == 0


def registry_doc(server: Server, name: str) -> dict:
    r = Api(server)("GET", f"/registries/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def test_registry_settings_are_saved_from_the_form_and_a_custom_domain_is_verified(signed_out, console_server, dns):
    browser, server, api = signed_out, console_server, Api(console_server)
    name = f"settings-{secrets.token_hex(3)}"
    api.create(name)
    other_sku = next(
        s["name"] for s in api("GET", "/api/v1/skus").json()["skus"] if s["name"] != registry_doc(server, name)["sku"]
    )
    domain = f"images.{name}.example"
    sign_in_with_token(browser, server.token)
    go(browser, server, f"#/orgs/default/registries/{name}", f"Registry {name}")

    choose(browser, "#settings-visibility", "public")
    choose(browser, "#settings-sku", other_sku)
    wait_for(browser, "#settings-immutable-tags").send_keys("release/*\nprod-*")
    choose(browser, "#settings-manifest-policy", "index-sparse")
    wait_for(browser, "#settings-required-platforms").send_keys("linux/arm64, linux/amd64")
    wait_for(browser, "#settings-custom-domain").send_keys(domain)
    wait_for(browser, "#registry-settings button[type=submit]").click()
    wait_for(browser, "#settings-progress", "Saved:")
    stored = registry_doc(server, name)
    assert stored["visibility"] == "public" and stored["sku"] == other_sku
    assert stored["immutable_tags"] == ["prod-*", "release/*"]
    assert stored["manifest_policy"] == {"mode": "index-sparse", "required_platforms": ["linux/amd64", "linux/arm64"]}
    assert stored["custom_domain"] == domain and stored["custom_domain_status"] == "pending"
    # The page is drawn again from what was stored: the claim and the record to publish.
    assert wait_for(browser, "#custom-domain-status").text == "pending"
    record = stored["custom_domain_verification"]
    assert record["name"] in wait_for(browser, "#custom-domain-record").text
    assert record["value"] in wait_for(browser, "#custom-domain-record").text
    screenshot(browser, "13-registry-settings-saved")

    # What the API refuses is shown, and nothing changes.
    choose(browser, "#settings-manifest-policy", "strict")
    wait_for(browser, "#registry-settings button[type=submit]").click()
    assert "required_platforms" in wait_for(browser, "#settings-problem .error").text
    assert registry_doc(server, name)["manifest_policy"]["mode"] == "index-sparse"
    screenshot(browser, "14-registry-settings-refused")

    # Verify before the TXT record is published: refused, naming the record; still pending.
    go(browser, server, f"#/orgs/default/registries/{name}?", f"Registry {name}")
    wait_for(browser, "#verify-domain").click()
    assert record["name"] in wait_for(browser, "#settings-problem .error").text
    assert registry_doc(server, name)["custom_domain_status"] == "pending"
    screenshot(browser, "15-custom-domain-not-yet")

    dns.set_txt(record["name"], record["value"])
    wait_for(browser, "#verify-domain").click()
    wait_for(browser, "#settings-progress .op-state", "succeeded", timeout=60)
    assert wait_for(browser, "#custom-domain-status", "verified").text == "verified"
    assert browser.execute_script("return document.getElementById('verify-domain')") is None
    assert browser.execute_script("return document.getElementById('custom-domain-record')") is None  # done with
    assert registry_doc(server, name)["custom_domain_status"] == "verified"
    screenshot(browser, "16-custom-domain-verified")

    # Emptying fields clears them.
    wait_for(browser, "#settings-immutable-tags").clear()
    wait_for(browser, "#settings-custom-domain").clear()
    wait_for(browser, "#registry-settings button[type=submit]").click()
    wait_for(browser, "#settings-progress", "Saved: immutable_tags, custom_domain")
    stored = registry_doc(server, name)
    assert stored["immutable_tags"] == [] and stored["custom_domain"] is None
    assert browser.execute_script("return document.getElementById('custom-domain')") is None


def test_a_members_role_is_changed_in_place_and_a_member_removed(signed_out, console_server):
    browser, server, api = signed_out, console_server, Api(console_server)
    subject = f"carol-{secrets.token_hex(3)}"
    assert api("PUT", f"/members/{subject}", json={"role": "reader"}).status_code == 201
    sign_in_with_token(browser, server.token)
    go(browser, server, "#/orgs/default/members", "Members of default")

    choose(browser, f"select[data-member='{subject}']", "developer")
    wait_for(browser, "#member-status", f"{subject} is now developer.")
    assert api("GET", f"/members/{subject}").json()["role"] == "developer"
    screenshot(browser, "17-member-role-changed")

    # An admin may not make an owner: the API refuses, the page says so and shows the old role.
    admin = api("POST", "/tokens", json={"name": "console admin", "role": "admin"}).json()["token"]
    wait_for(browser, "#sign-out").click()
    sign_in_with_token(browser, admin)
    go(browser, server, "#/orgs/default/members", "Members of default")
    role = wait_for(browser, f"select[data-member='{subject}']")
    choose(browser, f"select[data-member='{subject}']", "owner")
    assert "only an owner" in wait_for(browser, "main .error").text
    until(browser, lambda b: role.get_attribute("value") == "developer")
    assert api("GET", f"/members/{subject}").json()["role"] == "developer"
    screenshot(browser, "18-member-role-refused")

    wait_for(browser, f"button[aria-label='Remove {subject}']").click()
    wait_for(browser, "#member-status", f"{subject} removed.")
    until(browser, lambda b: subject not in column(b, "#member-list", 1))
    assert api("GET", f"/members/{subject}").status_code == 404
    screenshot(browser, "19-member-removed")


def test_a_token_is_revoked_from_its_row_and_stops_working(signed_out, console_server):
    browser, server, api = signed_out, console_server, Api(console_server)
    name = f"revoke {secrets.token_hex(3)}"
    created = api("POST", "/tokens", json={"name": name, "scope": "pull"}).json()
    assert Api(server, created["token"])("GET", "/api/v1/orgs").status_code == 200
    sign_in_with_token(browser, server.token)
    go(browser, server, "#/orgs/default/tokens", "Access tokens of default")
    wait_for(browser, f"button[aria-label='Revoke {name}']").click()

    def revoked_shown(b) -> bool:
        rows = zip(column(b, "#token-list", 1), column(b, "#token-list", 7), strict=True)
        return any(token == name and cell.startswith("revoked") for token, cell in rows)

    until(browser, revoked_shown)
    listed = {t["id"]: t for t in api("GET", "/tokens?limit=1000").json()["tokens"]}
    assert listed[created["id"]]["revoked_at"]
    assert Api(server, created["token"])("GET", "/api/v1/orgs").status_code == 401
    screenshot(browser, "20-token-revoked")


def test_lists_longer_than_a_page_are_paged_with_more(signed_out, console_server):
    browser, server, api = signed_out, console_server, Api(console_server)
    name = f"paged-{secrets.token_hex(3)}"
    for extra in (name, f"{name}-b", f"{name}-c"):
        api.create(extra)
    for i in range(5):
        assert api("PUT", f"/members/paged-{i}", json={"role": "reader"}).status_code in (200, 201)
    client = RegistryClient(server.url, server.session())
    _, manifest, _ = client.push_image(f"{name}/app", "t0")
    for i in range(1, 5):
        assert client.push_manifest(f"{name}/app", f"t{i}", manifest).status_code == 201
    for repo in ("lib/a", "lib/b", "tools", "web"):
        client.push_image(f"{name}/{repo}", "v1")
    sign_in_with_token(browser, server.token)
    page_errors(browser)  # from here on, none

    go(browser, server, "#/orgs/default?limit=2", "Registries of default")
    wait_for(browser, "#registry-list .page-status", "more to load")
    assert len(column(browser, "#registry-list", 1)) == 2
    screenshot(browser, "21-registries-first-page")
    shown = page_through(browser, "registry-list", 2)
    assert shown == [r["name"] for r in api("GET", "/registries?limit=1000").json()["registries"]]
    screenshot(browser, "22-registries-all-pages")

    go(browser, server, "#/orgs/default/members?limit=2", "Members of default")
    assert page_through(browser, "member-list", 2) == [
        m["subject"] for m in api("GET", "/members?limit=1000").json()["members"]
    ]
    screenshot(browser, "23-members-paged")

    go(browser, server, f"#/orgs/default/registries/{name}/repo/app?limit=2", "Repository app")
    assert page_through(browser, "tag-list", 2) == ["t0", "t1", "t2", "t3", "t4"]
    screenshot(browser, "24-tags-paged")

    go(browser, server, f"#/orgs/default/registries/{name}/tree?limit=2", f"Repositories in {name}")
    assert page_through(browser, "tree-list", 2) == ["app", "lib/", "tools", "web"]
    screenshot(browser, "25-tree-paged")
    assert page_errors(browser) == []


def test_the_audit_log_pages_to_older_events(signed_out, console_server):
    browser, server, api = signed_out, console_server, Api(console_server)
    for i in range(4):
        assert api("PUT", f"/members/audited-{i}", json={"role": "reader"}).status_code in (200, 201)
    expected = [
        (e["actor"], e["action"], (e.get("detail") or {}).get("subject"))
        for e in api("GET", "/audit?limit=6").json()["events"]
    ]
    sign_in_with_token(browser, server.token)
    go(browser, server, "#/orgs/default/audit?limit=3", "Audit log of default")
    wait_for(browser, "#audit-list .page-status", "more to load")
    assert len(column(browser, "#audit-list", 1)) == 3
    wait_for(browser, "#audit-list button.more", "Older events").click()
    until(browser, lambda b: len(column(b, "#audit-list", 1)) >= 6)
    rows = list(
        zip(
            column(browser, "#audit-list", 2),
            column(browser, "#audit-list", 3),
            column(browser, "#audit-list", 7),
            strict=True,
        )
    )[:6]
    assert [(actor, action) for actor, action, _ in rows] == [(actor, action) for actor, action, _ in expected]
    for (_, _, detail), (_, _, subject) in zip(rows, expected, strict=True):
        assert subject is None or f'"subject":"{subject}"' in detail
    assert expected[0][2] == "audited-3"  # newest first: the list starts with what was done last
    screenshot(browser, "26-audit-older-events")


def test_credentials_in_a_query_string_never_reach_the_log(console_server):
    """The access log names the route, never the target: a client that puts a secret in a query
    (the provider's code and state on /console/, a token or password anywhere) leaves no trace."""
    server = console_server
    secrets_sent = {k: f"{k}-{secrets.token_hex(8)}" for k in ("code", "state", "access_token", "token", "password")}
    query = "&".join(f"{k}={v}" for k, v in secrets_sent.items())
    before = server.logs().count('"berth.access"')
    paths = ["/console/", "/console", "/api/v1/orgs", "/v2/", "/token", "/no/such/route"]
    for path in paths:
        requests.get(
            f"{server.url}{path}?{query}",
            timeout=10,
            allow_redirects=False,
            headers={"Authorization": f"Bearer {server.token}"},
        )
    deadline = time.monotonic() + 10
    while server.logs().count('"berth.access"') < before + len(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = server.logs()
    assert logs.count('"berth.access"') >= before + len(paths)  # each request was logged
    assert [v for v in secrets_sent.values() if v in logs] == []
