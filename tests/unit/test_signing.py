"""Signed URLs (spec 05 section 6): the server's check against signatures made independently.

Every signature the server is asked to accept is made here by a separate implementation
written from the spec (and Konifer's ``UrlSigner``): a client that knows the path as it
sends it and its parameters as decoded values. Known-answer vectors were computed with
``openssl dgst -hmac``. Nothing here imports the server's signing functions to *make*
a signature; ``sign_url`` is checked against this file's own verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote, unquote_plus, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from konifer_edge.config import ConfigError, UrlSigningSettings, load_config
from konifer_edge.domain.errors import Forbidden
from konifer_edge.security.signing import check_signature, require_signature, sign_url

ALGORITHMS = {"hmac_sha256": hashlib.sha256, "hmac_sha384": hashlib.sha384, "hmac_sha512": hashlib.sha512}
SECRET = "change-me"
PATH = "/assets/users/123/profile-picture/-/content"


# --- an independent client ------------------------------------------------------------


def client_signature(path: str, params: Mapping[str, str], secret: str, algorithm: str = "hmac_sha256") -> str:
    """Konifer's client rule: path, then '?' and sorted key=value of decoded values, HMAC, Base64url without '='."""
    query = "&".join(f"{key}={params[key]}" for key in sorted(params))
    message = f"{path}?{query}" if query else path
    mac = hmac.new(secret.encode(), message.encode(), ALGORITHMS[algorithm]).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def encode_query(pairs: Sequence[tuple[str, str]]) -> str:
    """The query a client sends: every value percent-encoded as UTF-8."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs)


def server_check(path: str, query: str, secrets: Sequence[str] = (SECRET,), algorithm: str = "hmac_sha256") -> str:
    return check_signature(path.encode(), query, list(secrets), algorithm).value


def client_verifies(url: str, secret: str, algorithm: str = "hmac_sha256") -> bool:
    """This file's own verifier, for what ``sign_url`` produces."""
    parts = urlsplit(url)
    pairs = [piece.split("=", 1) for piece in parts.query.split("&")]
    decoded: dict[str, str] = {}
    signature = None
    for key, value in pairs:
        key, value = unquote_plus(key), unquote_plus(value)
        if key == "s":
            signature = signature or value
        else:
            decoded.setdefault(key, value)
    return signature == client_signature(parts.path, decoded, secret, algorithm)


# --- known answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "algorithm", "expected"),
    [
        ("w=200&format=webp", "hmac_sha256", "yjm2gDznLmL61PaxnZO0q9BSXlvW0-pUroOO5gDaJHc"),
        (
            "format=webp&w=200",
            "hmac_sha512",
            "qZjC2PY4pjQKndULBr4s11RZO1C7oslQispWasCkvPPxxnbGS9qxxHohcI18x8v1nERZNYcBSmBVqJP2q5FcDw",
        ),
        (
            "w=200&pad-c=%23ff0000&pad=10",
            "hmac_sha384",
            "HCTOjoLdN0jEIl75hrlkz-fWzeZjSWEFSP6qNYmtq-dR1hl-3tylboynuUaPw_G2",
        ),
    ],
)
def test_openssl_vectors_are_accepted(query: str, algorithm: str, expected: str) -> None:
    assert server_check(PATH, f"{query}&s={expected}", algorithm=algorithm) == "valid"


def test_openssl_vector_without_query() -> None:
    path = "/assets/users/123/profile-picture"
    assert server_check(path, "s=KPBROFW2gQo6vMoBQH_wrT4N5-SO0_i-htZbgOwUzWY") == "valid"


# --- the rule, per algorithm --------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_order_of_the_parameters_is_valid(algorithm: str) -> None:
    params = {"w": "200", "h": "100", "fit": "crop", "phone": "android"}
    signature = client_signature(PATH, params, SECRET, algorithm)
    for order in itertools.permutations(params.items()):
        query = encode_query([*order, ("s", signature)])
        assert server_check(PATH, query, algorithm=algorithm) == "valid", query


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_the_signature_may_come_anywhere_in_the_query(algorithm: str) -> None:
    signature = client_signature(PATH, {"w": "200", "h": "100"}, SECRET, algorithm)
    assert server_check(PATH, f"s={signature}&w=200&h=100", algorithm=algorithm) == "valid"
    assert server_check(PATH, f"w=200&s={signature}&h=100", algorithm=algorithm) == "valid"


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_a_signature_made_with_another_algorithm_is_invalid(algorithm: str) -> None:
    other = next(name for name in ALGORITHMS if name != algorithm)
    signature = client_signature(PATH, {"w": "200"}, SECRET, other)
    assert server_check(PATH, f"w=200&s={signature}", algorithm=algorithm) == "invalid"


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_repeated_keys_are_signed_with_their_first_value(algorithm: str) -> None:
    first = client_signature(PATH, {"w": "100", "phone": "android"}, SECRET, algorithm)
    last = client_signature(PATH, {"w": "300", "phone": "android"}, SECRET, algorithm)
    query = "w=100&phone=android&w=300"
    assert server_check(PATH, f"{query}&s={first}", algorithm=algorithm) == "valid"
    assert server_check(PATH, f"{query}&s={last}", algorithm=algorithm) == "invalid"


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_values_are_signed_decoded(algorithm: str) -> None:
    params = {"pad": "10", "pad-c": "#ff0000", "caption": "Grüße aus Köln & more", "w": "200"}
    signature = client_signature(PATH, params, SECRET, algorithm)
    percent = encode_query([*params.items(), ("s", signature)])
    assert "pad-c=%23ff0000" in percent
    assert server_check(PATH, percent, algorithm=algorithm) == "valid"
    # A '+' for a space is the same decoded value, so the same signature.
    plus = percent.replace("%20", "+")
    assert plus != percent
    assert server_check(PATH, plus, algorithm=algorithm) == "valid"


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_no_query_signs_the_path_alone(algorithm: str) -> None:
    signature = client_signature(PATH, {}, SECRET, algorithm)
    assert server_check(PATH, f"s={signature}", algorithm=algorithm) == "valid"
    # The path with a '?' appended is another message.
    wrong = (
        base64.urlsafe_b64encode(hmac.new(SECRET.encode(), f"{PATH}?".encode(), ALGORITHMS[algorithm]).digest())
        .decode()
        .rstrip("=")
    )
    assert server_check(PATH, f"s={wrong}", algorithm=algorithm) == "invalid"


