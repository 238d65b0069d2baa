"""Pseudonyms: keyed, stable, and a bad key fails in one line that never shows the key."""

from __future__ import annotations

import pandas as pd
import pytest

from riskloop.ingest.pseudonym import PseudonymKeyError, load_key, pseudonymise

KEY = b"k" * 32
OTHER = b"o" * 32


def test_the_same_key_and_cluster_give_the_same_pseudonym():
    keys = pd.Series(["police:N1", "council:C7", "police:N1"])
    first, again = pseudonymise(keys, KEY), pseudonymise(keys.copy(), KEY)
    assert first.tolist() == again.tolist()
    assert first[0] == first[2] != first[1]
    assert first[0].startswith("p") and len(first[0]) == 25


def test_a_different_key_gives_a_different_pseudonym():
    keys = pd.Series(["police:N1", "council:C7"])
    assert (pseudonymise(keys, KEY) != pseudonymise(keys, OTHER)).all()


def test_the_pseudonym_is_hmac_sha256_of_the_cluster_key():
    import hashlib
    import hmac

    expected = "p" + hmac.new(KEY, b"police:N1", hashlib.sha256).hexdigest()[:24]
    assert pseudonymise(pd.Series(["police:N1"]), KEY)[0] == expected


def test_the_key_comes_from_the_environment_or_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", KEY.decode())
    assert load_key() == KEY
    path = tmp_path / "partnership.key"
    path.write_bytes(OTHER + b"\n")
    assert load_key(file=path) == OTHER


@pytest.mark.parametrize("secret", ["", "short-secret-123"])
def test_an_absent_or_short_key_is_a_one_line_error_without_the_key(monkeypatch, secret):
    monkeypatch.setenv("RISKLOOP_PSEUDONYM_KEY", secret)
    with pytest.raises(PseudonymKeyError) as caught:
        load_key()
    message = str(caught.value)
    assert "\n" not in message and "RISKLOOP_PSEUDONYM_KEY" in message
    assert not secret or secret not in message


def test_a_short_or_missing_key_file_is_a_one_line_error_without_the_key(tmp_path):
    path = tmp_path / "partnership.key"
    path.write_text("tiny-secret")
    with pytest.raises(PseudonymKeyError) as caught:
        load_key(file=path)
    assert "tiny-secret" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(PseudonymKeyError, match="cannot be read"):
        load_key(file=tmp_path / "absent.key")
