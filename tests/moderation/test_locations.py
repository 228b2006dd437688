"""Location rules: which links are a platform's own, and the one canonical form of each (docs/platforms.md)."""

from __future__ import annotations

import re
import string
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.platforms.base import LocationRejected
from moderation.platforms.locations import UrlRules, host_matches, path_canonical

RULES = UrlRules(hosts=("platform.example", "www.platform.example", "m.platform.example"),
                 paths=re.compile(r"^/(p|v)/[^/]+"), keep_params=frozenset({"v", "img"}))

# A literal "%" is itself an escape, so written plain it names another path: left out here.
segment = st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@ é", min_size=1, max_size=12)
ids = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10)
tracking = st.dictionaries(st.sampled_from(["utm_source", "utm_medium", "ref", "fbclid", "si", "x"]),
                           st.text(alphabet=string.ascii_letters + string.digits, max_size=8), max_size=4)
kept = st.dictionaries(st.sampled_from(["v", "img"]), st.text(alphabet=string.ascii_letters, min_size=1, max_size=6),
                       max_size=2)


@st.composite
def post_links(draw: st.DrawFn) -> tuple[str, str]:
    """A link to a post in some spelling, and the post's id."""
    post = draw(ids)
    kind = draw(st.sampled_from(["p", "v"]))
    host = draw(st.sampled_from(["platform.example", "www.platform.example", "m.platform.example",
                                 "PLATFORM.example", "Www.Platform.Example.", "platform.example:443"]))
    scheme = draw(st.sampled_from(["https", "http", "HTTPS"]))
    if scheme == "http" and host.endswith(":443"):
        host = host.replace(":443", ":80")
    slashes = draw(st.sampled_from(["/", "//"]))
    trailing = draw(st.sampled_from(["", "/", "//"]))
    params = {**draw(tracking), **draw(kept)}
    query = "&".join(f"{k}={v}" for k, v in draw(st.permutations(list(params.items()))))
    fragment = draw(st.sampled_from(["", "#comments", "#"]))
    return f"{scheme}://{host}{slashes}{kind}/{post}{trailing}" + (f"?{query}" if query else "") + fragment, post


@given(post_links())
@settings(max_examples=300, deadline=None)
def test_normalising_is_idempotent(link: tuple[str, str]) -> None:
    once = RULES.normalise(link[0])
    assert RULES.normalise(once) == once


@given(post_links(), post_links())
@settings(max_examples=300, deadline=None)
def test_two_spellings_of_one_post_normalise_to_one_location(a: tuple[str, str], b: tuple[str, str]) -> None:
    left, right = RULES.normalise(a[0]), RULES.normalise(b[0])
    path_left, path_right = left.split("?")[0], right.split("?")[0]
    # Same post and same identifying parameters ⇔ the same canonical location.
    same_post = path_left.rsplit("/", 1)[1] == path_right.rsplit("/", 1)[1] and path_left == path_right
    assert (left == right) == (same_post and _kept(a[0]) == _kept(b[0]))


@given(post_links())
@settings(max_examples=200, deadline=None)
def test_the_canonical_location_is_https_on_the_canonical_host_without_tracking_or_fragment(
        link: tuple[str, str]) -> None:
    canonical = RULES.normalise(link[0])
    assert canonical.startswith("https://platform.example/")
    assert "#" not in canonical and "utm_" not in canonical and "ref=" not in canonical
    assert link[1] in canonical


@given(st.lists(segment, min_size=1, max_size=5))
@settings(max_examples=300, deadline=None)
def test_percent_escapes_are_written_one_way(parts: list[str]) -> None:
    plain = "/" + "/".join(parts)
    escaped = "/" + "/".join(quote(p, safe="") for p in parts)
    assert path_canonical(plain) == path_canonical(escaped)
    assert path_canonical(path_canonical(plain)) == path_canonical(plain)


@given(st.text(alphabet=string.printable + "é%", max_size=30))
@settings(max_examples=300, deadline=None)
def test_path_canonical_is_idempotent_for_any_path(path: str) -> None:
    once = path_canonical("/" + path)
    assert path_canonical(once) == once


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_text_is_either_a_location_or_a_clear_refusal(text: str) -> None:
    try:
        canonical = RULES.normalise(text)
    except LocationRejected as exc:
        assert str(exc)  # a message for the reporter, never an empty or internal error
    else:
        assert canonical.startswith("https://platform.example/")


def test_the_issue_examples_are_one_item() -> None:
    rules = UrlRules(hosts=("platform.example", "www.platform.example"))
    assert rules.normalise("https://platform.example/p/123?utm=x") == rules.normalise(
        "https://www.platform.example/p/123") == "https://platform.example/p/123"


@pytest.mark.parametrize(("link", "why"), [
    ("https://elsewhere.example/p/1", "not on this platform"),
    ("https://platform.example.evil.example/p/1", "not on this platform"),
    ("https://evilplatform.example/p/1", "not on this platform"),
    ("https://platform.example:8443/p/1", "port 8443"),
    ("https://user:pw@platform.example/p/1", "user name or password"),
    ("ftp://platform.example/p/1", "not a web address"),
    ("javascript:alert(1)", "not a web address"),
    ("https://platform.example/", "does not name a post"),
    ("https://platform.example/search?q=x", "does not name a post"),
    ("https://platform.example/p/1 and more", "spaces"),
    ("", "empty"),
])
def test_links_that_are_not_the_platforms_content_are_refused_with_a_reason(link: str, why: str) -> None:
    with pytest.raises(LocationRejected, match=why):
        RULES.normalise(link)


def test_dot_segments_cannot_escape_to_another_path_shape() -> None:
    assert RULES.normalise("https://platform.example/p/1/../2") == "https://platform.example/p/2"
    with pytest.raises(LocationRejected):
        RULES.normalise("https://platform.example/p/../search")


def test_an_international_host_is_compared_in_its_ascii_form() -> None:
    rules = UrlRules(hosts=("bücher.example",))
    assert rules.normalise("https://BÜCHER.example/p/1") == "https://xn--bcher-kva.example/p/1"


@pytest.mark.parametrize(("host", "pattern", "matches"), [
    ("cdn.example", "cdn.example", True),
    ("a.cdn.example", "*.cdn.example", True),
    ("cdn.example", "*.cdn.example", False),
    ("evilcdn.example", "*.cdn.example", False),
    ("cdn.example.evil", "cdn.example", False),
])
def test_host_patterns_match_a_host_or_its_subdomains(host: str, pattern: str, matches: bool) -> None:
    assert host_matches(host, pattern) is matches


def _kept(link: str) -> list[tuple[str, str]]:
    query = link.split("?", 1)[1].split("#")[0] if "?" in link else ""
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    return sorted((k, v) for k, v in pairs if k in RULES.keep_params)
