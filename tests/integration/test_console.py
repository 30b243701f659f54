"""The web console in a real browser against a real server: OpenID Connect sign-in (code +
PKCE, against the test provider on loopback), a registry created and deleted through the pages,
an image pushed with skopeo and found in the tree, credentials taken from the page and pulled
with. Each page's screenshot goes to test-artifacts/console/ for review."""

from __future__ import annotations

import re
import secrets

import pytest
import requests

from tests.support.browser import page_errors, screenshot, start_chromium
from tests.support.idp import IdentityProvider
from tests.support.management import Api
from tests.support.oci_layout import OCILayout
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

pytestmark = pytest.mark.clients

HOSTILE = '<img src=x id=injected onerror="document.title=\'pwned\'"><b>bold</b>'


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    provider.user, provider.user_claims = "alice", {"orgs": {"default": "owner"}}
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory, idp):
    srv = Server(tmp_path_factory.mktemp("console") / "data", token="berth_" + secrets.token_urlsafe(32),
                 env=idp.console_env()).start()
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

    return WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]).until(
        found, message=f"no {css!r} with {text!r}; page: {browser.find_element(By.TAG_NAME, 'main').text[:800]}")


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
    again = requests.get(console_server.url + "/console/js/main.js", headers={"If-None-Match": module.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304
    assert requests.get(console_server.url + "/console/../app/web.py", timeout=10).status_code == 404
    assert requests.get(console_server.url + "/console/js/nothing.js", timeout=10).status_code == 404
    moved = requests.get(console_server.url + "/console", allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/console/")


def test_the_token_exchange_refuses_a_code_without_its_verifier(console_server, idp):
    r = requests.post(console_server.url + "/console/oidc/token", timeout=10, json={
        "code": "not-a-code", "code_verifier": "x" * 43, "redirect_uri": console_server.url + "/console/"})
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json", r.text
    assert "invalid_grant" in r.json()["detail"]
    r = requests.post(console_server.url + "/console/oidc/token", timeout=10, json={
        "code": "c", "code_verifier": "v", "redirect_uri": "https://evil.example/callback"})
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
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout.root}:v1",
           f"docker://{server.host}/{name}/team/app:v1", timeout=300)
    client = RegistryClient(server.url, server.session())
    digest, _, _ = client.push_image(f"{name}/team/app", "annotated",
                                     annotations={"org.opencontainers.image.description": HOSTILE})
    client.push_image(f"{name}/team/app", None, layers=[b"an sbom"], artifactType="application/spdx+json",
                      subject={"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                               "size": len(client.request("GET", f"/v2/{name}/team/app/manifests/{digest}", headers={
                                   "Accept": "application/vnd.oci.image.manifest.v1+json"}).content)})

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
    assert "kind: \"Secret\"" in secret_yaml and "kubernetes.io/dockerconfigjson" in secret_yaml
    assert re.match(r"\d{4}-\d\d-\d\d", wait_for(browser, "#credentials-expires").text)
    screenshot(browser, "07-credentials")
    skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{username}:{password}",
           f"docker://{server.host}/{name}/team/app:v1", f"oci:{tmp_path / 'pulled'}:v1", timeout=300)
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
    assert requests.get(f"{server.url}/api/v1/orgs/default/registries/{name}", timeout=10,
                        headers={"Authorization": f"Bearer {server.token}"}).status_code == 404
    assert [e for e in page_errors(browser) if "Content Security Policy" in e] == []

    # Sign out: the token is gone from the tab; it never reached the server's log.
    wait_for(browser, "#sign-out").click()
    wait_for(browser, "#access-token")
    assert stored_token(browser) is None
    assert access_token not in server.logs() and password not in server.logs()


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
    wait_for(browser, "#audit-results caption")
    actions = browser.execute_script(
        "return [...document.querySelectorAll('#audit-results tbody tr td:nth-child(3)')].map(td => td.textContent)")
    assert actions and set(actions) == {"token.create"}
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