def test_blank_values_and_keys_without_a_value_are_signed_as_key_equals_nothing() -> None:
    signature = client_signature(PATH, {"phone": "", "w": "200"}, SECRET)
    assert server_check(PATH, f"phone&w=200&s={signature}") == "valid"
    assert server_check(PATH, f"phone=&w=200&s={signature}") == "valid"


# --- refusals --------------------------------------------------------------------------------


def test_a_missing_or_blank_signature_is_missing() -> None:
    assert server_check(PATH, "") == "missing"
    assert server_check(PATH, "w=200") == "missing"
    assert server_check(PATH, "w=200&s=") == "missing"
    assert server_check(PATH, "w=200&s=%20%20") == "missing"


def test_tampering_invalidates_the_signature() -> None:
    signature = client_signature(PATH, {"w": "200"}, SECRET)
    assert server_check(PATH, f"w=200&s={signature}") == "valid"
    assert server_check(PATH, f"w=201&s={signature}") == "invalid"
    assert server_check(PATH, f"w=200&h=50&s={signature}") == "invalid"
    assert server_check(PATH, f"s={signature}") == "invalid"
    assert server_check(PATH.replace("123", "124"), f"w=200&s={signature}") == "invalid"
    assert server_check(PATH.replace("content", "download"), f"w=200&s={signature}") == "invalid"


def test_the_entry_id_is_part_of_the_signed_path() -> None:
    signature = client_signature("/assets/a/-/entry/7/content", {}, SECRET)
    assert server_check("/assets/a/-/entry/7/content", f"s={signature}") == "valid"
    assert server_check("/assets/a/-/entry/8/content", f"s={signature}") == "invalid"


def test_the_path_is_signed_as_sent_not_decoded() -> None:
    sent = "/assets/team%40home/avatar"
    signature = client_signature(sent, {}, SECRET)
    assert server_check(sent, f"s={signature}") == "valid"
    assert server_check("/assets/team@home/avatar", f"s={signature}") == "invalid"


def test_a_padded_or_re_encoded_signature_is_invalid() -> None:
    mac = hmac.new(SECRET.encode(), PATH.encode(), hashlib.sha256).digest()
    assert server_check(PATH, "s=" + base64.urlsafe_b64encode(mac).decode().rstrip("=")) == "valid"
    assert server_check(PATH, "s=" + quote(base64.urlsafe_b64encode(mac).decode(), safe="")) == "invalid"
    standard = base64.b64encode(mac).decode().rstrip("=")
    if standard != base64.urlsafe_b64encode(mac).decode().rstrip("="):
        assert server_check(PATH, "s=" + quote(standard, safe="")) == "invalid"
    assert server_check(PATH, "s=" + mac.hex()) == "invalid"


def test_a_key_differing_only_in_case_is_not_hidden_from_the_signature() -> None:
    # Our parser reads W as a label filter; it must be signed, not folded into w.
    signature = client_signature(PATH, {"w": "200"}, SECRET)
    assert server_check(PATH, f"w=200&W=1&s={signature}") == "invalid"
    assert server_check(PATH, f"w=200&S={signature}") == "missing"


def test_rotation_accepts_every_configured_key_and_nothing_else() -> None:
    keys = ("new-key", "old-key")
    for secret in keys:
        signature = client_signature(PATH, {"w": "1"}, secret)
        assert server_check(PATH, f"w=1&s={signature}", secrets=keys) == "valid"
    stranger = client_signature(PATH, {"w": "1"}, "someone-else")
    assert server_check(PATH, f"w=1&s={stranger}", secrets=keys) == "invalid"


