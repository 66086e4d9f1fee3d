"""Known-answer tests of the primitives through Kith's own wrappers, and the envelope's
properties: round trip, tampering, swapped associated data, copies to other rows or columns."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kith.privacy.encryption import envelope as envelope_module
from kith.privacy.encryption.blind_index import BlindIndex
from kith.privacy.encryption.envelope import (
    PREFIX,
    decode,
    decrypt_envelope,
    encrypt_value,
    is_envelope,
    key_id_of,
    open_decoded,
    pad,
    parse,
    unpad,
)
from kith.privacy.encryption.errors import EnvelopeError, FieldDecryptionError
from kith.privacy.encryption.primitives import (
    AuthenticationFailed,
    aes_gcm,
    hkdf_sha256,
    hmac_sha256,
    open_sealed,
    random_key,
    seal,
)

hx = bytes.fromhex


# -- RFC 5869 -------------------------------------------------------------------------------


def test_hkdf_rfc5869_test_case_1():
    okm = hkdf_sha256(
        bytes([0x0B] * 22),
        info=hx("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
        salt=hx("000102030405060708090a0b0c"),
    )
    assert okm == hx(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_test_case_3_no_salt_no_info():
    okm = hkdf_sha256(bytes([0x0B] * 22), info=b"", length=42)
    assert okm == hx(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


# -- RFC 4231 -------------------------------------------------------------------------------

RFC4231 = [
    (
        bytes([0x0B] * 20),
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        bytes([0xAA] * 20),
        bytes([0xDD] * 50),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        bytes([0xCD] * 50),
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (bytes([0x0C] * 20), b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        bytes([0xAA] * 131),
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        bytes([0xAA] * 131),
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231, ids=[f"tc{i}" for i in range(1, 8)])
def test_hmac_sha256_rfc4231(key, data, expected):
    # Test case 5 publishes only the first 128 bits.
    assert hmac_sha256(key, data).hex()[: len(expected)] == expected


# -- AES-256-GCM: the GCM specification's test cases 13-16 (McGrew & Viega) ---------------------

K15 = hx("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
IV15 = hx("cafebabefacedbaddecaf888")
P15 = hx(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
C15 = hx(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)
AAD16 = hx("feedfacedeadbeeffeedfacedeadbeefabaddad2")

GCM = [
    (bytes(32), bytes(12), b"", b"", b"", hx("530f8afbc74536b9a963b4f1c4cb738b")),
    (
        bytes(32),
        bytes(12),
        bytes(16),
        b"",
        hx("cea7403d4d606b6e074ec5d3baf39d18"),
        hx("d0d1c8a799996bf0265b98b5d48ab919"),
    ),
    (K15, IV15, P15, b"", C15, hx("b094dac5d93471bdec1a502270e3cc6c")),
    (K15, IV15, P15[:60], AAD16, C15[:60], hx("76fc6ece0f4e1768cddf8853bb2d551b")),
]


@pytest.mark.parametrize(
    ("key", "iv", "plain", "aad", "cipher", "tag"), GCM, ids=["tc13", "tc14", "tc15", "tc16"]
)
def test_aes_256_gcm_spec_vectors(key, iv, plain, aad, cipher, tag):
    aead = aes_gcm(key)
    assert seal(aead, iv, plain, aad) == cipher + tag
    assert open_sealed(aead, iv, cipher + tag, aad) == plain
    with pytest.raises(AuthenticationFailed):
        open_sealed(aead, iv, cipher + bytes([tag[0] ^ 1]) + tag[1:], aad)


# -- the envelope ------------------------------------------------------------------------------

KEY = aes_gcm(random_key())
KEY_ID = uuid.uuid4()
ROW = uuid.uuid4()
TABLES = {
    "kith_contact": ("display_name", "given_name", "family_name"),
    "kith_contact_point": ("value",),
    "kith_interaction": ("summary", "body"),
}
FIELDS = [(table, column) for table, columns in TABLES.items() for column in columns]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300
)  # any Unicode but lone surrogates, which UTF-8 cannot hold


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    value=TEXT | st.sampled_from(["", "Zoë Ørsted", "王小明", "👩‍🔬"]),
)
def test_envelope_round_trip_every_field(field, value):
    table, column = field
    stored = encrypt_value(KEY, KEY_ID, table, column, ROW, value)
    assert stored.startswith(PREFIX)
    assert len(value) < 8 or value not in stored
    assert decrypt_envelope(KEY, parse(stored), table, column, ROW) == value


def test_same_value_encrypts_differently_each_time():
    first = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Ada")
    second = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Ada")
    assert first != second


def test_length_is_padded_to_16_bytes():
    short = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Al")
    longer = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Alexandra Ivanova")
    longest = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "x" * 15)
    assert len(short) == len(longest) < len(longer)


@settings(max_examples=100, deadline=None)
@given(value=TEXT, data=st.data())
def test_changing_any_character_fails(value, data):
    stored = encrypt_value(KEY, KEY_ID, "kith_interaction", "body", ROW, value)
    position = data.draw(st.integers(0, len(stored) - 1))
    replacement = data.draw(
        st.sampled_from(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_$!"
        ).filter(lambda c: c != stored[position])
    )
    tampered = stored[:position] + replacement + stored[position + 1 :]
    with pytest.raises((EnvelopeError, FieldDecryptionError)):
        decrypt_envelope(KEY, parse(tampered), "kith_interaction", "body", ROW)


def test_every_byte_flip_fails():
    import base64

    stored = encrypt_value(KEY, KEY_ID, "kith_contact", "family_name", ROW, "Lovelace")
    raw = base64.urlsafe_b64decode(stored[len(PREFIX) :] + "==")
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            flipped = bytearray(raw)
            flipped[index] ^= bit
            text = PREFIX + base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
            with pytest.raises((EnvelopeError, FieldDecryptionError)):
                decrypt_envelope(KEY, parse(text), "kith_contact", "family_name", ROW)


def test_truncated_and_extended_envelopes_fail():
    stored = encrypt_value(KEY, KEY_ID, "kith_contact", "family_name", ROW, "Lovelace")
    for broken in (stored[:-1], stored[:-4], stored + "A", stored + "AAAA", PREFIX, "$k1$!!!!"):
        with pytest.raises((EnvelopeError, FieldDecryptionError)):
            decrypt_envelope(KEY, parse(broken), "kith_contact", "family_name", ROW)


@pytest.mark.parametrize(
    "place",
    [
        ("kith_contact", "given_name", ROW),  # another column of the same row
        ("kith_contact", "display_name", uuid.uuid4()),  # the same column of another row
        ("kith_interaction", "display_name", ROW),  # another table
    ],
)
def test_associated_data_binds_table_column_and_row(place):
    stored = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Ada Lovelace")
    with pytest.raises(FieldDecryptionError, match="altered, or copied from another row or column"):
        decrypt_envelope(KEY, parse(stored), *place)


def test_swapped_key_id_fails_even_with_the_right_key():
    stored = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Ada")
    envelope = parse(stored)
    swapped = uuid.uuid4()
    other = envelope._replace(key_id=swapped, header=bytes([envelope.version]) + swapped.bytes)
    with pytest.raises(FieldDecryptionError):
        decrypt_envelope(KEY, other, "kith_contact", "display_name", ROW)


def test_wrong_key_fails():
    stored = encrypt_value(KEY, KEY_ID, "kith_contact", "display_name", ROW, "Ada")
    with pytest.raises(FieldDecryptionError):
        decrypt_envelope(aes_gcm(random_key()), parse(stored), "kith_contact", "display_name", ROW)


def test_not_an_envelope_is_reported():
    with pytest.raises(EnvelopeError, match="not an encrypted envelope"):
        parse("Ada Lovelace")


# -- the stored format: values written by earlier releases stay readable ------------------------

# Envelopes as this release writes them, kept as text: a change to the version byte, the layout,
# the associated data, the padding or the encoding that would make stored data unreadable fails
# here. Written with the key bytes 00..1f, key id FIXED_KEY_ID and row FIXED_ROW.
FIXED_KEY = bytes(range(32))
FIXED_KEY_ID = uuid.UUID("0193a0c4-7d2e-7c3b-9f10-5a6b7c8d9e0f")
FIXED_ROW = uuid.UUID("0193a0c4-7d2e-7c3b-9f10-000000000001")
STORED = [
    (
        "kith_contact",
        "display_name",
        "Ada Lovelace",
        "$k1$AQGToMR9Lnw7nxBaa3yNng8BAQEBAQEBAQEBAQE2p4QVJOoeA7g1BH2YZ1LYmHSZytrdMac5Xk2Ok_kh6Q",
    ),
    (
        "kith_contact_point",
        "value",
        "+442079460018",
        "$k1$AQGToMR9Lnw7nxBaa3yNng8CAgICAgICAgICAgKwHC2Jie4Ib_21kskL-doTg75yGV43JbOfkv3GfcAQ_A",
    ),
    (
        "kith_interaction",
        "body",
        "",
        "$k1$AQGToMR9Lnw7nxBaa3yNng8DAwMDAwMDAwMDAwNuSzzWC5JSFt5dBn7NqlQHBeYjuKS8kOtvljtKZT6fjA",
    ),
    (
        "kith_contact",
        "family_name",
        "x" * 15,
        "$k1$AQGToMR9Lnw7nxBaa3yNng8EBAQEBAQEBAQEBAQc_7bwUS3p5bJ9IxNdhdmA1k87kutU4MfljlJtVzhXlg",
    ),
    (
        "kith_contact",
        "given_name",
        "Zoë 王",
        "$k1$AQGToMR9Lnw7nxBaa3yNng8FBQUFBQUFBQUFBQUWWRvagNoUYb-OC-AJEwbV2V5xq1SL9wMOh7x9eqGhwQ",
    ),
    (
        "kith_interaction",
        "summary",
        "y" * 16,
        "$k1$AQGToMR9Lnw7nxBaa3yNng8GBgYGBgYGBgYGBgZFIZTwAMzU6KId_Mc-GqBEi4RoUUVphMG2_5b6A6pjRuAhiz9aGZkp"
        "ygtSUlDf1p4",
    ),
    (
        "kith_interaction",
        "body",
        "z" * 40,
        "$k1$AQGToMR9Lnw7nxBaa3yNng8HBwcHBwcHBwcHBwd1ENwmFXWtjrznafr6K47h2yb3CfKN-2OEwSSAfqRIYV0-iwT7"
        "Oo7ogv6h_cIX2Sbjl-MoyW9Wo8rkMKkvrEwP",
    ),
    (
        # Ends in "X": nothing but base64 padding is stripped from the end.
        "kith_interaction",
        "summary",
        "Grace Hopper met Ada Lovelace at the bench",
        "$k1$AQGToMR9Lnw7nxBaa3yNng8XFxcXFxcXFxcXFxcR1rpbvimVHQv37gpGkih7yQggQwSt5sMV3bsMoInsoCkQL_Aw"
        "am1DjXX_QIEBNajfI_23Rl6qY-NR9L-FVk-X",
    ),
]


@pytest.mark.parametrize(("table", "column", "value", "stored"), STORED)
def test_envelopes_stored_by_this_release_still_decrypt(table, column, value, stored):
    envelope = parse(stored)
    assert (envelope.version, envelope.key_id) == (1, FIXED_KEY_ID)
    assert envelope.header == b"\x01" + FIXED_KEY_ID.bytes
    assert is_envelope(stored)
    assert decrypt_envelope(aes_gcm(FIXED_KEY), envelope, table, column, FIXED_ROW) == value
    raw = decode(stored)
    assert key_id_of(raw) == FIXED_KEY_ID
    assert open_decoded(aes_gcm(FIXED_KEY), raw, table, column, FIXED_ROW) == value


@pytest.mark.parametrize(("table", "column", "value", "stored"), STORED)
def test_envelopes_are_written_in_the_stored_format(table, column, value, stored, monkeypatch):
    # The nonce is the only random part; with the one the stored value used, the writer must
    # produce the same text, byte for byte.
    nonce = parse(stored).nonce
    monkeypatch.setattr(envelope_module, "random_nonce", lambda: nonce)
    written = encrypt_value(aes_gcm(FIXED_KEY), FIXED_KEY_ID, table, column, FIXED_ROW, value)
    assert written == stored


def test_the_documented_layout_is_what_is_stored():
    # Built from the module's description alone, with the AEAD used directly.
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = bytes(range(100, 112))
    header = b"\x01" + FIXED_KEY_ID.bytes
    aad = header + b"|kith_contact\x00display_name\x00" + FIXED_ROW.bytes
    padded = b"Ada" + b"\x80" + b"\x00" * 12
    sealed = AESGCM(FIXED_KEY).encrypt(nonce, padded, aad)
    text = "$k1$" + base64.urlsafe_b64encode(header + nonce + sealed).decode().rstrip("=")
    key = aes_gcm(FIXED_KEY)
    assert decrypt_envelope(key, parse(text), "kith_contact", "display_name", FIXED_ROW) == "Ada"
    assert parse(text).nonce == nonce and parse(text).sealed == sealed


@pytest.mark.parametrize(
    ("value", "padded"),
    [
        (b"", b"\x80" + b"\x00" * 15),
        (b"Ada", b"Ada\x80" + b"\x00" * 12),
        (b"x" * 15, b"x" * 15 + b"\x80"),
        (b"x" * 16, b"x" * 16 + b"\x80" + b"\x00" * 15),
        # Zeros and 0x80 inside the value are data, not padding.
        (b"a\x00", b"a\x00\x80" + b"\x00" * 13),
        (b"\xc2\x80", b"\xc2\x80\x80" + b"\x00" * 13),
    ],
)
def test_padding_known_answers(value, padded):
    assert pad(value) == padded
    assert unpad(padded) == value


@given(st.binary(max_size=100))
def test_unpad_undoes_pad(value):
    assert len(pad(value)) % 16 == 0 and len(pad(value)) > len(value)
    assert unpad(pad(value)) == value


@pytest.mark.parametrize(
    "padded",
    [
        b"",
        b"\x00" * 16,
        b"Ada" + b"\x00" * 13,
        b"Ada\x81" + b"\x00" * 12,
        b"Ada\x80\x01",
        b"Ada\x80X\x00\x00",
    ],
)
def test_unpad_refuses_what_pad_cannot_produce(padded):
    with pytest.raises(EnvelopeError, match=r"^the decrypted value has no valid padding$"):
        unpad(padded)


def test_each_part_of_an_envelope_is_read_from_its_place():
    key_id = uuid.UUID("fedcba98-7654-3210-8899-aabbccddeeff")
    stored = encrypt_value(KEY, key_id, "kith_contact", "display_name", ROW, "Ada")
    envelope = parse(stored)
    assert envelope.version == 1 and envelope.key_id == key_id
    assert envelope.header == b"\x01" + key_id.bytes
    assert len(envelope.nonce) == 12 and len(envelope.sealed) == 16 + 16
    assert decode(stored) == envelope.header + envelope.nonce + envelope.sealed


def _reencoded(raw: bytes) -> str:
    import base64

    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_an_unknown_version_is_named():
    raw = bytearray(decode(STORED[0][3]))
    raw[0] = 2
    with pytest.raises(EnvelopeError, match=r"^envelope format version 2 is not supported$"):
        decode(_reencoded(bytes(raw)))


@pytest.mark.parametrize("stored", [STORED[0][3], STORED[5][3]])
def test_only_canonical_base64url_is_accepted(stored):
    # The last character's unused low bits set: the same bytes, spelled differently.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(stored[-1])
    for spare in (1, 2):
        other = stored[:-1] + alphabet[last | spare]
        with pytest.raises(EnvelopeError, match=r"^the envelope is not canonical base64url$"):
            decode(other)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("$k1$" + "A" * 81, "the envelope is not valid base64url"),  # one character left over
        (STORED[0][3][:-1] + "=", "the envelope is not valid base64url"),
        (STORED[0][3][:-1] + "+", "the envelope is not valid base64url"),
        (STORED[0][3][:-1] + "é", "the envelope is not valid base64url"),
        # 60 bytes: one short of the shortest envelope.
        ("$k1$" + "A" * 80, "the envelope is truncated"),
        ("$k2$" + STORED[0][3][4:], "the value is not an encrypted envelope"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(stored, message):
    with pytest.raises(EnvelopeError, match=f"^{message}$"):
        decode(stored)


def test_a_value_that_does_not_decrypt_names_its_place():
    stored = STORED[0][3]
    with pytest.raises(FieldDecryptionError) as caught:
        decrypt_envelope(aes_gcm(FIXED_KEY), parse(stored), "kith_contact", "given_name", FIXED_ROW)
    assert str(caught.value) == (
        f"kith_contact.given_name of row {FIXED_ROW} does not decrypt: the stored value was "
        "altered, or copied from another row or column"
    )


def test_the_shortest_envelope_is_read():
    assert len(decode(STORED[2][3])) == 61


@pytest.mark.parametrize("stored", [None, "", "Ada", "k1$x", "$k2$AQ", " $k1$AQ"])
def test_what_is_not_an_envelope(stored):
    assert not is_envelope(stored)


# -- blind indexes ---------------------------------------------------------------------------


def test_blind_index_is_full_length_deterministic_and_separated_by_kind():
    index = BlindIndex(random_key(), "kek-test")
    email = index.lookup("email", "ada@example.com")
    assert len(email) == 64 and int(email, 16) >= 0
    assert email == index.lookup("email", "ada@example.com")
    assert email != index.lookup("phone", "ada@example.com")
    assert email != BlindIndex(random_key(), "kek-other").lookup("email", "ada@example.com")
    assert index.kind_key("email") != index.kind_key("phone")