# --- the property ---------------------------------------------------------------------------

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-:", min_size=1, max_size=8).filter(lambda key: key != "s")
_values = st.text(max_size=12).filter(lambda value: "\x00" not in value)


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(_keys, _values, max_size=6),
    order=st.randoms(use_true_random=False),
    right_key=st.booleans(),
)
def test_the_order_of_parameters_never_changes_validity(
    params: dict[str, str], order: random.Random, right_key: bool
) -> None:
    signature = client_signature(PATH, params, SECRET if right_key else "not-the-key")
    pairs = [*params.items(), ("s", signature)]
    order.shuffle(pairs)
    expected = "valid" if right_key else "invalid"
    assert server_check(PATH, encode_query(pairs)) == expected


# --- sign_url -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_sign_url_output_verifies_independently(algorithm: str) -> None:
    signed = sign_url("https://img.example.com/assets/a/-/content?w=200&pad-c=%23ff0000", SECRET, algorithm)
    assert signed.startswith("https://img.example.com/assets/a/-/content?w=200&pad-c=%23ff0000&s=")
    assert client_verifies(signed, SECRET, algorithm)
    assert server_check(urlsplit(signed).path, urlsplit(signed).query, algorithm=algorithm) == "valid"


def test_sign_url_replaces_an_old_signature_and_signs_bare_paths() -> None:
    signed = sign_url("/assets/a/-/link?s=stale&w=1", SECRET)
    assert "stale" not in signed
    assert signed.count("s=") == 1
    assert client_verifies(signed, SECRET)
    bare = sign_url("/assets/a", SECRET)
    assert bare.startswith("/assets/a?s=")
    assert client_verifies(bare, SECRET)


def test_sign_url_encodes_what_a_client_would_encode() -> None:
    signed = sign_url("/assets/a/-/content?caption=hello wörld", SECRET)
    assert "caption=hello%20w%C3%B6rld" in signed
    assert client_verifies(signed, SECRET)


def test_sign_url_refuses_an_unknown_algorithm_or_empty_secret() -> None:
    with pytest.raises(ValueError, match="hmac_sha256"):
        sign_url("/assets/a", SECRET, "hmac_md5")
    with pytest.raises(ValueError, match="empty"):
        sign_url("/assets/a", "")


# --- enforcement from the ASGI scope ----------------------------------------------------------


def _scope(raw_path: bytes, query: bytes) -> dict[str, object]:
    return {"type": "http", "path": raw_path.decode(), "raw_path": raw_path, "query_string": query}


def test_require_signature_reads_the_raw_scope() -> None:
    signing = UrlSigningSettings(enabled=True, secret_key=SECRET)
    signature = client_signature("/assets/a%2Bb/-/content", {"w": "5"}, SECRET)
    require_signature(_scope(b"/assets/a%2Bb/-/content", f"w=5&s={signature}".encode()), signing)
    with pytest.raises(Forbidden) as missing:
        require_signature(_scope(b"/assets/a%2Bb/-/content", b"w=5"), signing)
    assert (missing.value.status, missing.value.reason, missing.value.message) == (
        403,
        "missing_signature",
        "Missing signature",
    )
    with pytest.raises(Forbidden) as invalid:
        require_signature(_scope(b"/assets/a+b/-/content", f"w=5&s={signature}".encode()), signing)
    assert (invalid.value.reason, invalid.value.message) == ("invalid_signature", "Invalid signature")


def test_require_signature_does_nothing_when_disabled() -> None:
    require_signature(_scope(b"/assets/a", b""), UrlSigningSettings(enabled=False, secret_key=SECRET))


# --- configuration ----------------------------------------------------------------------------


def test_secret_keys_are_accepted_with_secret_key_first(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, '[url-signing]\nenabled = true\nsecret-key = "a"\nsecret-keys = ["b", "a"]\n'), {}
    )
    assert config.url_signing.signing_keys == ("a", "b")
    only_list = load_config(_write(tmp_path, '[url-signing]\nenabled = true\nsecret-keys = ["b", "c"]\n'), {})
    assert only_list.url_signing.signing_keys == ("b", "c")


def test_a_path_naming_its_own_keys_replaces_the_top_level_keys(tmp_path: Path) -> None:
    text = """
[url-signing]
enabled = false
secret-key = "top"
secret-keys = ["top-old"]

[paths."/private/**".url-signing]
enabled = true
secret-keys = ["private-new", "private-old"]

[paths."/inherits/**".url-signing]
enabled = true
algorithm = "hmac_sha384"
"""
    config = load_config(_write(tmp_path, text), {})
    private = config.signing_for(config.paths.resolve("/private/a"))
    assert (private.enabled, private.signing_keys) == (True, ("private-new", "private-old"))
    inherits = config.signing_for(config.paths.resolve("/inherits/a"))
    assert (inherits.algorithm, inherits.signing_keys) == ("hmac_sha384", ("top", "top-old"))


def test_blank_secret_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, '[url-signing]\nsecret-keys = ["a", " "]\n'), {})
    assert error.value.key == "url-signing.secret-keys"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "konifer.toml"
    path.write_text(text)
    return path
